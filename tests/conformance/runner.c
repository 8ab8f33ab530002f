/* runner.c - runs the ONNX backend node tests through the engine.
 *
 * For every test folder (model.onnx + test_data_set_N/{input,output}_K.pb)
 * it loads the model, feeds the inputs, and compares each output with the
 * expected one under the backend's tolerances (rtol 1e-3, atol 1e-7, NaN
 * equals NaN). Each test runs in a forked child with a time limit, so a
 * crash or a hang is a failure of that test, not of the runner.
 *
 * A file of expected failures (one `test_name  reason` per line) turns known
 * failures into skips; the run fails on any other failure and on any
 * expected failure that passes. A reason starting with "nondeterministic"
 * (random ops without a seed) makes either outcome a skip. Last line:
 * "N passed, N failed, N skipped".
 *
 *   conformance [--expected FILE] [--timeout SEC] [--threads N] [-v] DIR [FILTER...]
 */
#define _GNU_SOURCE
#include "core/tensor.h"
#include "onnx/onnx.h"
#include "onyx.h"

#include "base/file.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_IO = 64 };

typedef struct expected {
    char **names;  /* sorted; a leading '~' marks a nondeterministic test */
    int n;
} expected;

/* Entries compare by test name, past their one-character mark. */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a + 1, *(char *const *)b + 1);
}

// ----------------------------------------------------------------------------
// Reading .pb files as the kind of value the graph declares

static int read_value(const char *path, onyx_kind kind, bool optional, onyx_value *out, char *msg,
                      size_t len) {
    uint8_t *buf = NULL;
    size_t size = 0;
    onyx_error err = {0};
    onyx_arena arena;
    onyx_arena_init(&arena);
    memset(out, 0, sizeof *out);
    int rc = -1;
    if (onyx_file_read(path, &buf, &size, &err)) goto done;
    if (optional) {
        onyx_pb_optional *o;
        if (onyx_pb_decode_optional(buf, size, &arena, &o, &err) ||
            onyx_pb_optional_to_value(o, out, &err))
            goto done;
    } else if (kind == ONYX_KIND_SEQUENCE) {
        onyx_pb_sequence *s;
        if (onyx_pb_decode_sequence(buf, size, &arena, &s, &err) ||
            onyx_pb_sequence_to_value(s, out, &err))
            goto done;
    } else if (kind == ONYX_KIND_MAP) {
        onyx_pb_map *m;
        if (onyx_pb_decode_map(buf, size, &arena, &m, &err) || onyx_pb_map_to_value(m, out, &err))
            goto done;
    } else {
        onyx_pb_tensor *t;
        if (onyx_pb_decode_tensor(buf, size, &arena, &t, &err) ||
            onyx_pb_tensor_to_tensor(t, NULL, NULL, &out->tensor, &err))
            goto done;
        out->kind = ONYX_KIND_TENSOR;
        /* The tensor may point into buf: make it own its bytes. */
        if (!out->tensor.heap) {
            onyx_tensor copy;
            if (onyx_tensor_copy(&copy, &out->tensor)) goto done;
            out->tensor = copy;
        }
    }
    rc = 0;
done:
    if (rc) snprintf(msg, len, "%s: %s", path, err.message);
    free(buf);
    onyx_arena_deinit(&arena);
    return rc;
}

/* Whether graph input/output `name` is declared optional in model.onnx.
 * The public info has no notion of it, so peek at the decoded type. */
static bool declared_optional(const onyx_pb_model *pb, const char *name, bool output) {
    const onyx_pb_graph *g = pb->graph;
    int n = output ? g->n_outputs : g->n_inputs;
    const onyx_pb_value_info *vi = output ? g->outputs : g->inputs;
    for (int i = 0; i < n; i++)
        if (strcmp(vi[i].name, name) == 0)
            return vi[i].type && vi[i].type->kind == ONYX_PB_TYPE_OPTIONAL;
    return false;
}

// ----------------------------------------------------------------------------
// Comparison

static bool close_enough(double got, double want) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= 1e-7 + 1e-3 * fabs(want);
}

static int compare_tensor(const onyx_tensor *got, const onyx_tensor *want, char *msg, size_t len) {
    if (got->dtype != want->dtype) {
        snprintf(msg, len, "type %s, expected %s", onyx_dtype_name(got->dtype),
                 onyx_dtype_name(want->dtype));
        return -1;
    }
    bool same_shape = got->ndim == want->ndim;
    for (int i = 0; same_shape && i < got->ndim; i++) same_shape = got->dims[i] == want->dims[i];
    if (!same_shape) {
        char a[128] = "", b[128] = "";
        for (int i = 0; i < got->ndim; i++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", i ? "," : "", (long long)got->dims[i]);
        for (int i = 0; i < want->ndim; i++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", i ? "," : "", (long long)want->dims[i]);
        snprintf(msg, len, "shape [%s], expected [%s]", a, b);
        return -1;
    }
    int64_t n = onyx_tensor_count(want);
    for (int64_t i = 0; i < n; i++) {
        if (want->dtype == ONYX_DTYPE_STRING) {
            const char *a = ((char *const *)got->data)[i], *b = ((char *const *)want->data)[i];
            if (strcmp(a ? a : "", b ? b : "") != 0) {
                snprintf(msg, len, "element %lld is \"%.40s\", expected \"%.40s\"", (long long)i,
                         a ? a : "", b ? b : "");
                return -1;
            }
            continue;
        }
        double a = onyx_tensor_get_f64(got, i), b = onyx_tensor_get_f64(want, i);
        bool ok = onyx_dtype_is_float(want->dtype) ? close_enough(a, b)
                                                    : onyx_tensor_get_i64(got, i) ==
                                                          onyx_tensor_get_i64(want, i);
        if (!ok) {
            snprintf(msg, len, "element %lld is %.9g, expected %.9g", (long long)i, a, b);
            return -1;
        }
    }
    return 0;
}

static int compare_value(const onyx_value *got, const onyx_value *want, char *msg, size_t len) {
    if (got->kind != want->kind) {
        snprintf(msg, len, "value kind %d, expected %d", (int)got->kind, (int)want->kind);
        return -1;
    }
    switch (want->kind) {
    case ONYX_KIND_NONE:
        return 0;
    case ONYX_KIND_TENSOR:
        return compare_tensor(&got->tensor, &want->tensor, msg, len);
    case ONYX_KIND_SEQUENCE:
        if (got->n_items != want->n_items) {
            snprintf(msg, len, "sequence of %lld, expected %lld", (long long)got->n_items,
                     (long long)want->n_items);
            return -1;
        }
        for (int64_t i = 0; i < want->n_items; i++) {
            if (compare_value(&got->items[i], &want->items[i], msg, len)) {
                char tmp[400];
                snprintf(tmp, sizeof tmp, "item %lld: %s", (long long)i, msg);
                snprintf(msg, len, "%s", tmp);
                return -1;
            }
        }
        return 0;
    case ONYX_KIND_MAP:
        if (compare_tensor(&got->tensor, &want->tensor, msg, len)) return -1;
        if (!got->map_values || !want->map_values) return got->map_values != want->map_values;
        return compare_value(got->map_values, want->map_values, msg, len);
    default:
        return -1;
    }
}

// ----------------------------------------------------------------------------
// One test (in the child process)

static int count_files(const char *dir, const char *prefix) {
    int n = 0;
    char path[4096];
    for (;; n++) {
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n);
        if (access(path, R_OK) != 0) return n;
    }
}

static int run_test(const char *dir, int threads, char *msg, size_t len) {
    char path[4096];
    int rc = -1;
    onyx_model *m = NULL;
    onyx_session *s = NULL;
    onyx_error err = {0};
    onyx_options opts;
    onyx_options_init(&opts);
    opts.threads = threads;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (onyx_model_load_file(path, &opts, &m, &err)) {
        snprintf(msg, len, "load: %s", err.message);
        return -1;
    }
    if (onyx_session_new(m, &opts, &s, &err)) {
        snprintf(msg, len, "session: %s", err.message);
        onyx_model_free(m);
        return -1;
    }
    /* Peek at the declared kinds through a second decode of the model. */
    onyx_mapping map;
    onyx_arena arena;
    onyx_arena_init(&arena);
    onyx_pb_model *pb = NULL;
    if (onyx_file_map(path, &map, &err) || onyx_pb_decode_model(map.data, map.size, &arena, &pb, &err)) {
        snprintf(msg, len, "decode: %s", err.message);
        goto done_model;
    }
    for (int set = 0;; set++) {
        char sdir[4096];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%d", dir, set);
        if (access(sdir, R_OK) != 0) {
            rc = set > 0 ? 0 : -1;
            if (set == 0) snprintf(msg, len, "no test_data_set_0");
            break;
        }
        int n_in = count_files(sdir, "input"), n_out = count_files(sdir, "output");
        if (n_in > MAX_IO || n_out > MAX_IO) {
            snprintf(msg, len, "too many inputs/outputs");
            break;
        }
        onyx_value ins[MAX_IO], wants[MAX_IO];
        const onyx_value *inp[MAX_IO], *outs[MAX_IO];
        const char *names[MAX_IO];
        memset(ins, 0, sizeof ins);
        memset(wants, 0, sizeof wants);
        int ok = 1;
        for (int i = 0; i < n_in && ok; i++) {
            onyx_io_info info;
            if (onyx_model_input(m, i, &info)) {
                snprintf(msg, len, "data set has input %d, the model has %d inputs", i,
                         onyx_model_num_inputs(m));
                ok = 0;
                break;
            }
            snprintf(path, sizeof path, "%s/input_%d.pb", sdir, i);
            names[i] = info.name;
            if (read_value(path, info.kind, declared_optional(pb, info.name, false), &ins[i], msg, len))
                ok = 0;
            inp[i] = &ins[i];
        }
        for (int i = 0; i < n_out && ok; i++) {
            onyx_io_info info;
            if (onyx_model_output(m, i, &info)) {
                snprintf(msg, len, "data set has output %d, the model has %d", i,
                         onyx_model_num_outputs(m));
                ok = 0;
                break;
            }
            snprintf(path, sizeof path, "%s/output_%d.pb", sdir, i);
            if (read_value(path, info.kind, declared_optional(pb, info.name, true), &wants[i], msg, len))
                ok = 0;
        }
        if (ok && n_out != onyx_model_num_outputs(m)) {
            snprintf(msg, len, "data set has %d outputs, the model %d", n_out,
                     onyx_model_num_outputs(m));
            ok = 0;
        }
        if (ok && onyx_session_run(s, n_in, names, inp, n_out, NULL, outs, &err)) {
            snprintf(msg, len, "run: %s", err.message);
            ok = 0;
        }
        for (int i = 0; i < n_out && ok; i++) {
            char cm[400];
            if (compare_value(outs[i], &wants[i], cm, sizeof cm)) {
                onyx_io_info info;
                onyx_model_output(m, i, &info);
                snprintf(msg, len, "output '%s': %s", info.name, cm);
                ok = 0;
            }
        }
        for (int i = 0; i < MAX_IO; i++) {
            onyx_value_clear(&ins[i]);
            onyx_value_clear(&wants[i]);
        }
        if (!ok) break;
    }
done_model:
    onyx_arena_deinit(&arena);
    onyx_file_unmap(&map);
    onyx_session_free(s);
    onyx_model_free(m);
    return rc;
}

/* Forks, runs the test in the child under a time limit, and reports through
 * a pipe. Returns 0 pass, -1 fail (msg says why). */
static int run_isolated(const char *dir, int timeout, int threads, char *msg, size_t len) {
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(msg, len, "pipe failed");
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        alarm((unsigned)timeout);
        char m[1024] = "";
        int rc = run_test(dir, threads, m, sizeof m);
        if (rc) {
            ssize_t w = write(fd[1], m, strlen(m));
            (void)w;
        }
        close(fd[1]);
        /* exit, not _exit: LeakSanitizer checks for leaks at exit. stdout
         * was flushed before the fork, so nothing is written twice. */
        exit(rc ? 1 : 0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fd[0], msg + got, len - 1 - got)) > 0) got += (size_t)r;
    msg[got] = 0;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(msg, len, sig == SIGALRM ? "timed out after %d s" : "crashed with signal %d",
                 sig == SIGALRM ? timeout : sig);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (!msg[0]) snprintf(msg, len, "exited with status %d", WEXITSTATUS(status));
    return -1;
}

// ----------------------------------------------------------------------------

static int load_expected(const char *path, expected *ex) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[2048];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || !*p) continue;
        size_t k = strcspn(p, " \t\n");
        /* "test_x  nondeterministic: ..." - an op without a seed: the result
         * is random, so neither a pass nor a failure means anything. */
        const char *reason = p + k + strspn(p + k, " \t");
        bool random = strncmp(reason, "nondeterministic", 16) == 0;
        if (ex->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(ex->names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            ex->names = nn;
        }
        char *name = malloc(k + 2);
        if (!name) break;
        name[0] = random ? '~' : '=';
        memcpy(name + 1, p, k);
        name[k + 1] = 0;
        ex->names[ex->n++] = name;
    }
    fclose(f);
    qsort(ex->names, (size_t)ex->n, sizeof *ex->names, cmp_str);
    return 0;
}

/* 0: not listed; 1: an expected failure; 2: nondeterministic. */
static int expectation(const expected *ex, const char *name) {
    char key[512];
    snprintf(key, sizeof key, "=%s", name);
    const char *k = key;
    char **hit = ex->n ? bsearch(&k, ex->names, (size_t)ex->n, sizeof *ex->names, cmp_str) : NULL;
    return !hit ? 0 : (*hit)[0] == '~' ? 2 : 1;
}

/* File scope, so that a forked child exiting mid-loop still reaches them
 * (LeakSanitizer would report them otherwise). */
static char **filters;
static expected ex;
static struct dirent **list;

int main(int argc, char **argv) {
    const char *expected_path = NULL, *root = NULL;
    int timeout = 60, threads = 1, verbose = 0;
    int n_filters = 0;
    filters = calloc((size_t)argc, sizeof *filters);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expected") && i + 1 < argc)
            expected_path = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!root)
            root = argv[i];
        else
            filters[n_filters++] = argv[i];
    }
    if (!root) {
        fprintf(stderr, "usage: conformance [--expected FILE] [--timeout SEC] [--threads N] [-v] "
                        "DIR [FILTER...]\n");
        return 2;
    }
    if (expected_path && load_expected(expected_path, &ex)) {
        fprintf(stderr, "conformance: cannot read %s\n", expected_path);
        return 2;
    }
    int n = scandir(root, &list, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "conformance: cannot read %s\n", root);
        return 2;
    }
    int passed = 0, failed = 0, skipped = 0, unexpected_pass = 0;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        bool take = strncmp(name, "test_", 5) == 0;
        if (take && n_filters) {
            take = false;
            for (int k = 0; k < n_filters && !take; k++) take = strstr(name, filters[k]) != NULL;
        }
        if (take) {
            char dir[4096], msg[1024];
            snprintf(dir, sizeof dir, "%s/%s", root, name);
            int rc = run_isolated(dir, timeout, threads, msg, sizeof msg);
            int expect = expectation(&ex, name);
            bool known = expect != 0;
            if (expect == 2) {
                skipped++;
                if (verbose) printf("random %s: %s\n", name, rc ? msg : "passed");
            } else if (rc == 0 && !known) {
                passed++;
                if (verbose) printf("ok   %s\n", name);
            } else if (rc == 0 && known) {
                unexpected_pass++;
                failed++;
                printf("FAIL %s: passes but is listed in the expected failures\n", name);
            } else if (known) {
                skipped++;
                if (verbose) printf("xfail %s: %s\n", name, msg);
            } else {
                failed++;
                printf("FAIL %s: %s\n", name, msg);
            }
        }
        free(list[i]);
    }
    free(list);
    for (int i = 0; i < ex.n; i++) free(ex.names[i]);
    free(ex.names);
    free(filters);
    if (unexpected_pass) printf("%d tests pass but are listed as expected failures\n", unexpected_pass);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
