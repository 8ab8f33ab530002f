/* bench.c - `onyx bench MODEL [--threads N] [--batch B] [--iterations K]
 * [--warmup W] [--shape NAME=d0,d1,...] [--json] [--profile]`: loads a model,
 * feeds it deterministic random inputs and reports load time, first-run time,
 * latency percentiles, throughput and peak memory, as text or one JSON object.
 * Owns the input synthesis rules and the statistics; per-op timing needs an
 * engine's per-node timing hook (onyx_session_set_profiler) over extra runs
 * after the timed loop, so the latency figures are taken without it.
 */
#include "base/file.h"
#include "cli/bundle.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "core/tensor.h"
#include "io/npy.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const char bench_usage[] =
    "usage: onyx bench MODEL [--threads N] [--batch B] [--iterations K] [--warmup W]\n"
    "                  [--shape NAME=d0,d1,...]... [--json] [--profile]\n"
    "                  [--save-inputs DIR] [--sub-batch K]\n"
    "\n"
    "  --threads N        intra-op threads (default 0: all cores this process may use)\n"
    "  --batch B          value of each input's symbolic first dimension (default 1);\n"
    "                     throughput counts B items per run\n"
    "  --iterations K     timed runs (default: at least 10 runs and 2 s, or 3 runs and\n"
    "                     10 s, whichever ends first)\n"
    "  --warmup W         untimed runs after the first run (default 2)\n"
    "  --shape NAME=DIMS  the full shape of input NAME (\"NAME=1,128\", \"NAME=\" for a\n"
    "                     scalar), or the value of every symbolic dimension called NAME\n"
    "                     (\"sequence=128\"); other symbolic dimensions are 1\n"
    "  --json             print one JSON object\n"
    "  --profile          time per op type, from extra runs after the timed ones\n"
    "  --save-inputs DIR  also write the generated inputs to DIR/<input>.npy\n"
    "  --sub-batch K      batches of per-sample models (CNNs) run K samples at a time:\n"
    "                     0 (default) when it pays, -1 never\n"
    "\n"
    "Inputs are random and the same on every run: floats uniform in [-1, 1); integers\n"
    "1 for inputs named like masks, 0 for token-type/segment ids, else in [0, 100);\n"
    "booleans true; strings \"onyx\".\n";

#ifndef ONYX_COMMIT
#define ONYX_COMMIT "unknown"
#endif

#define AUTO_MIN_RUNS 10
#define AUTO_MIN_SECONDS 2.0
#define AUTO_SLOW_RUNS 3
#define AUTO_SLOW_SECONDS 10.0
#define MAX_RUNS 100000

typedef struct bench_args {
    const char *model;
    int threads;
    int batch;
    int iterations; /* -1: automatic */
    int warmup;
    int sub_batch;
    bool json;
    bool profile;
    const char *save_dir; /* --save-inputs, or NULL */
    const char **shapes;  /* (n_shapes) "NAME=DIMS" strings from argv */
    int n_shapes;
} bench_args;

/* Returns ONYX_CLI_OK, or an exit status after reporting the problem; -1
 * means --help was printed. */
static int parse_args(int argc, char **argv, bench_args *a) {
    a->batch = 1;
    a->iterations = -1;
    a->warmup = 2;
    a->shapes = calloc((size_t)argc, sizeof *a->shapes);
    if (!a->shapes) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        int r, *target = NULL, minimum = 0;
        const char *what = NULL;
        if (options_done || arg[0] != '-' || !arg[1]) {
            if (a->model) {
                onyx_cli_error("bench: more than one MODEL given ('%s' and '%s')", a->model, arg);
                return ONYX_CLI_USAGE;
            }
            a->model = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--threads", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            target = &a->threads, what = "--threads", minimum = 0;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--batch", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            target = &a->batch, what = "--batch", minimum = 1;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--iterations", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            target = &a->iterations, what = "--iterations", minimum = 1;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--warmup", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            target = &a->warmup, what = "--warmup", minimum = 0;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--sub-batch", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (strcmp(v, "-1") == 0)
                a->sub_batch = -1;
            else
                target = &a->sub_batch, what = "--sub-batch", minimum = 0;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--shape", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->shapes[a->n_shapes++] = v;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--save-inputs", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->save_dir = v;
        } else if (onyx_cli_option(argc, argv, &i, NULL, "--json", NULL) == 1) {
            a->json = true;
        } else if (onyx_cli_option(argc, argv, &i, NULL, "--profile", NULL) == 1) {
            a->profile = true;
        } else if (onyx_cli_option(argc, argv, &i, "-h", "--help", NULL) == 1) {
            fputs(bench_usage, stdout);
            return -1;
        } else {
            onyx_cli_error("bench: unknown option '%s' (see onyx bench --help)", arg);
            return ONYX_CLI_USAGE;
        }
        if (target) {
            if (!onyx_cli_parse_int(v, target) || *target < minimum ||
                (target == &a->iterations && *target > MAX_RUNS)) {
                onyx_cli_error("bench: %s needs an integer %s %d, not '%s'", what,
                               target == &a->iterations ? "in 1.." : ">=",
                               target == &a->iterations ? MAX_RUNS : minimum, v);
                return ONYX_CLI_USAGE;
            }
        }
    }
    if (!a->model) {
        onyx_cli_error("bench: no MODEL given (see onyx bench --help)");
        return ONYX_CLI_USAGE;
    }
    return ONYX_CLI_OK;
}

// ----------------------------------------------------------------------------
// Input shapes

/* A parsed --shape: either the full shape of input `input`, or the value of
 * the symbolic dimension called `dim_name`. */
typedef struct shape_spec {
    int input; /* graph input index, or -1 for a dimension name */
    const char *dim_name;
    size_t dim_name_len;
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];
    bool used;
} shape_spec;

static bool names_symbolic_dim(const onyx_io_info *infos, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < infos[i].ndim; d++) {
            const char *dn = infos[i].dim_names[d];
            if (dn && strlen(dn) == len && memcmp(dn, name, len) == 0) return true;
        }
    return false;
}

/* Parses "d0,d1,..." (empty: a scalar) into dims; false if malformed. */
static bool parse_dims(const char *s, int *ndim, int64_t *dims) {
    *ndim = 0;
    if (!*s) return true;
    for (;;) {
        if (*ndim == ONYX_MAX_DIMS || *s < '0' || *s > '9') return false;
        int64_t v = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            v = v * 10 + (*s - '0');
            if (v > ((int64_t)1 << 40)) return false;
        }
        dims[(*ndim)++] = v;
        if (!*s) return true;
        if (*s++ != ',') return false;
    }
}

/* Resolves one --shape argument against the model's inputs. Names may
 * contain '=': the first prefix before an '=' that names an input (or, failing
 * that, a symbolic dimension) wins. */
static bool parse_shape(const char *spec, const onyx_io_info *infos, int n, shape_spec *out) {
    memset(out, 0, sizeof *out);
    out->input = -1;
    const char *eq = NULL;
    for (const char *e = strchr(spec, '='); e && !eq; e = strchr(e + 1, '=')) {
        size_t len = (size_t)(e - spec);
        for (int i = 0; i < n; i++)
            if (strlen(infos[i].name) == len && memcmp(infos[i].name, spec, len) == 0) {
                out->input = i;
                eq = e;
            }
    }
    for (const char *e = strchr(spec, '='); e && !eq; e = strchr(e + 1, '='))
        if (names_symbolic_dim(infos, n, spec, (size_t)(e - spec))) {
            out->dim_name = spec;
            out->dim_name_len = (size_t)(e - spec);
            eq = e;
        }
    if (!eq) {
        const char *e = strchr(spec, '=');
        if (!e)
            onyx_cli_error("bench: --shape %s: expected NAME=d0,d1,...", spec);
        else
            onyx_cli_error("bench: --shape %s: the model has no input and no symbolic dimension "
                           "named '%.*s'",
                           spec, (int)(e - spec), spec);
        return false;
    }
    if (!parse_dims(eq + 1, &out->ndim, out->dims) || (out->input < 0 && out->ndim != 1)) {
        onyx_cli_error("bench: --shape %s: '%s' is not %s", spec, eq + 1,
                       out->input < 0 ? "one dimension (a non-negative integer)"
                                      : "a list of non-negative integers like 1,3,224,224");
        return false;
    }
    if (out->input >= 0) {
        const onyx_io_info *io = &infos[out->input];
        bool ok = io->ndim < 0 || io->ndim == out->ndim;
        for (int d = 0; ok && io->ndim >= 0 && d < io->ndim; d++)
            if (io->dims[d] >= 0 && !io->dim_names[d] && io->dims[d] != out->dims[d]) ok = false;
        if (!ok) {
            char want[512];
            onyx_cli_format_type(io, want, sizeof want);
            onyx_cli_error("bench: --shape %s: the model declares '%s' as %s", spec, io->name,
                           want);
            return false;
        }
    }
    return true;
}

/* The shape fed to tensor input `i`: its --shape if given; otherwise the
 * declared dims, with a symbolic/unknown first dim set to `batch` and other
 * symbolic dims set by name through --shape, or to 1. */
static bool input_shape(const onyx_io_info *infos, int i, shape_spec *specs, int n_specs, int batch,
                        int *ndim, int64_t *dims) {
    const onyx_io_info *io = &infos[i];
    for (int k = 0; k < n_specs; k++)
        if (specs[k].input == i) {
            specs[k].used = true;
            *ndim = specs[k].ndim;
            memcpy(dims, specs[k].dims, sizeof specs[k].dims);
            return true;
        }
    if (io->ndim < 0) {
        onyx_cli_error("bench: the rank of input '%s' is unknown: give its shape with --shape "
                       "%s=d0,d1,...",
                       io->name, io->name);
        return false;
    }
    *ndim = io->ndim;
    for (int d = 0; d < io->ndim; d++) {
        dims[d] = io->dims[d];
        if (io->dims[d] >= 0 && !io->dim_names[d]) continue;
        dims[d] = d == 0 ? batch : 1;
        const char *dn = io->dim_names[d];
        for (int k = 0; dn && k < n_specs; k++)
            if (specs[k].input < 0 && strlen(dn) == specs[k].dim_name_len &&
                memcmp(dn, specs[k].dim_name, specs[k].dim_name_len) == 0) {
                specs[k].used = true;
                dims[d] = specs[k].dims[0];
            }
    }
    return true;
}

// ----------------------------------------------------------------------------
// Random inputs

/* splitmix64: small, fast and good enough for benchmark inputs. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Case-insensitive substring test for the naming heuristics. */
static bool name_has(const char *name, const char *word) {
    size_t n = strlen(word);
    for (const char *p = name; *p; p++) {
        size_t k = 0;
        while (k < n && p[k] && (p[k] | 0x20) == word[k])
            k++;
        if (k == n) return true;
    }
    return false;
}

/* Fills tensor `t` (allocated) with inputs the way the usage text says.
 * Returns false (after reporting) for element types bench cannot make. */
static bool fill_input(const char *name, onyx_tensor *t, uint64_t *rng) {
    int64_t n = onyx_tensor_count(t);
    onyx_dtype dt = t->dtype;
    bool complex = dt == ONYX_DTYPE_COMPLEX64 || dt == ONYX_DTYPE_COMPLEX128;
    if (complex) n *= 2; /* (real, imaginary) pairs; cannot overflow: the tensor exists */
    if (dt == ONYX_DTYPE_STRING) {
        static char word[] = "onyx"; /* read-only in practice: inputs are borrowed */
        for (int64_t i = 0; i < n; i++)
            ((char **)t->data)[i] = word;
        return true;
    }
    if (dt == ONYX_DTYPE_BOOL) {
        memset(t->data, 1, (size_t)n);
        return true;
    }
    bool is_float = complex || onyx_dtype_is_float(dt);
    if (!is_float && !onyx_dtype_is_signed_int(dt) && !onyx_dtype_is_unsigned_int(dt)) {
        onyx_cli_error("bench: input '%s' has element type %s, which bench cannot generate", name,
                       onyx_dtype_name(dt));
        return false;
    }
    onyx_dtype from = is_float ? ONYX_DTYPE_FLOAT : ONYX_DTYPE_INT64;
    if ((uint64_t)n > (SIZE_MAX - 1) / 8) {
        onyx_cli_error("bench: input '%s' is too large", name);
        return false;
    }
    void *tmp = dt == from || dt == ONYX_DTYPE_COMPLEX64 ? t->data : malloc((size_t)n * 8 + 1);
    if (!tmp) {
        onyx_cli_error("out of memory");
        return false;
    }
    if (is_float) {
        float *f = tmp;
        for (int64_t i = 0; i < n; i++)
            f[i] = (float)((double)(next_random(rng) >> 40) / (double)(1ull << 23) - 1.0);
    } else {
        int64_t *v = tmp;
        bool four_bit = dt == ONYX_DTYPE_INT4 || dt == ONYX_DTYPE_UINT4;
        int64_t fixed = name_has(name, "mask")                                ? 1
                        : name_has(name, "type") || name_has(name, "segment") ? 0
                                                                              : -1;
        for (int64_t i = 0; i < n; i++)
            v[i] = fixed >= 0 ? fixed : (int64_t)(next_random(rng) % (four_bit ? 8 : 100));
    }
    onyx_status st = ONYX_OK;
    if (tmp != t->data) {
        onyx_dtype to = dt == ONYX_DTYPE_COMPLEX128 ? ONYX_DTYPE_DOUBLE : dt;
        st = onyx_convert(to, t->data, from, tmp, n, true);
        free(tmp);
    }
    if (st != ONYX_OK) {
        onyx_cli_error("bench: cannot make values of type %s for input '%s'", onyx_dtype_name(dt),
                       name);
        return false;
    }
    return true;
}

/* Writes input `t` to dir/<name>.npy, the name with every character outside
 * [A-Za-z0-9._-] replaced by '_' (as `onyx run` names its outputs). */
static bool save_input(const char *dir, const char *name, const onyx_tensor *t) {
    char path[4096];
    size_t n = (size_t)snprintf(path, sizeof path, "%s/", dir);
    for (const char *p = name; *p && n + 5 < sizeof path; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        path[n++] = ok ? c : '_';
    }
    if (n + 5 >= sizeof path) {
        onyx_cli_error("bench: --save-inputs: path too long");
        return false;
    }
    memcpy(path + n, ".npy", 5);
    onyx_tensor_view v;
    onyx_tensor_to_view(t, &v);
    onyx_error err = {0};
    if (onyx_npy_save(path, &v, &err) != ONYX_OK) {
        onyx_cli_error("bench: --save-inputs: %s", err.message);
        return false;
    }
    return true;
}

// ----------------------------------------------------------------------------
// Timing and statistics

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Peak resident set of this program so far, in MB. Linux's VmHWM (in
 * /proc/self/status) when it can be read, because getrusage's ru_maxrss
 * carries over the peak of the process image before execve: launched from a
 * big parent (a Python harness that loaded the model), onyx would report the
 * parent's peak. Elsewhere ru_maxrss (KB on Linux and the BSDs). */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long long kb = -1;
        while (kb < 0 && fgets(line, sizeof line, f))
            if (strncmp(line, "VmHWM:", 6) == 0 && sscanf(line + 6, "%lld", &kb) != 1) kb = -1;
        fclose(f);
        if (kb >= 0) return (double)kb / 1024.0;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile q in [0, 1] of sorted `v` (n >= 1), interpolated linearly
 * between closest ranks, as numpy.percentile does by default, so the numbers
 * compare with bench/compare.py's onnxruntime runner. */
static double percentile(const double *v, int n, double q) {
    double pos = q * (double)(n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1) return v[n - 1];
    double frac = pos - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

typedef struct bench_result {
    int threads, runs;
    double model_ms, session_ms, first_run_ms;
    double p50, p90, p99, mean, min, max, throughput;
    double load_rss_mb, peak_rss_mb;
} bench_result;

// ----------------------------------------------------------------------------
// Output

static void print_shape_text(const onyx_tensor *t) {
    printf("%s[", onyx_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
        printf(d ? ",%lld" : "%lld", (long long)t->dims[d]);
    printf("]");
}

// ----------------------------------------------------------------------------
// Per-op-type profile (--profile)

enum { PROFILE_MAX_TYPES = 256, PROFILE_RUNS = 5 };

typedef struct op_time {
    const char *op_type; /* borrowed from the model */
    int64_t ns, calls;
    double flops;
} op_time;

typedef struct profile {
    op_time types[PROFILE_MAX_TYPES];
    int n_types, runs;
    int64_t total_ns;
} profile;

static void on_node(void *user, const onyx_profile_event *e) {
    profile *p = user;
    p->total_ns += e->ns;
    for (int i = 0; i < p->n_types; i++)
        if (strcmp(p->types[i].op_type, e->op_type) == 0) {
            p->types[i].ns += e->ns;
            p->types[i].calls++;
            p->types[i].flops += e->flops;
            return;
        }
    if (p->n_types < PROFILE_MAX_TYPES)
        p->types[p->n_types++] = (op_time){e->op_type, e->ns, 1, e->flops};
}

/* GFLOP/s of an op type (direct-algorithm count), 0 when it reports none. */
static double gflops_per_s(const op_time *t) {
    return t->flops > 0 && t->ns > 0 ? t->flops / (double)t->ns : 0;
}

static int by_time_desc(const void *a, const void *b) {
    const op_time *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static void print_profile_text(const profile *p) {
    printf("profile:     %d runs, time per run by op type\n", p->runs);
    printf("  %-28s %8s %10s %7s %9s\n", "op type", "calls", "ms", "%", "GFLOP/s");
    for (int i = 0; i < p->n_types; i++) {
        const op_time *t = &p->types[i];
        printf("  %-28s %8.1f %10.3f %6.1f%%", t->op_type, (double)t->calls / p->runs,
               (double)t->ns / 1e6 / p->runs, p->total_ns ? 100.0 * (double)t->ns / (double)p->total_ns : 0);
        if (gflops_per_s(t) > 0) printf(" %9.1f", gflops_per_s(t));
        putchar('\n');
    }
}

static void print_profile_json(onyx_json *j, const profile *p) {
    onyx_json_begin_array(j);
    for (int i = 0; i < p->n_types; i++) {
        const op_time *t = &p->types[i];
        onyx_json_begin_object(j);
        onyx_json_key(j, "op_type");
        onyx_json_string(j, t->op_type);
        onyx_json_key(j, "calls_per_run");
        onyx_json_double(j, (double)t->calls / p->runs);
        onyx_json_key(j, "ms_per_run");
        onyx_json_double(j, (double)t->ns / 1e6 / p->runs);
        onyx_json_key(j, "percent");
        onyx_json_double(j, p->total_ns ? 100.0 * (double)t->ns / (double)p->total_ns : 0);
        onyx_json_key(j, "gflop_per_run");
        onyx_json_double(j, t->flops / 1e9 / p->runs);
        onyx_json_key(j, "gflops_per_s");
        onyx_json_double(j, gflops_per_s(t));
        onyx_json_end_object(j);
    }
    onyx_json_end_array(j);
}

static void print_text(const bench_args *a, const onyx_io_info *infos, const onyx_value *in,
                       int n_in, const bench_result *r, const profile *prof) {
    printf("model:       %s\n", a->model);
    printf("inputs:     ");
    for (int i = 0; i < n_in; i++) {
        printf(" %s ", infos[i].name);
        if (in[i].kind == ONYX_KIND_TENSOR)
            print_shape_text(&in[i].tensor);
        else
            printf("(none)");
    }
    printf("\nthreads:     %d\nbatch:       %d\n", r->threads, a->batch);
    printf("load:        %.2f ms (model %.2f ms + session %.2f ms)\n", r->model_ms + r->session_ms,
           r->model_ms, r->session_ms);
    printf("first run:   %.2f ms\n", r->first_run_ms);
    printf("latency:     p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, mean %.3f ms, min %.3f ms, "
           "max %.3f ms\n",
           r->p50, r->p90, r->p99, r->mean, r->min, r->max);
    printf("             %d timed runs after %d warm-up runs\n", r->runs, a->warmup);
    printf("throughput:  %.2f items/s\n", r->throughput);
    printf("peak RSS:    %.1f MB (%.1f MB after load)\n", r->peak_rss_mb, r->load_rss_mb);
    if (prof) print_profile_text(prof);
}

static void print_json(const bench_args *a, const onyx_io_info *infos, const onyx_value *in,
                       int n_in, const bench_result *r, const profile *prof) {
    onyx_json j;
    onyx_json_init(&j, stdout, true);
    onyx_json_begin_object(&j);
    onyx_json_key(&j, "model");
    onyx_json_string(&j, a->model);
    onyx_json_key(&j, "onyx_version");
    onyx_json_string(&j, ONYX_VERSION);
    onyx_json_key(&j, "commit");
    onyx_json_string(&j, ONYX_COMMIT);
    onyx_json_key(&j, "cpu");
    onyx_json_string(&j, onyx_cpu_features());
    onyx_json_key(&j, "threads");
    onyx_json_int(&j, r->threads);
    onyx_json_key(&j, "batch");
    onyx_json_int(&j, a->batch);
    onyx_json_key(&j, "iterations");
    onyx_json_int(&j, r->runs);
    onyx_json_key(&j, "warmup");
    onyx_json_int(&j, a->warmup);
    onyx_json_key(&j, "inputs");
    onyx_json_begin_array(&j);
    for (int i = 0; i < n_in; i++) {
        onyx_json_begin_object(&j);
        onyx_json_key(&j, "name");
        onyx_json_string(&j, infos[i].name);
        if (in[i].kind == ONYX_KIND_TENSOR) {
            onyx_json_key(&j, "dtype");
            onyx_json_string(&j, onyx_dtype_name(in[i].tensor.dtype));
            onyx_json_key(&j, "shape");
            onyx_json_begin_array_compact(&j);
            for (int d = 0; d < in[i].tensor.ndim; d++)
                onyx_json_int(&j, in[i].tensor.dims[d]);
            onyx_json_end_array(&j);
        } else {
            onyx_json_key(&j, "shape");
            onyx_json_null(&j);
        }
        onyx_json_end_object(&j);
    }
    onyx_json_end_array(&j);
    const struct {
        const char *key;
        double v;
    } nums[] = {
        {"load_ms", r->model_ms + r->session_ms},
        {"model_load_ms", r->model_ms},
        {"session_new_ms", r->session_ms},
        {"first_run_ms", r->first_run_ms},
        {"p50_ms", r->p50},
        {"p90_ms", r->p90},
        {"p99_ms", r->p99},
        {"mean_ms", r->mean},
        {"min_ms", r->min},
        {"max_ms", r->max},
        {"throughput_per_s", r->throughput},
        {"load_rss_mb", r->load_rss_mb},
        {"peak_rss_mb", r->peak_rss_mb},
    };
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        onyx_json_key(&j, nums[k].key);
        onyx_json_double(&j, nums[k].v);
    }
    if (prof) {
        onyx_json_key(&j, "profile");
        print_profile_json(&j, prof);
    }
    onyx_json_end_object(&j);
    onyx_json_finish(&j);
}

// ----------------------------------------------------------------------------
// The command

/* Runs the session once on the prepared inputs; reports failures. */
static bool run_once(onyx_session *s, int n_bound, const char *const *names,
                     const onyx_value *const *bound, int n_out, const onyx_value **outs) {
    onyx_error err = {0};
    if (onyx_session_run(s, n_bound, names, bound, n_out, NULL, outs, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        return false;
    }
    return true;
}

int onyx_cli_bench(int argc, char **argv) {
    bench_args a;
    memset(&a, 0, sizeof a);
    int status = parse_args(argc, argv, &a);
    if (status != ONYX_CLI_OK) {
        free(a.shapes);
        return status < 0 ? ONYX_CLI_OK : status;
    }
    status = ONYX_CLI_FAIL;
    onyx_model *m = NULL;
    onyx_session *s = NULL;
    onyx_io_info *infos = NULL;
    onyx_value *in = NULL;
    const char **names = NULL;
    const onyx_value **bound = NULL, **outs = NULL;
    shape_spec *specs = NULL;
    double *times = NULL;
    profile *prof = NULL;
    int n_in = 0;
    bench_result r;
    memset(&r, 0, sizeof r);
    onyx_options opts;
    onyx_options_init(&opts);
    opts.threads = a.threads;
    opts.sub_batch = a.sub_batch;
    onyx_error err = {0};

    /* load_ms is file to a ready session: model load (map, decode, resolve,
     * passes, prepacking) plus session creation (thread pool, plan state). */
    double t0 = now_ms();
    if (onyx_cli_load_model(a.model, &opts, &m, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        goto done;
    }
    double t1 = now_ms();
    if (onyx_session_new(m, &opts, &s, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        goto done;
    }
    double t2 = now_ms();
    r.model_ms = t1 - t0;
    r.session_ms = t2 - t1;
    r.load_rss_mb = peak_rss_mb();
    r.threads = a.threads > 0 ? a.threads : onyx_cpu_count();

    n_in = onyx_model_num_inputs(m);
    int n_out = onyx_model_num_outputs(m);
    infos = calloc((size_t)n_in + 1, sizeof *infos);
    in = calloc((size_t)n_in + 1, sizeof *in);
    names = calloc((size_t)n_in + 1, sizeof *names);
    bound = calloc((size_t)n_in + 1, sizeof *bound);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    specs = calloc((size_t)a.n_shapes + 1, sizeof *specs);
    if (!infos || !in || !names || !bound || !outs || !specs) {
        onyx_cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++)
        if (onyx_model_input(m, i, &infos[i]) != ONYX_OK) {
            onyx_cli_error("cannot describe input %d", i);
            goto done;
        }
    for (int k = 0; k < a.n_shapes; k++)
        if (!parse_shape(a.shapes[k], infos, n_in, &specs[k])) {
            status = ONYX_CLI_USAGE;
            goto done;
        }

    /* Inputs: one deterministic random tensor each, made once and reused by
     * every run (as onnxruntime_perf_test does), so the timing is the model's. */
    uint64_t rng = 0x6f6e7978; /* "onyx" */
    bool batch_used = false;
    for (int i = 0; i < n_in; i++) {
        const onyx_io_info *io = &infos[i];
        names[i] = io->name;
        bound[i] = &in[i];
        if (io->optional || io->kind == ONYX_KIND_NONE) continue; /* bound as absent */
        if (io->kind != ONYX_KIND_TENSOR) {
            onyx_cli_error("bench: input '%s' is a %s; bench feeds tensor inputs only", io->name,
                           onyx_cli_kind_name(io->kind));
            goto done;
        }
        int ndim;
        int64_t dims[ONYX_MAX_DIMS];
        if (!input_shape(infos, i, specs, a.n_shapes, a.batch, &ndim, dims)) goto done;
        if (ndim > 0 && (io->ndim < 0 || io->dims[0] < 0 || io->dim_names[0])) batch_used = true;
        for (int k = 0; k < a.n_shapes; k++)
            if (specs[k].input == i) batch_used = true; /* the user chose the batch */
        if (onyx_dims_count(ndim, dims) < 0 ||
            onyx_dtype_bytes(io->dtype, onyx_dims_count(ndim, dims)) == SIZE_MAX) {
            onyx_cli_error("bench: input '%s' would be too large", io->name);
            goto done;
        }
        onyx_dtype dt = io->dtype == ONYX_DTYPE_UNDEFINED ? ONYX_DTYPE_FLOAT : io->dtype;
        if (onyx_tensor_alloc(&in[i].tensor, dt, ndim, dims) != ONYX_OK) {
            onyx_cli_error("bench: cannot allocate input '%s'", io->name);
            goto done;
        }
        in[i].kind = ONYX_KIND_TENSOR;
        if (!fill_input(io->name, &in[i].tensor, &rng)) goto done;
        if (a.save_dir && !save_input(a.save_dir, io->name, &in[i].tensor)) goto done;
    }
    for (int k = 0; k < a.n_shapes; k++)
        if (!specs[k].used) {
            onyx_cli_error("bench: --shape %s: no input uses it", a.shapes[k]);
            status = ONYX_CLI_USAGE;
            goto done;
        }
    if (a.batch > 1 && !batch_used) {
        onyx_cli_error("bench: --batch %d: no input has a symbolic first dimension (set the "
                       "shapes with --shape)",
                       a.batch);
        status = ONYX_CLI_USAGE;
        goto done;
    }

    double t3 = now_ms();
    if (!run_once(s, n_in, names, bound, n_out, outs)) goto done;
    r.first_run_ms = now_ms() - t3;
    for (int w = 0; w < a.warmup; w++)
        if (!run_once(s, n_in, names, bound, n_out, outs)) goto done;

    int cap = a.iterations > 0 ? a.iterations : 1024;
    times = malloc((size_t)cap * sizeof *times);
    if (!times) {
        onyx_cli_error("out of memory");
        goto done;
    }
    double start = now_ms(), total = 0;
    int runs = 0;
    for (;;) {
        if (a.iterations > 0 && runs == a.iterations) break;
        if (a.iterations < 0) {
            double elapsed = (now_ms() - start) / 1e3;
            if ((runs >= AUTO_MIN_RUNS && elapsed >= AUTO_MIN_SECONDS) ||
                (runs >= AUTO_SLOW_RUNS && elapsed >= AUTO_SLOW_SECONDS) || runs == MAX_RUNS)
                break;
        }
        if (runs == cap) {
            double *grown = realloc(times, (size_t)cap * 2 * sizeof *times);
            if (!grown) {
                onyx_cli_error("out of memory");
                goto done;
            }
            times = grown;
            cap *= 2;
        }
        double b = now_ms();
        if (!run_once(s, n_in, names, bound, n_out, outs)) goto done;
        times[runs] = now_ms() - b;
        total += times[runs++];
    }
    /* Throughput over the wall time of the timed loop (bookkeeping included),
     * latency from the individual runs. */
    double wall_s = (now_ms() - start) / 1e3;
    r.runs = runs;
    r.mean = total / runs;
    r.throughput = wall_s > 0 ? (double)a.batch * runs / wall_s : 0;
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    r.min = times[0];
    r.max = times[runs - 1];
    r.p50 = percentile(times, runs, 0.50);
    r.p90 = percentile(times, runs, 0.90);
    r.p99 = percentile(times, runs, 0.99);
    r.peak_rss_mb = peak_rss_mb();

    if (a.profile) {
        prof = calloc(1, sizeof *prof);
        if (!prof) {
            onyx_cli_error("out of memory");
            goto done;
        }
        onyx_session_set_profiler(s, on_node, prof);
        for (prof->runs = 0; prof->runs < PROFILE_RUNS; prof->runs++)
            if (!run_once(s, n_in, names, bound, n_out, outs)) goto done;
        onyx_session_set_profiler(s, NULL, NULL);
        qsort(prof->types, (size_t)prof->n_types, sizeof prof->types[0], by_time_desc);
    }
    if (a.json)
        print_json(&a, infos, in, n_in, &r, prof);
    else
        print_text(&a, infos, in, n_in, &r, prof);
    status = ONYX_CLI_OK;
done:
    onyx_session_free(s);
    if (in)
        for (int i = 0; i < n_in; i++) {
            /* String elements point at a shared literal: drop them before the
             * tensor frees what it believes it owns. */
            if (in[i].tensor.dtype == ONYX_DTYPE_STRING && in[i].tensor.data)
                memset(in[i].tensor.data, 0, onyx_tensor_nbytes(&in[i].tensor));
            onyx_value_clear(&in[i]);
        }
    free(in);
    free(infos);
    free(names);
    free(bound);
    free(outs);
    free(specs);
    free(times);
    free(prof);
    onyx_model_free(m);
    free(a.shapes);
    return status;
}
