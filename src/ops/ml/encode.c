/* encode.c - the lookup and container ops of ai.onnx.ml: LabelEncoder
 * (opsets 1, 2 and 4), CategoryMapper, ZipMap (tensor -> sequence of maps),
 * CastMap and DictVectorizer (map -> tensor). Lookups go through the sorted
 * key index of ml.c, built once at load. */
#include "ops/ml/ml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The NUL-terminated texts of a STRINGS attribute, allocated on the node. */
static const char **attr_texts(onyx_node *n, const onyx_pb_string *s, int64_t count) {
    const char **t = onyx_node_alloc(n, sizeof *t * (size_t)(count > 0 ? count : 1));
    if (t)
        for (int64_t i = 0; i < count; i++) t[i] = s[i].s;
    return t;
}

/* Looks element i of t up in an index of the matching kind. */
static int64_t find_elem(const onyx_ml_index *ix, const onyx_tensor *t, int64_t i) {
    switch (t->dtype) {
    case ONYX_DTYPE_STRING: return onyx_ml_find_string(ix, ((char *const *)t->data)[i]);
    case ONYX_DTYPE_FLOAT: return onyx_ml_find_float(ix, ((const float *)t->data)[i]);
    case ONYX_DTYPE_DOUBLE: return onyx_ml_find_float(ix, ((const double *)t->data)[i]);
    default: return onyx_ml_find_int(ix, onyx_tensor_get_i64(t, i));
    }
}

/* Writes one element of type dt from src (strings are duplicated). */
static bool put_elem(onyx_dtype dt, void *dst, const void *src) {
    if (dt != ONYX_DTYPE_STRING) {
        memcpy(dst, src, onyx_dtype_size(dt));
        return true;
    }
    const char *s = *(const char *const *)src;
    char *c = strdup(s ? s : "");
    memcpy(dst, &c, sizeof c);
    return c != NULL;
}

// ----------------------------------------------------------------------------
// LabelEncoder

typedef struct le_attr {
    onyx_dtype in_dtype;  /* the type the keys have (v2, v4) */
    onyx_dtype out_dtype;
    onyx_ml_index ix;
    const void *values;   /* (n) elements of out_dtype */
    const void *def;      /* one element of out_dtype */
    /* opset 1: classes_strings, string <-> index */
    bool v1;
    const char **classes;
    int64_t n_classes;
    int64_t def_int;
    const char *def_string;
} le_attr;

static onyx_status init_label_encoder_v1(onyx_node *n, le_attr *a, onyx_error *err) {
    const onyx_pb_string *s;
    a->v1 = true;
    a->n_classes = onyx_ml_attr_strings(n, "classes_strings", &s);
    if (a->n_classes < 0) a->n_classes = 0;
    a->def_int = onyx_attr_int(n, "default_int64", -1);
    a->def_string = onyx_attr_string(n, "default_string", "_Unused");
    if (!(a->classes = attr_texts(n, s, a->n_classes))) return onyx_ml_oom(err);
    return onyx_ml_index_build(n, ONYX_ML_KEY_STRING, a->classes, a->n_classes, false, &a->ix,
                               err);
}

/* One of the list attributes <prefix>_strings/_int64s/_floats or, from
 * opset 4, <prefix>_tensor: its element type, count and elements (strings
 * as `const char *`, int64, float, or the tensor's own type). */
static onyx_status le_list(onyx_node *n, const char *prefix, onyx_dtype *dt, int64_t *count,
                           const void **data, onyx_error *err) {
    char name[32];
    const onyx_pb_string *s;
    const int64_t *ints;
    const float *fl;
    int found = 0;
    snprintf(name, sizeof name, "%s_strings", prefix);
    int64_t ns = onyx_ml_attr_strings(n, name, &s);
    snprintf(name, sizeof name, "%s_int64s", prefix);
    int64_t ni = onyx_attr_ints(n, name, &ints);
    snprintf(name, sizeof name, "%s_floats", prefix);
    int64_t nf = onyx_attr_floats(n, name, &fl);
    onyx_tensor t;
    bool has_t = false;
    snprintf(name, sizeof name, "%s_tensor", prefix);
    if (n->opset >= 4) {
        onyx_status st = onyx_attr_tensor(n, name, &t, &has_t, err);
        if (st) return st;
    }
    found = (ns >= 0) + (ni >= 0) + (nf >= 0) + has_t;
    if (found != 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "exactly one of the %s_* attributes must be set (%d are)", prefix, found);
    if (ns >= 0) {
        *dt = ONYX_DTYPE_STRING;
        *count = ns;
        *data = attr_texts(n, s, ns);
        if (!*data) return onyx_ml_oom(err);
    } else if (ni >= 0) {
        *dt = ONYX_DTYPE_INT64;
        *count = ni;
        *data = ints;
    } else if (nf >= 0) {
        *dt = ONYX_DTYPE_FLOAT;
        *count = nf;
        *data = fl;
    } else {
        switch (t.dtype) {
        case ONYX_DTYPE_STRING:
        case ONYX_DTYPE_INT64:
        case ONYX_DTYPE_INT32:
        case ONYX_DTYPE_INT16:
        case ONYX_DTYPE_FLOAT:
        case ONYX_DTYPE_DOUBLE: break;
        default:
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute %s of type %s", name,
                               onyx_dtype_name(t.dtype));
        }
        *dt = t.dtype;
        *count = onyx_tensor_count(&t);
        /* copy to aligned memory: the tensor may sit unaligned in the file */
        size_t bytes = onyx_tensor_nbytes(&t);
        void *c = onyx_node_alloc(n, bytes ? bytes : 1);
        if (!c) return onyx_ml_oom(err);
        if (bytes) memcpy(c, t.data, bytes);
        *data = c;
    }
    return ONYX_OK;
}

onyx_status onyx_ml_init_label_encoder(onyx_node *n, onyx_error *err) {
    le_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    n->state = a;
    if (n->opset < 2) return init_label_encoder_v1(n, a, err);
    int64_t nk, nv;
    const void *keys;
    onyx_status st;
    if ((st = le_list(n, "keys", &a->in_dtype, &nk, &keys, err)) ||
        (st = le_list(n, "values", &a->out_dtype, &nv, &a->values, err)))
        return st;
    if (nk != nv)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%lld keys but %lld values",
                           (long long)nk, (long long)nv);
    /* keys as int64, double or text for the index; the last of repeated
     * keys wins (opset 4 says so; earlier opsets leave it open) */
    onyx_ml_key kind = a->in_dtype == ONYX_DTYPE_STRING ? ONYX_ML_KEY_STRING
                       : (a->in_dtype == ONYX_DTYPE_FLOAT || a->in_dtype == ONYX_DTYPE_DOUBLE)
                           ? ONYX_ML_KEY_FLOAT
                           : ONYX_ML_KEY_INT;
    const void *ik = keys;
    if (kind != ONYX_ML_KEY_STRING && a->in_dtype != ONYX_DTYPE_INT64 &&
        a->in_dtype != ONYX_DTYPE_DOUBLE) {
        onyx_dtype to = kind == ONYX_ML_KEY_FLOAT ? ONYX_DTYPE_DOUBLE : ONYX_DTYPE_INT64;
        void *c = onyx_node_alloc(n, 8 * (size_t)(nk ? nk : 1));
        if (!c) return onyx_ml_oom(err);
        if (onyx_convert(to, c, a->in_dtype, keys, nk, false))
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "keys of type %s",
                               onyx_dtype_name(a->in_dtype));
        ik = c;
    }
    if ((st = onyx_ml_index_build(n, kind, ik, nk, true, &a->ix, err))) return st;
    /* the default value, of the values' type */
    size_t es = onyx_dtype_size(a->out_dtype);
    void *def = onyx_node_alloc(n, es);
    if (!def) return onyx_ml_oom(err);
    onyx_tensor dt;
    bool has_dt = false;
    if (n->opset >= 4 && (st = onyx_attr_tensor(n, "default_tensor", &dt, &has_dt, err))) return st;
    if (has_dt) {
        if (dt.dtype != a->out_dtype || onyx_tensor_count(&dt) < 1)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "default_tensor must hold one %s value", onyx_dtype_name(a->out_dtype));
        memcpy(def, dt.data, es);
    } else if (a->out_dtype == ONYX_DTYPE_STRING) {
        const char *s = onyx_attr_string(n, "default_string", "_Unused");
        memcpy(def, &s, sizeof s);
    } else if (a->out_dtype == ONYX_DTYPE_FLOAT || a->out_dtype == ONYX_DTYPE_DOUBLE) {
        double f = onyx_attr_float(n, "default_float", -0.0f);
        onyx_convert(a->out_dtype, def, ONYX_DTYPE_DOUBLE, &f, 1, false);
    } else {
        int64_t i = onyx_attr_int(n, "default_int64", -1);
        onyx_convert(a->out_dtype, def, ONYX_DTYPE_INT64, &i, 1, false);
    }
    a->def = def;
    return ONYX_OK;
}

static onyx_status run_label_encoder_v1(const le_attr *a, const onyx_tensor *in, onyx_exec *x) {
    onyx_tensor *y;
    int64_t count = onyx_tensor_count(in);
    bool to_int = in->dtype == ONYX_DTYPE_STRING;
    if (!to_int && in->dtype != ONYX_DTYPE_INT64)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be string or int64");
    onyx_status st = onyx_exec_output(x, 0, to_int ? ONYX_DTYPE_INT64 : ONYX_DTYPE_STRING,
                                      in->ndim, in->dims, &y);
    if (st) return st;
    for (int64_t i = 0; i < count; i++) {
        if (to_int) {
            int64_t k = onyx_ml_find_string(&a->ix, ((char *const *)in->data)[i]);
            ((int64_t *)y->data)[i] = k >= 0 ? k : a->def_int;
            continue;
        }
        int64_t v = ((const int64_t *)in->data)[i];
        const char *s = v >= 0 && v < a->n_classes ? a->classes[v] : a->def_string;
        if (!put_elem(ONYX_DTYPE_STRING, (char **)y->data + i, &s))
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return ONYX_OK;
}

onyx_status onyx_ml_run_label_encoder(const onyx_node *n, onyx_exec *x) {
    const le_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    if (a->v1) return run_label_encoder_v1(a, in, x);
    if (in->dtype != a->in_dtype)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input of type %s for %s keys",
                              onyx_dtype_name(in->dtype), onyx_dtype_name(a->in_dtype));
    onyx_tensor *y;
    onyx_status st = onyx_exec_output(x, 0, a->out_dtype, in->ndim, in->dims, &y);
    if (st) return st;
    size_t es = onyx_dtype_size(a->out_dtype);
    int64_t count = onyx_tensor_count(in);
    for (int64_t i = 0; i < count; i++) {
        int64_t k = find_elem(&a->ix, in, i);
        const void *src = k >= 0 ? (const char *)a->values + (size_t)k * es : a->def;
        if (!put_elem(a->out_dtype, (char *)y->data + (size_t)i * es, src))
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// CategoryMapper: string <-> int64 through two parallel lists

typedef struct cm_attr {
    const int64_t *ints;
    const char **strings;
    int64_t n;
    onyx_ml_index by_int, by_string;
    int64_t def_int;
    const char *def_string;
} cm_attr;

onyx_status onyx_ml_init_category_mapper(onyx_node *n, onyx_error *err) {
    cm_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    const onyx_pb_string *s;
    int64_t ni = onyx_attr_ints(n, "cats_int64s", &a->ints);
    int64_t ns = onyx_ml_attr_strings(n, "cats_strings", &s);
    if (ni < 0) ni = 0;
    if (ns < 0) ns = 0;
    if (ni != ns)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%lld cats_int64s but %lld cats_strings",
                           (long long)ni, (long long)ns);
    a->n = ni;
    a->def_int = onyx_attr_int(n, "default_int64", -1);
    a->def_string = onyx_attr_string(n, "default_string", "_Unused");
    if (!(a->strings = attr_texts(n, s, ns))) return onyx_ml_oom(err);
    onyx_status st;
    if ((st = onyx_ml_index_build(n, ONYX_ML_KEY_INT, a->ints, ni, false, &a->by_int, err)) ||
        (st = onyx_ml_index_build(n, ONYX_ML_KEY_STRING, a->strings, ns, false, &a->by_string,
                                  err)))
        return st;
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_ml_run_category_mapper(const onyx_node *n, onyx_exec *x) {
    const cm_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    bool to_int = in->dtype == ONYX_DTYPE_STRING;
    if (!to_int && in->dtype != ONYX_DTYPE_INT64)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be string or int64");
    onyx_tensor *y;
    onyx_status st = onyx_exec_output(x, 0, to_int ? ONYX_DTYPE_INT64 : ONYX_DTYPE_STRING,
                                      in->ndim, in->dims, &y);
    if (st) return st;
    int64_t count = onyx_tensor_count(in);
    for (int64_t i = 0; i < count; i++) {
        if (to_int) {
            int64_t k = onyx_ml_find_string(&a->by_string, ((char *const *)in->data)[i]);
            ((int64_t *)y->data)[i] = k >= 0 ? a->ints[k] : a->def_int;
            continue;
        }
        int64_t k = onyx_ml_find_int(&a->by_int, ((const int64_t *)in->data)[i]);
        const char *s = k >= 0 ? a->strings[k] : a->def_string;
        if (!put_elem(ONYX_DTYPE_STRING, (char **)y->data + i, &s))
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// ZipMap: X (N, C) float -> a sequence of N maps {label_c: X[n, c]}

onyx_status onyx_ml_init_zipmap(onyx_node *n, onyx_error *err) {
    onyx_ml_labels *l = onyx_node_alloc(n, sizeof *l);
    if (!l) return onyx_ml_oom(err);
    n->state = l;
    return onyx_ml_labels_parse(n, "classlabels_int64s", "classlabels_strings", true, l, err);
}

/* Fills one map of `c` entries: the labels as keys, row as the values. */
static onyx_status zip_row(const onyx_ml_labels *l, const float *row, int64_t c, onyx_value *m) {
    m->kind = ONYX_KIND_MAP;
    onyx_status st = onyx_tensor_alloc(&m->tensor, l->strings ? ONYX_DTYPE_STRING : ONYX_DTYPE_INT64,
                                       1, &c);
    if (st) return st;
    for (int64_t k = 0; k < c; k++) {
        if (!l->strings) {
            ((int64_t *)m->tensor.data)[k] = l->ints[k];
        } else if (!(((char **)m->tensor.data)[k] = strdup(l->strings[k].s))) {
            return ONYX_ERR_OUT_OF_MEMORY;
        }
    }
    if (!(m->map_values = calloc(1, sizeof *m->map_values))) return ONYX_ERR_OUT_OF_MEMORY;
    m->map_values->kind = ONYX_KIND_TENSOR;
    if ((st = onyx_tensor_alloc(&m->map_values->tensor, ONYX_DTYPE_FLOAT, 1, &c))) return st;
    if (c) memcpy(m->map_values->tensor.data, row, sizeof *row * (size_t)c);
    return ONYX_OK;
}

onyx_status onyx_ml_run_zipmap(const onyx_node *n, onyx_exec *x) {
    const onyx_ml_labels *l = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    int64_t rows, c;
    onyx_status st = onyx_ml_rows(x, in, &rows, &c);
    if (st) return st;
    if (c != l->n)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%lld columns for %lld class labels",
                              (long long)c, (long long)l->n);
    onyx_value seq = {0};
    seq.kind = ONYX_KIND_SEQUENCE;
    seq.elem_type = ONYX_DTYPE_FLOAT;
    if (rows > 0 && !(seq.items = calloc((size_t)rows, sizeof *seq.items))) {
        st = ONYX_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    for (int64_t r = 0; r < rows; r++) {
        /* counted before filling, so that clearing frees a half-built map */
        seq.n_items++;
        if ((st = zip_row(l, (const float *)in->data + r * c, c, &seq.items[r]))) goto fail;
    }
    onyx_value *out = onyx_exec_output_value(x, 0);
    if (!out) {
        onyx_value_clear(&seq);
        return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "no output slot");
    }
    if ((st = onyx_value_take(out, &seq))) goto fail;
    return ONYX_OK;
fail:
    onyx_value_clear(&seq);
    return onyx_exec_fail(x, st, "cannot build the output maps");
}

// ----------------------------------------------------------------------------
// Maps in: the entries of an input map

typedef struct map_view {
    const onyx_tensor *keys;
    const onyx_value *vals; /* a 1-D TENSOR, or a SEQUENCE of scalar tensors */
    int64_t n;
    onyx_dtype vtype;       /* UNDEFINED for an empty map */
} map_view;

static onyx_status read_map(onyx_exec *x, map_view *m) {
    const onyx_value *v = onyx_exec_input_value(x, 0);
    if (!v || v->kind != ONYX_KIND_MAP)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input X must be a map");
    m->keys = &v->tensor;
    m->vals = v->map_values;
    m->n = onyx_tensor_count(m->keys);
    m->vtype = ONYX_DTYPE_UNDEFINED;
    if (m->keys->ndim != 1) m->n = 0;
    if (m->n && m->vals && m->vals->kind == ONYX_KIND_TENSOR &&
        onyx_tensor_count(&m->vals->tensor) == m->n) {
        m->vtype = m->vals->tensor.dtype;
    } else if (m->n && m->vals && m->vals->kind == ONYX_KIND_SEQUENCE && m->vals->n_items == m->n) {
        m->vtype = m->vals->items[0].tensor.dtype;
        for (int64_t i = 0; i < m->n; i++) {
            const onyx_value *it = &m->vals->items[i];
            if (it->kind != ONYX_KIND_TENSOR || it->tensor.dtype != m->vtype ||
                onyx_tensor_count(&it->tensor) != 1)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "map values must be scalars of one type");
        }
    } else if (m->n) {
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "the map has %lld keys but not as many values",
                              (long long)m->n);
    }
    return ONYX_OK;
}

/* Address of value i of the map (an element of type m->vtype). */
static const void *map_value(const map_view *m, int64_t i) {
    if (m->vals->kind == ONYX_KIND_TENSOR)
        return (const char *)m->vals->tensor.data + (size_t)i * onyx_dtype_size(m->vtype);
    return m->vals->items[i].tensor.data;
}

// ----------------------------------------------------------------------------
// CastMap: map(int64, string|float) -> [1, K] in key order

enum { CAST_FLOAT, CAST_STRING, CAST_INT64 };

typedef struct castmap_attr {
    int to;
    bool sparse;
    int64_t max_map;
} castmap_attr;

onyx_status onyx_ml_init_cast_map(onyx_node *n, onyx_error *err) {
    castmap_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    const char *to = onyx_attr_string(n, "cast_to", "TO_FLOAT");
    const char *form = onyx_attr_string(n, "map_form", "DENSE");
    if (strcmp(to, "TO_FLOAT") == 0) a->to = CAST_FLOAT;
    else if (strcmp(to, "TO_STRING") == 0) a->to = CAST_STRING;
    else if (strcmp(to, "TO_INT64") == 0) a->to = CAST_INT64;
    else return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute cast_to: '%s'", to);
    if (strcmp(form, "DENSE") == 0) a->sparse = false;
    else if (strcmp(form, "SPARSE") == 0) a->sparse = true;
    else return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute map_form: '%s'", form);
    a->max_map = onyx_attr_int(n, "max_map", 1);
    if (a->sparse && (a->max_map < 0 || a->max_map > INT32_MAX))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute max_map = %lld",
                           (long long)a->max_map);
    n->state = a;
    return ONYX_OK;
}

typedef struct key_pos {
    int64_t key, pos;
} key_pos;

static int cmp_key_pos(const void *pa, const void *pb) {
    const key_pos *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Converts map value i to element `o` of y (float, int64 or string). */
static onyx_status cast_value(onyx_exec *x, const map_view *m, int64_t i, int to, onyx_tensor *y,
                              int64_t o) {
    const void *p = map_value(m, i);
    if (m->vtype == ONYX_DTYPE_STRING) {
        const char *s = *(const char *const *)p;
        if (!s) s = "";
        if (to == CAST_STRING) {
            if (!put_elem(ONYX_DTYPE_STRING, (char **)y->data + o, &s)) goto nomem;
            return ONYX_OK;
        }
        char *end;
        errno = 0;
        if (to == CAST_FLOAT) ((float *)y->data)[o] = strtof(s, &end);
        else ((int64_t *)y->data)[o] = strtoll(s, &end, 10);
        if (end == s || errno == ERANGE)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "map value '%s' is not a %s", s,
                                  to == CAST_FLOAT ? "float" : "64-bit integer");
        return ONYX_OK;
    }
    double v;
    onyx_convert(ONYX_DTYPE_DOUBLE, &v, m->vtype, p, 1, false);
    if (to == CAST_FLOAT) {
        ((float *)y->data)[o] = (float)v;
    } else if (to == CAST_INT64) {
        /* truncation toward zero; NaN and out-of-range values give 0 */
        ((int64_t *)y->data)[o] = v > -9.2e18 && v < 9.2e18 ? (int64_t)v : 0;
    } else {
        char buf[64];
        snprintf(buf, sizeof buf, "%f", (float)v); /* std::to_string, as onnxruntime */
        const char *s = buf;
        if (!put_elem(ONYX_DTYPE_STRING, (char **)y->data + o, &s)) goto nomem;
    }
    return ONYX_OK;
nomem:
    return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
}

onyx_status onyx_ml_run_cast_map(const onyx_node *n, onyx_exec *x) {
    const castmap_attr *a = n->state;
    map_view m;
    onyx_status st = read_map(x, &m);
    if (st) return st;
    if (m.keys->dtype != ONYX_DTYPE_INT64)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "map keys must be int64, not %s",
                              onyx_dtype_name(m.keys->dtype));
    if (m.n && m.vtype != ONYX_DTYPE_FLOAT && m.vtype != ONYX_DTYPE_STRING)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "map values must be float or string");
    /* entries by key; of repeated keys the last one counts */
    key_pos *e = onyx_exec_scratch(x, sizeof *e * (size_t)(m.n ? m.n : 1));
    if (!e) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < m.n; i++) e[i] = (key_pos){((const int64_t *)m.keys->data)[i], i};
    qsort(e, (size_t)m.n, sizeof *e, cmp_key_pos);
    int64_t u = 0;
    for (int64_t i = 0; i < m.n; i++) {
        if (i + 1 < m.n && e[i + 1].key == e[i].key) continue;
        e[u++] = e[i];
    }
    if (a->sparse && u && e[0].key < 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "negative map key %lld in SPARSE form",
                              (long long)e[0].key);
    static const onyx_dtype types[] = {ONYX_DTYPE_FLOAT, ONYX_DTYPE_STRING, ONYX_DTYPE_INT64};
    int64_t k = a->sparse ? a->max_map : u;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, types[a->to], 2, (int64_t[]){1, k}, &y))) return st;
    if (!a->sparse) {
        for (int64_t i = 0; i < u; i++)
            if ((st = cast_value(x, &m, e[i].pos, a->to, y, i))) return st;
        return ONYX_OK;
    }
    /* SPARSE: the value of key j at position j, keys >= max_map dropped,
     * the rest padded (onnxruntime pads strings with "0.f") */
    int64_t j = 0;
    for (int64_t o = 0; o < k; o++) {
        while (j < u && e[j].key < o) j++;
        if (j < u && e[j].key == o) {
            if ((st = cast_value(x, &m, e[j].pos, a->to, y, o))) return st;
        } else if (a->to == CAST_STRING) {
            const char *pad = "0.f";
            if (!put_elem(ONYX_DTYPE_STRING, (char **)y->data + o, &pad))
                return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        } else if (a->to == CAST_FLOAT) {
            ((float *)y->data)[o] = 0;
        } else {
            ((int64_t *)y->data)[o] = 0;
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// DictVectorizer: map -> [1, V] by vocabulary position

typedef struct dv_attr {
    onyx_ml_index ix;
    bool strings;
    int64_t n;
} dv_attr;

onyx_status onyx_ml_init_dict_vectorizer(onyx_node *n, onyx_error *err) {
    dv_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    const int64_t *ints;
    const onyx_pb_string *s;
    int64_t ni = onyx_attr_ints(n, "int64_vocabulary", &ints);
    int64_t ns = onyx_ml_attr_strings(n, "string_vocabulary", &s);
    if ((ni > 0) == (ns > 0))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "exactly one of int64_vocabulary and string_vocabulary must be set");
    onyx_status st;
    if (ni > 0) {
        a->n = ni;
        st = onyx_ml_index_build(n, ONYX_ML_KEY_INT, ints, ni, false, &a->ix, err);
    } else {
        const char **t = attr_texts(n, s, ns);
        if (!t) return onyx_ml_oom(err);
        a->n = ns;
        a->strings = true;
        st = onyx_ml_index_build(n, ONYX_ML_KEY_STRING, t, ns, false, &a->ix, err);
    }
    if (st) return st;
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_ml_run_dict_vectorizer(const onyx_node *n, onyx_exec *x) {
    const dv_attr *a = n->state;
    map_view m;
    onyx_status st = read_map(x, &m);
    if (st) return st;
    bool skeys = m.keys->dtype == ONYX_DTYPE_STRING;
    if (m.n && skeys != a->strings)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "map keys of type %s for a %s vocabulary",
                              onyx_dtype_name(m.keys->dtype), a->strings ? "string" : "int64");
    onyx_dtype vt = m.vtype == ONYX_DTYPE_UNDEFINED ? ONYX_DTYPE_FLOAT : m.vtype;
    if (vt != ONYX_DTYPE_FLOAT && vt != ONYX_DTYPE_DOUBLE && vt != ONYX_DTYPE_INT64 &&
        vt != ONYX_DTYPE_STRING)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "map values of type %s",
                              onyx_dtype_name(vt));
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, vt, 2, (int64_t[]){1, a->n}, &y))) return st;
    size_t es = onyx_dtype_size(vt);
    if (vt != ONYX_DTYPE_STRING) memset(y->data, 0, onyx_tensor_nbytes(y));
    /* keys outside the vocabulary are dropped, as onnxruntime does */
    for (int64_t i = 0; i < m.n; i++) {
        int64_t k = find_elem(&a->ix, m.keys, i);
        if (k < 0) continue;
        char *dst = (char *)y->data + (size_t)k * es;
        if (vt == ONYX_DTYPE_STRING) free(*(char **)(void *)dst);
        if (!put_elem(vt, dst, map_value(&m, i)))
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (vt == ONYX_DTYPE_STRING) {
        for (int64_t k = 0; k < a->n; k++) {
            char **p = (char **)y->data + k;
            if (!*p && !(*p = strdup("")))
                return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return ONYX_OK;
}
