/* opdoc.c - prints docs/operators.md from the op registry, so the operator
 * table can never drift from what the engine actually resolves.
 *   build/opdoc > docs/operators.md       (make docs)
 */
#include "core/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row_list {
    const onyx_op_schema **rows;
    int n, cap;
} row_list;

static void collect(void *user, const onyx_op_schema *row) {
    row_list *l = user;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        const onyx_op_schema **r = realloc(l->rows, (size_t)l->cap * sizeof *r);
        if (!r) exit(1);
        l->rows = r;
    }
    l->rows[l->n++] = row;
}

static int by_name(const void *a, const void *b) {
    const onyx_op_schema *x = *(const onyx_op_schema *const *)a, *y = *(const onyx_op_schema *const *)b;
    int c = strcmp(x->domain, y->domain);
    if (c) return c;
    c = strcmp(x->op_type, y->op_type);
    return c ? c : x->since_version - y->since_version;
}

static void print_types(uint64_t mask) {
    if (!mask || mask == ONYX_T_ALL) {
        printf("any");
        return;
    }
    int first = 1;
    for (int t = 1; t < ONYX_DTYPE_COUNT; t++) {
        if (!(mask & ONYX_T(t))) continue;
        printf("%s%s", first ? "" : ", ", onyx_dtype_name((onyx_dtype)t));
        first = 0;
    }
}

int main(void) {
    row_list l = {0};
    onyx_registry_each(collect, &l);
    qsort(l.rows, (size_t)l.n, sizeof *l.rows, by_name);
    int n_ops = 0;
    for (int i = 0; i < l.n; i++)
        if (i == 0 || strcmp(l.rows[i]->op_type, l.rows[i - 1]->op_type) ||
            strcmp(l.rows[i]->domain, l.rows[i - 1]->domain))
            n_ops++;
    printf("# Supported operators\n\n"
           "Generated from the operator registry by `make docs` (tools/opdoc.c); do not edit.\n"
           "%d operators. A row serves every opset from its version up to the next row's.\n"
           "Arity and types are the newest version's; types are those accepted for the first\n"
           "input (\"any\": checked by the kernel).\n",
           n_ops);
    const char *domain = NULL;
    for (int i = 0; i < l.n; i++) {
        const onyx_op_schema *r = l.rows[i];
        if (!domain || strcmp(domain, r->domain)) {
            domain = r->domain;
            printf("\n## %s\n\n| operator | versions | inputs | outputs | types of input 0 |\n"
                   "| --- | --- | --- | --- | --- |\n",
                   domain[0] ? domain : "ai.onnx (default domain)");
        }
        if (i > 0 && !strcmp(r->op_type, l.rows[i - 1]->op_type) && !strcmp(r->domain, l.rows[i - 1]->domain))
            continue;
        printf("| %s | ", r->op_type);
        int last = i;
        for (int j = i; j < l.n && !strcmp(l.rows[j]->op_type, r->op_type) && !strcmp(l.rows[j]->domain, r->domain); j++) {
            printf("%s%d", j > i ? ", " : "", l.rows[j]->since_version);
            last = j;
        }
        r = l.rows[last]; /* arity and types: the newest version's */
        printf(" | %d", r->min_inputs);
        if (r->max_inputs != r->min_inputs) {
            if (r->max_inputs < 0) printf("+");
            else printf("-%d", r->max_inputs);
        }
        printf(" | %d", r->min_outputs);
        if (r->max_outputs != r->min_outputs) {
            if (r->max_outputs < 0) printf("+");
            else printf("-%d", r->max_outputs);
        }
        printf(" | ");
        print_types(r->types);
        printf(" |\n");
    }
    free(l.rows);
    return 0;
}
