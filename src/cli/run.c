/* run.c - `onyx run MODEL [-i [NAME=]PATH]... [-o DIR] [--format npy|pb]
 * [--threads N]`: binds input files to graph inputs, runs the model once and
 * writes every output to DIR. Owns input binding rules, output file naming
 * and the JSON form of sequence/map outputs; the codecs are in src/io/.
 */
#include "cli/bundle.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "core/tensor.h"
#include "io/tensorfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char run_usage[] =
    "usage: onyx run MODEL [-i [NAME=]PATH]... [-o DIR] [--format npy|pb] [--threads N]\n"
    "\n"
    "  -i, --input [NAME=]PATH  an input tensor/value file (.npy or .pb); without NAME=\n"
    "                           it binds to the next graph input not yet bound\n"
    "  -o, --output DIR         where outputs are written (default: current directory;\n"
    "                           created if missing)\n"
    "  --format npy|pb          output file format (default npy; sequences and maps\n"
    "                           are written as .json in npy mode)\n"
    "  --threads N              intra-op threads (default 0: all available cores)\n";

typedef struct run_args {
    const char *model;
    const char **inputs; /* (n_inputs) "[NAME=]PATH" strings from argv */
    int n_inputs;
    const char *outdir;
    onyx_tensorfile_format format;
    int threads;
} run_args;

/* Returns ONYX_CLI_OK, or an exit status after reporting the problem; -1
 * means --help was printed. */
static int parse_args(int argc, char **argv, run_args *a) {
    a->outdir = ".";
    a->format = ONYX_TENSORFILE_NPY;
    a->inputs = calloc((size_t)argc, sizeof *a->inputs);
    if (!a->inputs) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        int r;
        if (options_done || arg[0] != '-' || !arg[1]) {
            if (a->model) {
                onyx_cli_error("run: more than one MODEL given ('%s' and '%s'); inputs go "
                               "after -i",
                               a->model, arg);
                return ONYX_CLI_USAGE;
            }
            a->model = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if ((r = onyx_cli_option(argc, argv, &i, "-i", "--input", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->inputs[a->n_inputs++] = v;
        } else if ((r = onyx_cli_option(argc, argv, &i, "-o", "--output", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->outdir = v;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--format", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (strcmp(v, "npy") == 0)
                a->format = ONYX_TENSORFILE_NPY;
            else if (strcmp(v, "pb") == 0)
                a->format = ONYX_TENSORFILE_PB;
            else {
                onyx_cli_error("run: --format must be npy or pb, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--threads", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!onyx_cli_parse_int(v, &a->threads)) {
                onyx_cli_error("run: --threads needs a non-negative integer, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if (onyx_cli_option(argc, argv, &i, "-h", "--help", NULL) == 1) {
            fputs(run_usage, stdout);
            return -1;
        } else {
            return onyx_cli_usage_error(run_usage, "run: unknown option '%s'", arg);
        }
    }
    if (!a->model) {
        return onyx_cli_usage_error(run_usage, "run: no MODEL given");
    }
    if (!*a->outdir) {
        onyx_cli_error("run: -o needs a directory");
        return ONYX_CLI_USAGE;
    }
    return ONYX_CLI_OK;
}

// ----------------------------------------------------------------------------
// Input binding and checking

/* Index of the graph input called name[0..len), or -1. */
static int find_input(const onyx_io_info *infos, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(infos[i].name) == len && memcmp(infos[i].name, name, len) == 0) return i;
    return -1;
}

/* "a, b, c" for messages. */
static void list_inputs(const onyx_io_info *infos, int n, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", infos[i].name);
    if (n == 0) snprintf(buf, cap, "none");
}

/* The type of a loaded value, formatted like a graph type. */
static void format_value_type(const onyx_value *v, char *buf, size_t cap) {
    onyx_io_info io;
    memset(&io, 0, sizeof io);
    io.kind = v->kind;
    if (v->kind == ONYX_KIND_TENSOR) {
        io.dtype = v->tensor.dtype;
        io.ndim = v->tensor.ndim;
        memcpy(io.dims, v->tensor.dims, sizeof io.dims);
    } else if (v->kind == ONYX_KIND_SEQUENCE) {
        io.dtype = v->elem_type;
    } else if (v->kind == ONYX_KIND_MAP) {
        io.key_dtype = v->tensor.dtype;
        io.dtype = v->map_values && v->map_values->kind == ONYX_KIND_TENSOR
                       ? v->map_values->tensor.dtype
                       : ONYX_DTYPE_UNDEFINED;
    }
    if (v->kind == ONYX_KIND_NONE)
        snprintf(buf, cap, "an empty optional");
    else
        onyx_cli_format_type(&io, buf, cap);
}

/* Checks that value `v` read from `path` fits graph input `io`; reports and
 * returns false otherwise. Optional inputs (kind NONE) take anything. */
static bool check_input(const onyx_io_info *io, const onyx_value *v, const char *path) {
    if (io->kind == ONYX_KIND_NONE || v->kind == ONYX_KIND_NONE) return true;
    bool ok = io->kind == v->kind;
    if (ok && io->kind == ONYX_KIND_TENSOR) {
        const onyx_tensor *t = &v->tensor;
        if (io->dtype != ONYX_DTYPE_UNDEFINED && t->dtype != io->dtype) ok = false;
        if (io->ndim >= 0 && t->ndim != io->ndim) ok = false;
        for (int d = 0; ok && io->ndim >= 0 && d < io->ndim; d++)
            if (io->dims[d] >= 0 && !io->dim_names[d] && io->dims[d] != t->dims[d]) ok = false;
    } else if (ok && io->kind == ONYX_KIND_SEQUENCE) {
        if (io->dtype != ONYX_DTYPE_UNDEFINED && v->n_items > 0 &&
            v->elem_type != ONYX_DTYPE_UNDEFINED && v->elem_type != io->dtype)
            ok = false;
    }
    if (ok) return true;
    char want[512], got[512];
    onyx_cli_format_type(io, want, sizeof want);
    format_value_type(v, got, sizeof got);
    onyx_cli_error("input '%s' from %s: the model expects %s, the file holds %s", io->name, path,
                   want, got);
    return false;
}

/* Loads every -i argument into values[] (indexed like the graph inputs).
 * Named arguments are bound first, wherever they appear; positional ones then
 * take the graph inputs still unbound, in graph order. */
static int bind_inputs(const run_args *a, const onyx_io_info *infos, int n_in,
                       onyx_value **values) {
    int status = ONYX_CLI_FAIL;
    int *target = calloc((size_t)a->n_inputs + 1, sizeof *target); /* graph input per -i */
    const char **paths = calloc((size_t)a->n_inputs + 1, sizeof *paths);
    bool *taken = calloc((size_t)n_in + 1, sizeof *taken);
    if (!target || !paths || !taken) {
        onyx_cli_error("out of memory");
        goto done;
    }
    for (int k = 0; k < a->n_inputs; k++) {
        const char *spec = a->inputs[k];
        const char *eq = strchr(spec, '=');
        int idx = -1;
        /* Input names may themselves contain '=': take the first prefix
         * ending before an '=' that names an input. */
        for (const char *e = eq; e && idx < 0; e = strchr(e + 1, '='))
            if ((idx = find_input(infos, n_in, spec, (size_t)(e - spec))) >= 0) eq = e;
        paths[k] = idx >= 0 ? eq + 1 : spec;
        target[k] = idx;
        if (idx < 0 && eq && access(spec, F_OK) != 0) {
            /* Not an input name and not a file called "a=b": a typo. */
            char names[1024];
            list_inputs(infos, n_in, names, sizeof names);
            onyx_cli_error("-i %s: the model has no input named '%.*s' (inputs: %s)", spec,
                           (int)(eq - spec), spec, names);
            goto done;
        }
        if (idx >= 0) {
            if (taken[idx]) {
                onyx_cli_error("-i %s: input '%s' is given twice", spec, infos[idx].name);
                goto done;
            }
            taken[idx] = true;
        }
    }
    int cursor = 0; /* next graph input for a positional file */
    for (int k = 0; k < a->n_inputs; k++) {
        if (target[k] >= 0) continue;
        while (cursor < n_in && taken[cursor])
            cursor++;
        if (cursor == n_in) {
            onyx_cli_error("-i %s: too many inputs (the model has %d)", a->inputs[k], n_in);
            goto done;
        }
        target[k] = cursor;
        taken[cursor++] = true;
    }
    for (int k = 0; k < a->n_inputs; k++) {
        int idx = target[k];
        if (!*paths[k]) {
            onyx_cli_error("-i %s: no file given for input '%s'", a->inputs[k], infos[idx].name);
            goto done;
        }
        onyx_error err = {0};
        if (onyx_tensorfile_load(paths[k], &infos[idx], &values[idx], &err) != ONYX_OK) {
            onyx_cli_error("input '%s': %s", infos[idx].name, err.message);
            goto done;
        }
        if (!check_input(&infos[idx], values[idx], paths[k])) goto done;
    }
    status = ONYX_CLI_OK;
done:
    free(target);
    free(paths);
    free(taken);
    return status;
}

// ----------------------------------------------------------------------------
// Outputs

/* Output names become file names: anything outside [A-Za-z0-9._-] -> '_'. */
static void sanitize(const char *name, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < cap; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n++] = ok ? c : '_';
    }
    if (n == 0) out[n++] = '_'; /* ONNX forbids empty names; never write ".npy" */
    out[n] = 0;
}

/* Creates `dir` and its missing parents, like mkdir -p. */
static bool make_dirs(const char *dir) {
    char path[4096];
    size_t len = strlen(dir);
    if (len >= sizeof path) {
        onyx_cli_error("output directory name too long");
        return false;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != 0) continue;
        char saved = path[i];
        path[i] = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            onyx_cli_error("cannot create directory %s: %s", path, strerror(errno));
            return false;
        }
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        onyx_cli_error("%s is not a directory", dir);
        return false;
    }
    return true;
}

/* One element of a tensor as JSON. */
static void json_element(onyx_json *j, const onyx_tensor *t, int64_t i) {
    const uint8_t *p = (const uint8_t *)t->data + (size_t)i * onyx_dtype_size(t->dtype);
    switch (t->dtype) {
    case ONYX_DTYPE_FLOAT: {
        float f;
        memcpy(&f, p, sizeof f);
        onyx_json_float(j, f);
        break;
    }
    case ONYX_DTYPE_DOUBLE: {
        double d;
        memcpy(&d, p, sizeof d);
        onyx_json_double(j, d);
        break;
    }
    case ONYX_DTYPE_COMPLEX64:
    case ONYX_DTYPE_COMPLEX128: {
        onyx_json_begin_array(j);
        for (int k = 0; k < 2; k++) {
            if (t->dtype == ONYX_DTYPE_COMPLEX64) {
                float f;
                memcpy(&f, p + 4 * k, sizeof f);
                onyx_json_float(j, f);
            } else {
                double d;
                memcpy(&d, p + 8 * k, sizeof d);
                onyx_json_double(j, d);
            }
        }
        onyx_json_end_array(j);
        break;
    }
    case ONYX_DTYPE_INT8:
    case ONYX_DTYPE_INT4:
        onyx_json_int(j, (int8_t)p[0]);
        break;
    case ONYX_DTYPE_INT16: {
        int16_t v;
        memcpy(&v, p, sizeof v);
        onyx_json_int(j, v);
        break;
    }
    case ONYX_DTYPE_INT32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        onyx_json_int(j, v);
        break;
    }
    case ONYX_DTYPE_INT64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        onyx_json_int(j, v);
        break;
    }
    case ONYX_DTYPE_UINT8:
    case ONYX_DTYPE_UINT4:
        onyx_json_uint(j, p[0]);
        break;
    case ONYX_DTYPE_UINT16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        onyx_json_uint(j, v);
        break;
    }
    case ONYX_DTYPE_UINT32: {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        onyx_json_uint(j, v);
        break;
    }
    case ONYX_DTYPE_UINT64: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        onyx_json_uint(j, v);
        break;
    }
    case ONYX_DTYPE_BOOL:
        onyx_json_bool(j, p[0] != 0);
        break;
    case ONYX_DTYPE_STRING: {
        const char *s = ((char *const *)t->data)[i];
        onyx_json_string(j, s ? s : "");
        break;
    }
    default: {
        /* float16, bfloat16, float8, float4: as float32 */
        float f = 0;
        if (onyx_convert(ONYX_DTYPE_FLOAT, &f, t->dtype, p, 1, false) != ONYX_OK)
            onyx_json_null(j);
        else
            onyx_json_float(j, f);
        break;
    }
    }
}

static void json_value(onyx_json *j, const onyx_value *v) {
    switch (v->kind) {
    case ONYX_KIND_TENSOR: {
        const onyx_tensor *t = &v->tensor;
        onyx_json_begin_object(j);
        onyx_json_key(j, "dtype");
        onyx_json_string(j, onyx_dtype_name(t->dtype));
        onyx_json_key(j, "shape");
        onyx_json_begin_array_compact(j);
        for (int d = 0; d < t->ndim; d++)
            onyx_json_int(j, t->dims[d]);
        onyx_json_end_array(j);
        onyx_json_key(j, "data");
        onyx_json_begin_array_compact(j);
        int64_t n = onyx_tensor_count(t);
        for (int64_t i = 0; i < n; i++)
            json_element(j, t, i);
        onyx_json_end_array(j);
        onyx_json_end_object(j);
        break;
    }
    case ONYX_KIND_SEQUENCE:
        onyx_json_begin_array(j);
        for (int64_t i = 0; i < v->n_items; i++)
            json_value(j, &v->items[i]);
        onyx_json_end_array(j);
        break;
    case ONYX_KIND_MAP: {
        /* Keys become JSON object keys (integers in decimal); a value is a
         * scalar when the map's values are a 1-D tensor, else a nested value. */
        const onyx_tensor *keys = &v->tensor;
        const onyx_value *vals = v->map_values;
        int64_t n = onyx_tensor_count(keys);
        onyx_json_begin_object(j);
        for (int64_t i = 0; i < n; i++) {
            char kbuf[32];
            const char *key = kbuf;
            if (keys->dtype == ONYX_DTYPE_STRING) {
                key = ((char *const *)keys->data)[i];
                if (!key) key = "";
            } else {
                snprintf(kbuf, sizeof kbuf, "%lld", (long long)onyx_tensor_get_i64(keys, i));
            }
            onyx_json_key(j, key);
            if (!vals)
                onyx_json_null(j);
            else if (vals->kind == ONYX_KIND_TENSOR && i < onyx_tensor_count(&vals->tensor))
                json_element(j, &vals->tensor, i);
            else if (vals->kind == ONYX_KIND_SEQUENCE && i < vals->n_items)
                json_value(j, &vals->items[i]);
            else
                onyx_json_null(j);
        }
        onyx_json_end_object(j);
        break;
    }
    default:
        onyx_json_null(j);
        break;
    }
}

static bool write_json(const char *path, const onyx_value *v) {
    FILE *f = fopen(path, "w");
    if (!f) {
        onyx_cli_error("cannot create %s: %s", path, strerror(errno));
        return false;
    }
    onyx_json j;
    onyx_json_init(&j, f, true);
    json_value(&j, v);
    onyx_json_finish(&j);
    bool ok = !ferror(f);
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        onyx_cli_error("cannot write %s", path);
        remove(path);
    }
    return ok;
}

static int write_outputs(const run_args *a, const onyx_model *m, const onyx_value **outs,
                         int n_out) {
    if (!make_dirs(a->outdir)) return ONYX_CLI_FAIL;
    char(*files)[300] = calloc((size_t)n_out + 1, sizeof *files);
    if (!files) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL;
    }
    int status = ONYX_CLI_OK;
    for (int i = 0; i < n_out; i++) {
        onyx_io_info io;
        if (onyx_model_output(m, i, &io) != ONYX_OK) {
            onyx_cli_error("cannot describe output %d", i);
            status = ONYX_CLI_FAIL;
            goto done;
        }
        sanitize(io.name, files[i], sizeof files[i]);
        for (int k = 0; k < i; k++)
            if (strcmp(files[k], files[i]) == 0) {
                onyx_cli_error("outputs %d and %d would both be written to %s.*; rename one", k, i,
                               files[i]);
                status = ONYX_CLI_FAIL;
                goto done;
            }
    }
    for (int i = 0; i < n_out; i++) {
        onyx_io_info io;
        onyx_model_output(m, i, &io);
        const onyx_value *v = outs[i];
        bool as_json = a->format == ONYX_TENSORFILE_NPY && v->kind != ONYX_KIND_TENSOR;
        const char *ext = as_json ? ".json" : a->format == ONYX_TENSORFILE_PB ? ".pb" : ".npy";
        size_t dl = strlen(a->outdir);
        bool slash = dl > 0 && a->outdir[dl - 1] == '/';
        char path[4096 + 320];
        snprintf(path, sizeof path, "%s%s%s%s", a->outdir, slash ? "" : "/", files[i], ext);
        if (as_json) {
            if (!write_json(path, v)) {
                status = ONYX_CLI_FAIL;
                goto done;
            }
        } else {
            onyx_error err = {0};
            if (onyx_tensorfile_save(path, a->format, io.name, v, &err) != ONYX_OK) {
                onyx_cli_error("output '%s': %s", io.name, err.message);
                status = ONYX_CLI_FAIL;
                goto done;
            }
        }
        char type[512];
        format_value_type(v, type, sizeof type);
        printf("%s: %s -> %s\n", io.name, type, path);
    }
done:
    free(files);
    return status;
}

// ----------------------------------------------------------------------------

int onyx_cli_run(int argc, char **argv) {
    run_args a;
    memset(&a, 0, sizeof a);
    onyx_model *m = NULL;
    onyx_session *s = NULL;
    onyx_io_info *infos = NULL;
    onyx_value **values = NULL;
    const char **names = NULL;
    const onyx_value **bound = NULL, **outs = NULL;
    int n_in = 0, n_out = 0;

    int status = parse_args(argc, argv, &a);
    if (status < 0) {
        status = ONYX_CLI_OK; /* --help */
        goto done;
    }
    if (status) goto done;
    status = ONYX_CLI_FAIL;

    if (!(m = onyx_cli_open_model(a.model, a.threads))) goto done;
    onyx_error err = {0};
    n_in = onyx_model_num_inputs(m);
    n_out = onyx_model_num_outputs(m);
    infos = calloc((size_t)n_in + 1, sizeof *infos);
    values = calloc((size_t)n_in + 1, sizeof *values);
    names = calloc((size_t)n_in + 1, sizeof *names);
    bound = calloc((size_t)n_in + 1, sizeof *bound);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    if (!infos || !values || !names || !bound || !outs) {
        onyx_cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++)
        if (onyx_model_input(m, i, &infos[i]) != ONYX_OK) {
            onyx_cli_error("cannot describe input %d", i);
            goto done;
        }
    if ((status = bind_inputs(&a, infos, n_in, values)) != ONYX_CLI_OK) goto done;
    status = ONYX_CLI_FAIL;

    /* Inputs left unbound are not passed: the session reports the ones that
     * are required (inputs with an initializer default are not). */
    int n_bound = 0;
    for (int i = 0; i < n_in; i++)
        if (values[i]) {
            names[n_bound] = infos[i].name;
            bound[n_bound++] = values[i];
        }
    if (onyx_session_new(m, NULL, &s, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        goto done;
    }
    if (onyx_session_run(s, n_bound, names, bound, n_out, NULL, outs, &err) != ONYX_OK) {
        if (n_bound < n_in) {
            char list[1024];
            list_inputs(infos, n_in, list, sizeof list);
            onyx_cli_error("%s (bind inputs with -i NAME=PATH; the model's inputs: %s)",
                           err.message, list);
        } else {
            onyx_cli_error("%s", err.message);
        }
        goto done;
    }
    status = write_outputs(&a, m, outs, n_out);
done:
    onyx_session_free(s);
    if (values)
        for (int i = 0; i < n_in; i++)
            onyx_value_free(values[i]);
    free(values);
    free(infos);
    free(names);
    free(bound);
    free(outs);
    onyx_model_free(m);
    free(a.inputs);
    return status;
}
