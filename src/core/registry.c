/* registry.c - the single table of operators, assembled from the family
 * tables in src/ops/. Resolution picks the newest since_version that does
 * not exceed the model's opset for the op's domain. */
#include "core/registry.h"

#include <string.h>

#define ONYX_FAMILIES(X)                                                                 \
    X(elementwise) X(activation) X(math) X(logic) X(conv) X(pool) X(norm) X(matmul)  \
    X(reduce) X(shape) X(tensor) X(gather) X(resize) X(control) X(sequence) X(rnn)   \
    X(quant) X(misc) X(attention) X(loss) X(spatial) X(signal) X(random) X(string)      \
    X(training) X(ml)

#define DECLARE(f) extern const onyx_op_schema onyx_ops_##f[];
ONYX_FAMILIES(DECLARE)
#undef DECLARE

#define ENTRY(f) onyx_ops_##f,
static const onyx_op_schema *const families[] = {ONYX_FAMILIES(ENTRY)};
#undef ENTRY

/* The opsets of ONNX 1.19 (IR version 12), the release onyx follows. */
static const struct {
    const char *domain;
    int64_t version;
} max_opsets[] = {{"", 24}, {"ai.onnx.ml", 5}, {"ai.onnx.preview.training", 1}};

int64_t onyx_registry_max_opset(const char *domain) {
    for (size_t i = 0; i < sizeof max_opsets / sizeof max_opsets[0]; i++)
        if (strcmp(max_opsets[i].domain, domain) == 0) return max_opsets[i].version;
    return -1;
}

const onyx_op_schema *onyx_registry_find(const char *domain, const char *op_type, int64_t opset,
                                         int *min_version) {
    const onyx_op_schema *best = NULL;
    int oldest = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        for (const onyx_op_schema *r = families[f]; r->op_type; r++) {
            if (strcmp(r->op_type, op_type) != 0 || strcmp(r->domain, domain) != 0) continue;
            if (!oldest || r->since_version < oldest) oldest = r->since_version;
            if (r->since_version <= opset && (!best || r->since_version > best->since_version))
                best = r;
        }
    }
    if (min_version) *min_version = oldest;
    return best;
}

void onyx_registry_each(onyx_registry_visit_fn fn, void *user) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const onyx_op_schema *r = families[f]; r->op_type; r++) fn(user, r);
}
