/* tensor.c - tensor construction and rearrangement operators: Concat, Split,
 * Slice, Pad, Constant, ConstantOfShape, Range, Tile, Trilu, OneHot, EyeLike,
 * CumSum, ReverseSequence, Compress, NonZero, Unique, TopK, ArgMax, ArgMin.
 * Data moves by element size (one path for every dtype; STRING outputs get
 * their own string copies); only the ops that compare or add are typed.
 * Does not own: reshaping/layout (shape.c), gathers and scatters (gather.c). */
#include "core/op.h"
#include "ops/util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM_INIT(err) onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

#define ELEM(t, i) ((char *)(t)->data + (size_t)(i) * onyx_dtype_size((t)->dtype))
#define CELEM(t, i) ((const char *)(t)->data + (size_t)(i) * onyx_dtype_size((t)->dtype))

/* A scalar-ish input (shape [] or [1]) read as int64; false when absent/empty. */
static bool scalar_i64(const onyx_tensor *t, int64_t *v) {
    if (!t || onyx_tensor_count(t) < 1) return false;
    *v = onyx_tensor_get_i64(t, 0);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Comparable keys for TopK, ArgMax/ArgMin and Unique: floats compare as    */
/* double (NaN above everything), signed ints as int64, the rest as uint64. */

typedef enum key_kind { KEY_F, KEY_I, KEY_U, KEY_S, KEY_KIND_COUNT } key_kind;

typedef union key {
    double f;
    int64_t i;
    uint64_t u;
    const char *s;
} key;

static key_kind key_kind_of(onyx_dtype t) {
    if (t == ONYX_DTYPE_STRING) return KEY_S;
    if (onyx_dtype_is_float(t)) return KEY_F;
    if (onyx_dtype_is_signed_int(t)) return KEY_I;
    return KEY_U;
}

static key load_key(const onyx_tensor *t, int64_t i) {
    key k;
    const void *p = CELEM(t, i);
    switch (t->dtype) {
    case ONYX_DTYPE_FLOAT: k.f = *(const float *)p; break;
    case ONYX_DTYPE_DOUBLE: k.f = *(const double *)p; break;
    case ONYX_DTYPE_INT8: k.i = *(const int8_t *)p; break;
    case ONYX_DTYPE_INT16: k.i = *(const int16_t *)p; break;
    case ONYX_DTYPE_INT32: k.i = *(const int32_t *)p; break;
    case ONYX_DTYPE_INT64: k.i = *(const int64_t *)p; break;
    case ONYX_DTYPE_UINT8:
    case ONYX_DTYPE_BOOL: k.u = *(const uint8_t *)p; break;
    case ONYX_DTYPE_UINT16: k.u = *(const uint16_t *)p; break;
    case ONYX_DTYPE_UINT32: k.u = *(const uint32_t *)p; break;
    case ONYX_DTYPE_UINT64: k.u = *(const uint64_t *)p; break;
    case ONYX_DTYPE_STRING: {
        const char *s = *(char *const *)p;
        k.s = s ? s : "";
        break;
    }
    default:
        if (onyx_dtype_is_float(t->dtype)) {
            k.f = onyx_tensor_get_f64(t, i);
        } else if (onyx_dtype_is_signed_int(t->dtype)) {
            k.i = onyx_tensor_get_i64(t, i);
        } else {
            k.u = (uint64_t)onyx_tensor_get_i64(t, i);
        }
    }
    return k;
}

static int key_cmp(key_kind kind, key a, key b) {
    switch (kind) {
    case KEY_F:
        if (isnan(a.f)) return isnan(b.f) ? 0 : 1;
        if (isnan(b.f)) return -1;
        return (a.f > b.f) - (a.f < b.f);
    case KEY_I: return (a.i > b.i) - (a.i < b.i);
    case KEY_U: return (a.u > b.u) - (a.u < b.u);
    default: {
        int c = strcmp(a.s, b.s);
        return (c > 0) - (c < 0);
    }
    }
}

/* Stable merge sort of idx[0..n) by cmp(ctx, a, b); tmp has n entries. */
typedef int (*idx_cmp_fn)(const void *ctx, int64_t a, int64_t b);

static void merge_sort(int64_t *idx, int64_t *tmp, int64_t n, idx_cmp_fn cmp, const void *ctx) {
    if (n < 2) return;
    if (n <= 16) {
        for (int64_t i = 1; i < n; i++) {
            int64_t v = idx[i], j = i;
            while (j > 0 && cmp(ctx, idx[j - 1], v) > 0) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        return;
    }
    int64_t h = n / 2;
    merge_sort(idx, tmp, h, cmp, ctx);
    merge_sort(idx + h, tmp, n - h, cmp, ctx);
    if (cmp(ctx, idx[h - 1], idx[h]) <= 0) return;
    memcpy(tmp, idx, (size_t)n * sizeof *idx);
    int64_t a = 0, b = h, o = 0;
    while (a < h && b < n) idx[o++] = cmp(ctx, tmp[b], tmp[a]) < 0 ? tmp[b++] : tmp[a++];
    while (a < h) idx[o++] = tmp[a++];
    while (b < n) idx[o++] = tmp[b++];
}

/* ---------------------------------------------------------------------- */
/* Concat                                                                  */

static onyx_status concat_init(onyx_node *n, onyx_error *err) {
    if (!onyx_attr_find(n, "axis") && n->opset >= 4)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'axis' is required");
    return onyx_op_axis_init1(n, err);
}

/* Elements one Concat task copies at least: 64 KB of floats. */
#define CONCAT_GRAIN ((int64_t)16 << 10)

/* The output is `outer` rows of orow elements: the inputs' rows (irow[i]
 * elements of src[i] each) one after another. */
typedef struct concat_job {
    char *out;
    const void **src;
    int64_t *irow;
    int64_t orow;
    size_t es;
} concat_job;

/* Output elements [begin, end), a piece of one input row at a time. */
static void concat_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const concat_job *j = ctx;
    (void)thread;
    int64_t pos = begin;
    while (pos < end) {
        int64_t o = pos / j->orow, r = pos % j->orow, off = 0;
        int i = 0;
        while (r >= off + j->irow[i]) off += j->irow[i++];
        int64_t n = j->irow[i] - (r - off);
        if (n > end - pos) n = end - pos;
        if (j->src[i]) /* NULL: already in place */
            memcpy(j->out + (size_t)pos * j->es,
                   (const char *)j->src[i] + (size_t)(o * j->irow[i] + r - off) * j->es,
                   (size_t)n * j->es);
        pos += n;
    }
}

static onyx_status concat_run(const onyx_node *n, onyx_exec *x) {
    const onyx_op_axis *a = n->state;
    const onyx_tensor *first = onyx_exec_input(x, 0);
    if (!first) return FAIL("missing input 0");
    int r = first->ndim, axis;
    if (!onyx_op_norm_axis(a->axis, r, &axis)) return FAIL("axis %lld out of range for rank %d", (long long)a->axis, r);
    int64_t dims[ONYX_MAX_DIMS];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const onyx_tensor *t = onyx_exec_input(x, i);
        if (!t) return FAIL("missing input %d", i);
        if (t->ndim != r || t->dtype != first->dtype) return FAIL("input %d: rank or type differs", i);
        for (int k = 0; k < r; k++)
            if (k != axis && t->dims[k] != first->dims[k])
                return FAIL("input %d: dim %d is %lld, expected %lld", i, k, (long long)t->dims[k],
                            (long long)first->dims[k]);
        dims[axis] += t->dims[axis];
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, first->dtype, r, dims, &out);
    if (st) return st;
    concat_job j = {.out = out->data, .es = onyx_dtype_size(first->dtype)};
    int64_t outer = onyx_op_prod(dims, 0, axis), inner = onyx_op_prod(dims, axis + 1, r);
    j.orow = dims[axis] * inner;
    j.src = onyx_exec_scratch(x, (size_t)n->n_in * sizeof *j.src);
    j.irow = onyx_exec_scratch(x, (size_t)n->n_in * sizeof *j.irow);
    if (!j.src || !j.irow) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    size_t at = 0;
    for (int i = 0; i < n->n_in; i++) {
        const onyx_tensor *t = onyx_exec_input(x, i);
        j.src[i] = t->data;
        j.irow[i] = t->dims[axis] * inner;
        /* One output row (outer 1: a batch of one along channels): each
         * input is a consecutive piece of the output, which the memory plan
         * can have its producer write in place. */
        if (outer == 1 && first->dtype != ONYX_DTYPE_STRING) {
            onyx_exec_place_input(x, i, 0, at);
            if ((const char *)t->data == j.out + at) j.src[i] = NULL;
            at += (size_t)j.irow[i] * j.es;
        }
    }
    onyx_exec_parallel(x, outer * j.orow, CONCAT_GRAIN, concat_task, &j);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Split                                                                   */

typedef struct split_attrs {
    int64_t axis;
    const int64_t *split;
    int64_t n_split;      /* -1: absent */
    int64_t num_outputs;  /* opset 18; 0: absent */
} split_attrs;

static onyx_status split_init(onyx_node *n, onyx_error *err) {
    split_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->axis = onyx_attr_int(n, "axis", 0);
    a->n_split = n->opset < 13 ? onyx_attr_ints(n, "split", &a->split) : -1;
    a->num_outputs = onyx_attr_int(n, "num_outputs", 0);
    if (onyx_attr_find(n, "num_outputs") && a->num_outputs != n->n_out)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute 'num_outputs' is %lld but the node has %d outputs",
                           (long long)a->num_outputs, n->n_out);
    if (a->n_split >= 0 && a->n_split != n->n_out)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute 'split' has %lld entries for %d outputs",
                           (long long)a->n_split, n->n_out);
    n->state = a;
    return ONYX_OK;
}

static onyx_status split_run(const onyx_node *n, onyx_exec *x) {
    const split_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int r = in->ndim, axis;
    if (!onyx_op_norm_axis(a->axis, r, &axis)) return FAIL("axis %lld out of range for rank %d", (long long)a->axis, r);
    const onyx_tensor *sp = a->n_split < 0 ? onyx_exec_input(x, 1) : NULL;
    int no = n->n_out;
    int64_t D = in->dims[axis];
    int64_t *sizes = onyx_exec_scratch(x, (size_t)no * sizeof *sizes);
    if (!sizes) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if (sp || a->n_split >= 0) {
        int64_t cnt = sp ? onyx_tensor_count(sp) : a->n_split, sum = 0;
        if (cnt != no) return FAIL("split has %lld entries for %d outputs", (long long)cnt, no);
        for (int i = 0; i < no; i++) {
            sizes[i] = sp ? onyx_tensor_get_i64(sp, i) : a->split[i];
            if (sizes[i] < 0 || sizes[i] > D) return FAIL("split[%d] = %lld is invalid", i, (long long)sizes[i]);
            sum += sizes[i];
        }
        if (sum != D) return FAIL("split sums to %lld but the axis has %lld", (long long)sum, (long long)D);
    } else if (a->num_outputs > 0) {
        int64_t chunk = (D + no - 1) / no, left = D;
        for (int i = 0; i < no; i++) {
            sizes[i] = chunk < left ? chunk : left;
            left -= sizes[i];
        }
    } else {
        if (D % no) return FAIL("axis of size %lld cannot be split evenly %d ways", (long long)D, no);
        for (int i = 0; i < no; i++) sizes[i] = D / no;
    }
    size_t es = onyx_dtype_size(in->dtype);
    int64_t outer = onyx_op_prod(in->dims, 0, axis), inner = onyx_op_prod(in->dims, axis + 1, r);
    int64_t off = 0;
    for (int i = 0; i < no; i++) {
        int64_t dims[ONYX_MAX_DIMS];
        memcpy(dims, in->dims, sizeof dims);
        dims[axis] = sizes[i];
        onyx_tensor *out;
        onyx_status st = onyx_exec_output(x, i, in->dtype, r, dims, &out);
        if (st) return st;
        int64_t orow = sizes[i] * inner;
        if (orow)
            for (int64_t o = 0; o < outer; o++)
                memcpy((char *)out->data + (size_t)(o * orow) * es,
                       (const char *)in->data + (size_t)(o * D * inner + off) * es, (size_t)orow * es);
        off += orow;
        st = onyx_op_own_strings(x, out);
        if (st) return st;
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Slice                                                                   */

typedef struct slice_attrs { /* opset 1-9 */
    const int64_t *starts, *ends, *axes;
    int64_t n_starts, n_ends, n_axes;
} slice_attrs;

static onyx_status slice_init(onyx_node *n, onyx_error *err) {
    slice_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    if (n->opset < 10) {
        a->n_starts = onyx_attr_ints(n, "starts", &a->starts);
        a->n_ends = onyx_attr_ints(n, "ends", &a->ends);
        a->n_axes = onyx_attr_ints(n, "axes", &a->axes);
        if (a->n_starts < 0 || a->n_ends < 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attributes 'starts' and 'ends' are required");
        if (a->n_starts != a->n_ends || (a->n_axes >= 0 && a->n_axes != a->n_starts))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "'starts', 'ends' and 'axes' differ in length");
    }
    n->state = a;
    return ONYX_OK;
}

static onyx_status slice_run(const onyx_node *n, onyx_exec *x) {
    const slice_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int r = in->ndim;
    const onyx_tensor *ts = NULL, *te = NULL, *ta = NULL, *tp = NULL;
    int64_t cnt;
    if (n->opset >= 10) {
        ts = onyx_exec_input(x, 1);
        te = onyx_exec_input(x, 2);
        ta = onyx_exec_input(x, 3);
        tp = onyx_exec_input(x, 4);
        if (!ts || !te) return FAIL("missing starts or ends");
        cnt = onyx_tensor_count(ts);
        if (onyx_tensor_count(te) != cnt || (ta && onyx_tensor_count(ta) != cnt) ||
            (tp && onyx_tensor_count(tp) != cnt))
            return FAIL("starts, ends, axes and steps differ in length");
    } else {
        cnt = a->n_starts;
    }
    if (cnt > r) return FAIL("%lld slices for rank %d", (long long)cnt, r);
    int64_t start[ONYX_MAX_DIMS], step[ONYX_MAX_DIMS], dims[ONYX_MAX_DIMS];
    bool seen[ONYX_MAX_DIMS] = {false};
    for (int k = 0; k < r; k++) {
        start[k] = 0;
        step[k] = 1;
        dims[k] = in->dims[k];
    }
    for (int64_t i = 0; i < cnt; i++) {
        int64_t ax = ta ? onyx_tensor_get_i64(ta, i) : (!ts && a->n_axes >= 0) ? a->axes[i] : i;
        int k;
        if (!onyx_op_norm_axis(ax, r, &k)) return FAIL("axis %lld out of range for rank %d", (long long)ax, r);
        if (seen[k]) return FAIL("axis %lld repeated", (long long)ax);
        seen[k] = true;
        int64_t s = ts ? onyx_tensor_get_i64(ts, i) : a->starts[i];
        int64_t e = te ? onyx_tensor_get_i64(te, i) : a->ends[i];
        int64_t p = tp ? onyx_tensor_get_i64(tp, i) : 1;
        int64_t d = in->dims[k];
        if (p == 0) return FAIL("step for axis %d is 0", k);
        if (s < 0) s += d; /* no overflow: d >= 0 */
        if (e < 0) e += d;
        int64_t len;
        if (p > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len = e > s ? (e - s - 1) / p + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s; /* the spec (and onnxruntime), not numpy */
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            len = s > e ? (s - e - 1) / (-p) + 1 : 0;
        }
        start[k] = len ? s : 0;
        step[k] = p;
        dims[k] = len;
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, dims, &out);
    if (st) return st;
    if (onyx_tensor_count(out) == 0) return ONYX_OK;
    int64_t istr[ONYX_MAX_DIMS], ostr[ONYX_MAX_DIMS], off = 0, s = 1;
    for (int k = r - 1; k >= 0; k--) {
        istr[k] = s;
        s *= in->dims[k];
        off += start[k] * istr[k];
        ostr[k] = istr[k] * step[k];
    }
    onyx_op_strided_copy(x, out->data, CELEM(in, off), onyx_dtype_size(in->dtype), r, dims, ostr);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Pad                                                                     */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP, PAD_MODE_COUNT } pad_mode;

typedef struct pad_attrs {
    pad_mode mode;
    const int64_t *pads; /* opset < 11 */
    int64_t n_pads;
    float value;
} pad_attrs;

static onyx_status pad_init(onyx_node *n, onyx_error *err) {
    pad_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    const char *mode = onyx_attr_string(n, "mode", "constant");
    static const char *const names[PAD_MODE_COUNT] = {"constant", "reflect", "edge", "wrap"};
    int m = onyx_op_lookup(mode, names, PAD_MODE_COUNT);
    if (m < 0 || (m == PAD_WRAP && n->opset < 19))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'mode' is '%s'", mode);
    a->mode = (pad_mode)m;
    if (n->opset < 11) {
        const char *name = n->opset < 2 ? "paddings" : "pads";
        a->n_pads = onyx_attr_ints(n, name, &a->pads);
        if (a->n_pads < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute '%s' is required", name);
        a->value = onyx_attr_float(n, "value", 0.0f);
    }
    n->state = a;
    return ONYX_OK;
}

/* Source index for output index i along an axis of input size d with
 * `before` padding, or -1 for the constant fill. */
static int64_t pad_src(pad_mode m, int64_t i, int64_t before, int64_t d) {
    int64_t s = i - before;
    if (s >= 0 && s < d) return s;
    switch (m) {
    case PAD_EDGE: return s < 0 ? 0 : d - 1;
    case PAD_WRAP: return ((s % d) + d) % d;
    case PAD_REFLECT: {
        if (d == 1) return 0;
        int64_t period = 2 * (d - 1), q = ((s % period) + period) % period;
        return q < d ? q : period - q;
    }
    default: return -1;
    }
}

static onyx_status pad_run(const onyx_node *n, onyx_exec *x) {
    const pad_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int r = in->ndim;
    size_t es = onyx_dtype_size(in->dtype);
    int64_t before[ONYX_MAX_DIMS] = {0}, after[ONYX_MAX_DIMS] = {0};
    const onyx_tensor *tp = NULL, *tv = NULL, *ta = NULL;
    if (n->opset >= 11) {
        tp = onyx_exec_input(x, 1);
        tv = onyx_exec_input(x, 2);
        ta = n->opset >= 18 ? onyx_exec_input(x, 3) : NULL;
        if (!tp) return FAIL("missing pads input");
    }
    int64_t np = tp ? onyx_tensor_count(tp) : a->n_pads;
    int naxes = ta ? (int)onyx_tensor_count(ta) : r;
    if (ta && onyx_tensor_count(ta) > r) return FAIL("too many axes");
    if (np != 2 * (int64_t)naxes) return FAIL("pads has %lld entries for %d axes", (long long)np, naxes);
    for (int i = 0; i < naxes; i++) {
        int k = i;
        if (ta) {
            int64_t ax = onyx_tensor_get_i64(ta, i);
            if (!onyx_op_norm_axis(ax, r, &k)) return FAIL("axis %lld out of range for rank %d", (long long)ax, r);
        }
        before[k] = tp ? onyx_tensor_get_i64(tp, i) : a->pads[i];
        after[k] = tp ? onyx_tensor_get_i64(tp, i + naxes) : a->pads[i + naxes];
    }
    int64_t dims[ONYX_MAX_DIMS];
    for (int k = 0; k < r; k++) {
        if (before[k] < -in->dims[k] || after[k] < -in->dims[k] || before[k] > INT32_MAX ||
            after[k] > INT32_MAX)
            return FAIL("pads for axis %d out of range", k);
        dims[k] = in->dims[k] + before[k] + after[k];
        if (dims[k] < 0) return FAIL("pads for axis %d crop more than the axis", k);
        if (a->mode != PAD_CONSTANT && in->dims[k] == 0 && dims[k] > 0)
            return FAIL("cannot pad the empty axis %d in this mode", k);
    }
    /* The fill value, as one element of the input type. */
    char fill[16] = {0};
    const char *fill_str = NULL;
    if (tv && onyx_tensor_count(tv) > 0) {
        if (tv->dtype != in->dtype) return FAIL("constant_value type differs from data");
        if (in->dtype == ONYX_DTYPE_STRING) fill_str = *(char *const *)tv->data;
        else memcpy(fill, tv->data, es);
    } else if (!tp && a->value != 0.0f && in->dtype != ONYX_DTYPE_STRING) {
        onyx_status st = onyx_convert(in->dtype, fill, ONYX_DTYPE_FLOAT, &a->value, 1, false);
        if (st) return onyx_exec_fail(x, st, "cannot convert the pad value");
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, dims, &out);
    if (st) return st;
    int64_t total = onyx_tensor_count(out);
    if (total == 0) return ONYX_OK;
    if (r == 0) {
        memcpy(out->data, in->data, es);
        return onyx_op_own_strings(x, out);
    }
    /* Row by row over the last axis: map the outer output index to a source
     * row (or the fill), then copy the inner run with its padded ends. */
    int64_t W = dims[r - 1], Win = in->dims[r - 1], b = before[r - 1];
    int64_t rows = total / W, idx[ONYX_MAX_DIMS] = {0};
    int64_t istr[ONYX_MAX_DIMS], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        istr[k] = s;
        s *= in->dims[k];
    }
    int64_t lo = b < 0 ? 0 : b, hi = Win + b < W ? Win + b : W; /* direct range [lo, hi) */
    if (hi < lo) hi = lo;
    char *o = out->data;
    for (int64_t row = 0; row < rows; row++, o += W * (int64_t)es) {
        int64_t src = 0;
        bool constant = false;
        for (int k = 0; k < r - 1 && !constant; k++) {
            int64_t si = pad_src(a->mode, idx[k], before[k], in->dims[k]);
            if (si < 0) constant = true;
            else src += si * istr[k];
        }
        const char *srow = CELEM(in, src);
        for (int64_t j = 0; j < W; j++) {
            if (!constant && j == lo && hi > lo) {
                memcpy(o + j * (int64_t)es, srow + (lo - b) * (int64_t)es, (size_t)(hi - lo) * es);
                j = hi - 1;
                continue;
            }
            int64_t si = constant ? -1 : pad_src(a->mode, j, b, Win);
            if (si < 0) {
                if (fill_str) ((const char **)(void *)o)[j] = fill_str;
                else memcpy(o + j * (int64_t)es, fill, es);
            } else {
                memcpy(o + j * (int64_t)es, srow + si * (int64_t)es, es);
            }
        }
        for (int k = r - 2; k >= 0; k--) {
            if (++idx[k] < dims[k]) break;
            idx[k] = 0;
        }
    }
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Constant                                                                */

/* Densifies a SparseTensorProto into t, with memory from the model arena
 * (node state has no destructor, so the heap copy is moved there). */
static onyx_status sparse_to_dense(onyx_node *n, const onyx_pb_sparse_tensor *sp, onyx_tensor *t,
                                   onyx_error *err) {
    onyx_tensor h = {0};
    onyx_status st = onyx_pb_sparse_to_tensor(sp, NULL, NULL, &h, err);
    if (st) return st;
    if (h.dtype == ONYX_DTYPE_STRING) {
        onyx_tensor_release(&h);
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "attribute 'sparse_value' of strings");
    }
    size_t nb = onyx_tensor_nbytes(&h);
    *t = h;
    t->heap = NULL;
    t->data = onyx_node_alloc(n, nb ? nb : 1);
    if (t->data && nb) memcpy(t->data, h.data, nb);
    onyx_tensor_release(&h);
    return t->data ? ONYX_OK : OOM_INIT(err);
}

static onyx_status constant_init(onyx_node *n, onyx_error *err) {
    onyx_tensor *t = onyx_node_alloc(n, sizeof *t);
    if (!t) return OOM_INIT(err);
    n->state = t;
    bool found = false;
    onyx_status st = onyx_attr_tensor(n, "value", t, &found, err);
    if (st || found) return st;
    const onyx_pb_attr *at;
    if ((at = onyx_attr_find(n, "sparse_value")) && at->sparse_tensor)
        return sparse_to_dense(n, at->sparse_tensor, t, err);
    if ((at = onyx_attr_find(n, "value_float"))) {
        t->dtype = ONYX_DTYPE_FLOAT;
        t->data = onyx_node_alloc(n, sizeof(float));
        if (!t->data) return OOM_INIT(err);
        *(float *)t->data = at->f;
        return ONYX_OK;
    }
    if ((at = onyx_attr_find(n, "value_int"))) {
        t->dtype = ONYX_DTYPE_INT64;
        t->data = onyx_node_alloc(n, sizeof(int64_t));
        if (!t->data) return OOM_INIT(err);
        *(int64_t *)t->data = at->i;
        return ONYX_OK;
    }
    if ((at = onyx_attr_find(n, "value_string"))) {
        t->dtype = ONYX_DTYPE_STRING;
        t->data = onyx_node_alloc(n, sizeof(char *));
        if (!t->data) return OOM_INIT(err);
        *(const char **)t->data = at->s.s;
        return ONYX_OK;
    }
    if ((at = onyx_attr_find(n, "value_floats")) || (at = onyx_attr_find(n, "value_ints")) ||
        (at = onyx_attr_find(n, "value_strings"))) {
        bool fl = strcmp(at->name, "value_floats") == 0, in = strcmp(at->name, "value_ints") == 0;
        size_t cnt = fl ? at->n_floats : in ? at->n_ints : at->n_strings;
        t->dtype = fl ? ONYX_DTYPE_FLOAT : in ? ONYX_DTYPE_INT64 : ONYX_DTYPE_STRING;
        int64_t d = (int64_t)cnt;
        onyx_tensor_set_shape(t, 1, &d);
        size_t es = onyx_dtype_size(t->dtype);
        t->data = onyx_node_alloc(n, cnt ? cnt * es : 1);
        if (!t->data) return OOM_INIT(err);
        for (size_t i = 0; i < cnt; i++) {
            if (fl) ((float *)t->data)[i] = at->floats[i];
            else if (in) ((int64_t *)t->data)[i] = at->ints[i];
            else ((const char **)t->data)[i] = at->strings[i].s;
        }
        return ONYX_OK;
    }
    return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "no value attribute");
}

static onyx_status constant_run(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *t = n->state;
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, t->dtype, t->ndim, t->dims, &out);
    if (st) return st;
    size_t nb = onyx_tensor_nbytes(t);
    if (nb) memcpy(out->data, t->data, nb);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* ConstantOfShape                                                         */

static onyx_status const_of_shape_init(onyx_node *n, onyx_error *err) {
    onyx_tensor *t = onyx_node_alloc(n, sizeof *t);
    if (!t) return OOM_INIT(err);
    bool found = false;
    onyx_status st = onyx_attr_tensor(n, "value", t, &found, err);
    if (st) return st;
    if (found && onyx_tensor_count(t) != 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'value' must hold one element");
    if (found && t->dtype == ONYX_DTYPE_STRING)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'value' cannot be a string");
    if (!found) {
        t->dtype = ONYX_DTYPE_FLOAT;
        t->ndim = 0;
        t->data = onyx_node_alloc(n, sizeof(float));
        if (!t->data) return OOM_INIT(err);
    }
    n->state = t;
    return ONYX_OK;
}

static onyx_status const_of_shape_run(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *v = n->state;
    const onyx_tensor *sh = onyx_exec_input(x, 0);
    if (!sh) return FAIL("missing input");
    int64_t dims[ONYX_MAX_DIMS];
    int nd;
    onyx_status st = onyx_op_read_shape(x, sh, true, dims, &nd);
    if (st) return st;
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, v->dtype, nd, dims, &out);
    if (st) return st;
    int64_t cnt = onyx_tensor_count(out);
    size_t es = onyx_dtype_size(v->dtype);
    bool zero = true;
    for (size_t b = 0; b < es; b++) zero = zero && ((const uint8_t *)v->data)[b] == 0;
    if (zero) {
        if (cnt) memset(out->data, 0, (size_t)cnt * es);
    } else {
        for (int64_t i = 0; i < cnt; i++) memcpy(ELEM(out, i), v->data, es);
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Range                                                                   */

static onyx_status range_run(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_tensor *ts = onyx_exec_input(x, 0), *tl = onyx_exec_input(x, 1), *td = onyx_exec_input(x, 2);
    if (!ts || !tl || !td || onyx_tensor_count(ts) != 1 || onyx_tensor_count(tl) != 1 ||
        onyx_tensor_count(td) != 1)
        return FAIL("start, limit and delta must be scalars");
    if (ts->dtype != tl->dtype || ts->dtype != td->dtype) return FAIL("input types differ");
    onyx_dtype dt = ts->dtype;
    int64_t count;
    onyx_tensor *out;
    if (onyx_dtype_is_float(dt)) {
        double s = onyx_tensor_get_f64(ts, 0), l = onyx_tensor_get_f64(tl, 0), d = onyx_tensor_get_f64(td, 0);
        if (d == 0 || !isfinite(s) || !isfinite(l) || !isfinite(d)) return FAIL("delta is 0 or a value is not finite");
        double c = ceil((l - s) / d);
        if (c > (double)(INT64_MAX / 16)) return FAIL("range too long");
        count = c > 0 ? (int64_t)c : 0;
        onyx_status st = onyx_exec_output(x, 0, dt, 1, &count, &out);
        if (st) return st;
        for (int64_t i = 0; i < count; i++) {
            if (dt == ONYX_DTYPE_FLOAT) {
                ((float *)out->data)[i] = (float)s + (float)i * (float)d;
            } else if (dt == ONYX_DTYPE_DOUBLE) {
                ((double *)out->data)[i] = s + (double)i * d;
            } else {
                float f = (float)(s + (double)i * d);
                st = onyx_convert(dt, ELEM(out, i), ONYX_DTYPE_FLOAT, &f, 1, false);
                if (st) return onyx_exec_fail(x, st, "cannot convert");
            }
        }
        return ONYX_OK;
    }
    int64_t s = onyx_tensor_get_i64(ts, 0), l = onyx_tensor_get_i64(tl, 0), d = onyx_tensor_get_i64(td, 0);
    if (d == 0) return FAIL("delta is 0");
    /* |l - s| fits since inputs are at most int64; work in double-checked int. */
    if ((l > s && d < 0) || (l < s && d > 0) || l == s) {
        count = 0;
    } else {
        uint64_t span = l > s ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
        uint64_t ad = d > 0 ? (uint64_t)d : (uint64_t)0 - (uint64_t)d;
        uint64_t c = span / ad + (span % ad != 0);
        if (c > (uint64_t)INT64_MAX / 16) return FAIL("range too long");
        count = (int64_t)c;
    }
    onyx_status st = onyx_exec_output(x, 0, dt, 1, &count, &out);
    if (st) return st;
    for (int64_t i = 0; i < count; i++) {
        int64_t v = (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d);
        st = onyx_convert(dt, ELEM(out, i), ONYX_DTYPE_INT64, &v, 1, false);
        if (st) return onyx_exec_fail(x, st, "cannot convert");
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Tile                                                                    */

static onyx_status tile_run(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_tensor *in = onyx_exec_input(x, 0), *rep = onyx_exec_input(x, 1);
    if (!in || !rep) return FAIL("missing input");
    int r = in->ndim;
    if (onyx_tensor_count(rep) != r || rep->ndim != 1) return FAIL("repeats must be 1-D of length %d", r);
    /* Output viewed as (rep0, d0, rep1, d1, ...) with input strides (0, s0, 0, s1, ...). */
    int64_t dims[ONYX_MAX_DIMS], vd[ONYX_OP_STRIDED_MAX_DIMS], vs[ONYX_OP_STRIDED_MAX_DIMS], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        int64_t rk = onyx_tensor_get_i64(rep, k);
        if (rk < 0) return FAIL("repeats[%d] = %lld is negative", k, (long long)rk);
        if (rk && in->dims[k] > INT64_MAX / rk) return FAIL("output too large");
        dims[k] = in->dims[k] * rk;
        vd[2 * k] = rk;
        vs[2 * k] = 0;
        vd[2 * k + 1] = in->dims[k];
        vs[2 * k + 1] = s;
        s *= in->dims[k];
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, dims, &out);
    if (st) return st;
    onyx_op_strided_copy(x, out->data, in->data, onyx_dtype_size(in->dtype), 2 * r, vd, vs);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Trilu                                                                   */

typedef struct trilu_attrs {
    bool upper;
} trilu_attrs;

static onyx_status trilu_init(onyx_node *n, onyx_error *err) {
    trilu_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->upper = onyx_attr_int(n, "upper", 1) != 0;
    n->state = a;
    return ONYX_OK;
}

static onyx_status trilu_run(const onyx_node *n, onyx_exec *x) {
    const trilu_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in || in->ndim < 2) return FAIL("input must have rank >= 2");
    int64_t k = 0;
    scalar_i64(onyx_exec_input(x, 1), &k);
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    int64_t N = in->dims[in->ndim - 2], M = in->dims[in->ndim - 1];
    int64_t B = onyx_op_prod(in->dims, 0, in->ndim - 2);
    size_t es = onyx_dtype_size(in->dtype);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++) {
            int64_t row = (b * N + i) * M;
            for (int64_t j = 0; j < M; j++) {
                /* j - i is small, so comparing it to any int64 k is exact. */
                bool keep = a->upper ? j - i >= k : j - i <= k;
                char *o = ELEM(out, row + j);
                if (keep) {
                    memcpy(o, CELEM(in, row + j), es);
                    if (in->dtype == ONYX_DTYPE_STRING && *(char **)(void *)o) {
                        char *c = strdup(*(char **)(void *)o);
                        *(char **)(void *)o = c;
                        if (!c) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
                    }
                } else {
                    memset(o, 0, es);
                }
            }
        }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* OneHot                                                                  */

typedef struct onehot_attrs {
    int64_t axis;
} onehot_attrs;

static onyx_status onehot_init(onyx_node *n, onyx_error *err) {
    onehot_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->axis = onyx_attr_int(n, "axis", -1);
    n->state = a;
    return ONYX_OK;
}

static onyx_status onehot_run(const onyx_node *n, onyx_exec *x) {
    const onehot_attrs *a = n->state;
    const onyx_tensor *ind = onyx_exec_input(x, 0), *dep = onyx_exec_input(x, 1), *val = onyx_exec_input(x, 2);
    if (!ind || !dep || !val) return FAIL("missing input");
    if (onyx_tensor_count(dep) != 1) return FAIL("depth must be a scalar");
    if (onyx_tensor_count(val) != 2) return FAIL("values must hold [off, on]");
    int64_t depth = onyx_dtype_is_float(dep->dtype) ? (int64_t)onyx_tensor_get_f64(dep, 0)
                                                    : onyx_tensor_get_i64(dep, 0);
    if (depth <= 0) return FAIL("depth %lld must be positive", (long long)depth);
    int r = ind->ndim;
    if (r + 1 > ONYX_MAX_DIMS) return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output rank too large");
    int axis;
    if (!onyx_op_norm_axis(a->axis, r + 1, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
    int64_t dims[ONYX_MAX_DIMS];
    for (int k = 0, j = 0; k < r + 1; k++) dims[k] = k == axis ? depth : ind->dims[j++];
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, val->dtype, r + 1, dims, &out);
    if (st) return st;
    size_t es = onyx_dtype_size(val->dtype);
    int64_t total = onyx_tensor_count(out);
    for (int64_t i = 0; i < total; i++) memcpy(ELEM(out, i), val->data, es);
    int64_t outer = onyx_op_prod(ind->dims, 0, axis), inner = onyx_op_prod(ind->dims, axis, r);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t id = onyx_dtype_is_float(ind->dtype) ? (int64_t)onyx_tensor_get_f64(ind, o * inner + i)
                                                         : onyx_tensor_get_i64(ind, o * inner + i);
            if (id < 0) id += depth;
            if (id < 0 || id >= depth) continue;
            memcpy(ELEM(out, (o * depth + id) * inner + i), CELEM(val, 1), es);
        }
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* EyeLike                                                                 */

typedef struct eyelike_attrs {
    int64_t dtype; /* 0: the input's */
    int64_t k;
} eyelike_attrs;

static onyx_status eyelike_init(onyx_node *n, onyx_error *err) {
    eyelike_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->dtype = onyx_attr_int(n, "dtype", 0);
    a->k = onyx_attr_int(n, "k", 0);
    if (a->dtype && (!onyx_dtype_is_valid((int32_t)a->dtype) || a->dtype == ONYX_DTYPE_STRING))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'dtype' %lld is invalid", (long long)a->dtype);
    n->state = a;
    return ONYX_OK;
}

static onyx_status eyelike_run(const onyx_node *n, onyx_exec *x) {
    const eyelike_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in || in->ndim != 2) return FAIL("input must be 2-D");
    onyx_dtype dt = a->dtype ? (onyx_dtype)a->dtype : in->dtype;
    if (dt == ONYX_DTYPE_STRING) return FAIL("output cannot be a string tensor");
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, dt, 2, in->dims, &out);
    if (st) return st;
    size_t es = onyx_dtype_size(dt);
    char one[16];
    float f1 = 1.0f;
    st = onyx_convert(dt, one, ONYX_DTYPE_FLOAT, &f1, 1, false);
    if (st) return onyx_exec_fail(x, st, "cannot write 1 as %s", onyx_dtype_name(dt));
    int64_t R = in->dims[0], C = in->dims[1];
    if (R > 0 && C > 0) memset(out->data, 0, (size_t)(R * C) * es);
    for (int64_t i = 0; i < R; i++) {
        if (a->k < -R || a->k > C) break;
        int64_t j = i + a->k;
        if (j >= 0 && j < C) memcpy(ELEM(out, i * C + j), one, es);
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* CumSum                                                                  */

typedef struct cumsum_attrs {
    bool exclusive, reverse;
} cumsum_attrs;

static onyx_status cumsum_init(onyx_node *n, onyx_error *err) {
    cumsum_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->exclusive = onyx_attr_int(n, "exclusive", 0) != 0;
    a->reverse = onyx_attr_int(n, "reverse", 0) != 0;
    n->state = a;
    return ONYX_OK;
}

/* One typed scan: T the element, A the accumulator, LD/ST convert. Signed
 * integers accumulate as unsigned so overflow wraps instead of being UB. */
#define CUMSUM_LOOP(T, A, LD, ST)                                                   \
    do {                                                                            \
        const T *src = in->data;                                                    \
        T *dst = out->data;                                                         \
        for (int64_t o = 0; o < outer; o++)                                         \
            for (int64_t i = 0; i < inner; i++) {                                   \
                A acc = 0;                                                          \
                for (int64_t t = 0; t < D; t++) {                                   \
                    int64_t tt = a->reverse ? D - 1 - t : t;                        \
                    int64_t p = (o * D + tt) * inner + i;                           \
                    A v = LD(src[p]);                                               \
                    if (a->exclusive) {                                             \
                        dst[p] = ST(acc);                                           \
                        acc += v;                                                   \
                    } else {                                                        \
                        acc += v;                                                   \
                        dst[p] = ST(acc);                                           \
                    }                                                               \
                }                                                                   \
            }                                                                       \
    } while (0)

#define ID(v) (v)
#define TO_I32(v) ((int32_t)(v))
#define TO_I64(v) ((int64_t)(v))

static onyx_status cumsum_run(const onyx_node *n, onyx_exec *x) {
    const cumsum_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    int64_t ax;
    if (!in || !scalar_i64(onyx_exec_input(x, 1), &ax)) return FAIL("missing input or axis");
    int r = in->ndim < 1 ? 1 : in->ndim, axis;
    if (!onyx_op_norm_axis(ax, r, &axis)) return FAIL("axis %lld out of range", (long long)ax);
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    int64_t outer = in->ndim ? onyx_op_prod(in->dims, 0, axis) : 1;
    int64_t D = in->ndim ? in->dims[axis] : 1;
    int64_t inner = in->ndim ? onyx_op_prod(in->dims, axis + 1, in->ndim) : 1;
    switch (in->dtype) {
    case ONYX_DTYPE_FLOAT: CUMSUM_LOOP(float, float, ID, ID); break;
    case ONYX_DTYPE_DOUBLE: CUMSUM_LOOP(double, double, ID, ID); break;
    case ONYX_DTYPE_INT32: CUMSUM_LOOP(int32_t, uint32_t, (uint32_t), TO_I32); break;
    case ONYX_DTYPE_INT64: CUMSUM_LOOP(int64_t, uint64_t, (uint64_t), TO_I64); break;
    case ONYX_DTYPE_UINT32: CUMSUM_LOOP(uint32_t, uint32_t, ID, ID); break;
    case ONYX_DTYPE_UINT64: CUMSUM_LOOP(uint64_t, uint64_t, ID, ID); break;
    case ONYX_DTYPE_FLOAT16: CUMSUM_LOOP(uint16_t, float, onyx_f16_to_f32, onyx_f32_to_f16); break;
    case ONYX_DTYPE_BFLOAT16: CUMSUM_LOOP(uint16_t, float, onyx_bf16_to_f32, onyx_f32_to_bf16); break;
    default: return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "CumSum of %s", onyx_dtype_name(in->dtype));
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* ReverseSequence                                                         */

typedef struct revseq_attrs {
    int64_t batch_axis, time_axis;
} revseq_attrs;

static onyx_status revseq_init(onyx_node *n, onyx_error *err) {
    revseq_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->batch_axis = onyx_attr_int(n, "batch_axis", 1);
    a->time_axis = onyx_attr_int(n, "time_axis", 0);
    if (!((a->batch_axis == 0 && a->time_axis == 1) || (a->batch_axis == 1 && a->time_axis == 0)))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "batch_axis/time_axis must be 0 and 1");
    n->state = a;
    return ONYX_OK;
}

static onyx_status revseq_run(const onyx_node *n, onyx_exec *x) {
    const revseq_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0), *lens = onyx_exec_input(x, 1);
    if (!in || !lens || in->ndim < 2) return FAIL("input must have rank >= 2");
    int64_t B = in->dims[a->batch_axis], T = in->dims[a->time_axis];
    if (onyx_tensor_count(lens) != B) return FAIL("sequence_lens must have %lld entries", (long long)B);
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    size_t es = onyx_dtype_size(in->dtype);
    int64_t inner = onyx_op_prod(in->dims, 2, in->ndim);
    for (int64_t b = 0; b < B; b++) {
        int64_t L = onyx_tensor_get_i64(lens, b);
        if (L < 0 || L > T) return FAIL("sequence_lens[%lld] = %lld out of range", (long long)b, (long long)L);
        for (int64_t t = 0; t < T; t++) {
            int64_t ts = t < L ? L - 1 - t : t;
            int64_t od = a->batch_axis == 0 ? b * T + t : t * B + b;
            int64_t id = a->batch_axis == 0 ? b * T + ts : ts * B + b;
            if (inner) memcpy(ELEM(out, od * inner), CELEM(in, id * inner), (size_t)inner * es);
        }
    }
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Compress                                                                */

static onyx_status compress_run(const onyx_node *n, onyx_exec *x) {
    const onyx_op_axis *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0), *cond = onyx_exec_input(x, 1);
    if (!in || !cond) return FAIL("missing input");
    if (cond->ndim != 1) return FAIL("condition must be 1-D");
    int r = a->has_axis ? in->ndim : 1, axis = 0;
    int64_t flat = onyx_tensor_count(in);
    const int64_t *idims = a->has_axis ? in->dims : &flat;
    if (a->has_axis && !onyx_op_norm_axis(a->axis, r, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
    int64_t D = idims[axis], cn = onyx_tensor_count(cond), sel = 0;
    for (int64_t i = 0; i < cn; i++) {
        if (onyx_tensor_get_i64(cond, i) == 0) continue;
        if (i >= D) return FAIL("condition selects index %lld beyond the axis (%lld)", (long long)i, (long long)D);
        sel++;
    }
    int64_t dims[ONYX_MAX_DIMS];
    memcpy(dims, idims, (size_t)r * sizeof *dims);
    dims[axis] = sel;
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, dims, &out);
    if (st) return st;
    size_t es = onyx_dtype_size(in->dtype);
    int64_t outer = onyx_op_prod(idims, 0, axis), inner = onyx_op_prod(idims, axis + 1, r);
    int64_t o_i = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < cn && i < D; i++) {
            if (onyx_tensor_get_i64(cond, i) == 0) continue;
            if (inner) memcpy(ELEM(out, o_i * inner), CELEM(in, (o * D + i) * inner), (size_t)inner * es);
            o_i++;
        }
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* NonZero                                                                 */

static bool is_nonzero(const onyx_tensor *t, int64_t i) {
    if (t->dtype == ONYX_DTYPE_STRING) {
        const char *s = ((char *const *)t->data)[i];
        return s && *s;
    }
    if (onyx_dtype_is_float(t->dtype) && t->dtype != ONYX_DTYPE_FLOAT8E8M0)
        return onyx_tensor_get_f64(t, i) != 0;
    size_t es = onyx_dtype_size(t->dtype);
    const uint8_t *p = (const uint8_t *)CELEM(t, i);
    for (size_t b = 0; b < es; b++)
        if (p[b]) return true;
    return false;
}

static onyx_status nonzero_run(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int64_t cnt = onyx_tensor_count(in), nnz = 0;
    for (int64_t i = 0; i < cnt; i++) nnz += is_nonzero(in, i);
    int r = in->ndim;
    int64_t dims[2] = {r ? r : 1, nnz};
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_INT64, 2, dims, &out);
    if (st) return st;
    int64_t *o = out->data, col = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (!is_nonzero(in, i)) continue;
        int64_t rem = i;
        for (int k = r - 1; k >= 0; k--) {
            o[k * nnz + col] = rem % in->dims[k];
            rem /= in->dims[k];
        }
        if (r == 0) o[col] = 0;
        col++;
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Unique                                                                  */

typedef struct unique_attrs {
    int64_t axis;
    bool has_axis, sorted;
} unique_attrs;

static onyx_status unique_init(onyx_node *n, onyx_error *err) {
    unique_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->has_axis = onyx_attr_find(n, "axis") != NULL;
    a->axis = onyx_attr_int(n, "axis", 0);
    a->sorted = onyx_attr_int(n, "sorted", 1) != 0;
    n->state = a;
    return ONYX_OK;
}

/* Slices along the unique axis: slice s is elements (o, s, i) for all
 * outer o and inner i, compared lexicographically in that order. */
typedef struct unique_ctx {
    const onyx_tensor *t;
    key_kind kind;
    int64_t outer, D, inner;
} unique_ctx;

static int unique_cmp(const void *ctx, int64_t a, int64_t b) {
    const unique_ctx *c = ctx;
    for (int64_t o = 0; o < c->outer; o++)
        for (int64_t i = 0; i < c->inner; i++) {
            int64_t base = o * c->D * c->inner + i;
            int r = key_cmp(c->kind, load_key(c->t, base + a * c->inner), load_key(c->t, base + b * c->inner));
            if (r) return r;
        }
    return 0;
}

static int unique_first_cmp(const void *ctx, int64_t a, int64_t b) {
    const int64_t *first = ctx;
    return (first[a] > first[b]) - (first[a] < first[b]);
}

static onyx_status unique_run(const onyx_node *n, onyx_exec *x) {
    const unique_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    unique_ctx c = {.t = in, .kind = key_kind_of(in->dtype), .outer = 1, .inner = 1};
    int axis = 0;
    if (a->has_axis) {
        if (!onyx_op_norm_axis(a->axis, in->ndim, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
        c.outer = onyx_op_prod(in->dims, 0, axis);
        c.D = in->dims[axis];
        c.inner = onyx_op_prod(in->dims, axis + 1, in->ndim);
    } else {
        c.D = onyx_tensor_count(in);
    }
    int64_t D = c.D;
    size_t ni = (size_t)(D > 0 ? D : 1);
    int64_t *order = onyx_exec_scratch(x, 5 * ni * sizeof(int64_t));
    if (!order) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t *tmp = order + ni, *group = tmp + ni, *first = group + ni, *counts = first + ni;
    for (int64_t i = 0; i < D; i++) order[i] = i;
    merge_sort(order, tmp, D, unique_cmp, &c);
    /* Groups in sorted order: group[i] is the group of slice i. */
    int64_t ng = 0;
    for (int64_t i = 0; i < D; i++) {
        if (i == 0 || unique_cmp(&c, order[i - 1], order[i]) != 0) {
            first[ng] = order[i]; /* stable sort: the lowest index comes first */
            counts[ng] = 0;
            ng++;
        }
        group[order[i]] = ng - 1;
        counts[ng - 1]++;
    }
    /* remap[g] is the output position of sorted group g. */
    int64_t *remap = tmp, *gorder = order;
    for (int64_t g = 0; g < ng; g++) gorder[g] = g;
    if (!a->sorted) {
        int64_t *t2 = onyx_exec_scratch(x, ni * sizeof(int64_t));
        if (!t2) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        merge_sort(gorder, t2, ng, unique_first_cmp, first);
    }
    for (int64_t p = 0; p < ng; p++) remap[gorder[p]] = p;
    /* Y */
    int64_t dims[ONYX_MAX_DIMS];
    int r = a->has_axis ? in->ndim : 1;
    if (a->has_axis) memcpy(dims, in->dims, sizeof dims);
    dims[axis] = ng;
    onyx_tensor *y;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, dims, &y);
    if (st) return st;
    size_t es = onyx_dtype_size(in->dtype);
    for (int64_t o = 0; o < c.outer; o++)
        for (int64_t p = 0; p < ng; p++) {
            int64_t s = first[gorder[p]];
            if (c.inner)
                memcpy(ELEM(y, (o * ng + p) * c.inner), CELEM(in, (o * D + s) * c.inner), (size_t)c.inner * es);
        }
    st = onyx_op_own_strings(x, y);
    if (st) return st;
    onyx_tensor *t;
    if (n->n_out > 1) {
        st = onyx_exec_output(x, 1, ONYX_DTYPE_INT64, 1, &ng, &t);
        if (st) return st;
        for (int64_t p = 0; p < ng; p++) ((int64_t *)t->data)[p] = first[gorder[p]];
    }
    if (n->n_out > 2) {
        st = onyx_exec_output(x, 2, ONYX_DTYPE_INT64, 1, &D, &t);
        if (st) return st;
        for (int64_t i = 0; i < D; i++) ((int64_t *)t->data)[i] = remap[group[i]];
    }
    if (n->n_out > 3) {
        st = onyx_exec_output(x, 3, ONYX_DTYPE_INT64, 1, &ng, &t);
        if (st) return st;
        for (int64_t p = 0; p < ng; p++) ((int64_t *)t->data)[p] = counts[gorder[p]];
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* TopK                                                                    */

typedef struct topk_attrs {
    int64_t axis, k; /* k: opset 1 attribute */
    bool largest;
} topk_attrs;

static onyx_status topk_init(onyx_node *n, onyx_error *err) {
    topk_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->axis = onyx_attr_int(n, "axis", -1);
    a->k = onyx_attr_int(n, "k", -1);
    if (n->opset < 10 && a->k < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'k' is required");
    a->largest = onyx_attr_int(n, "largest", 1) != 0;
    /* 'sorted' = 0 leaves the order unspecified; sorted output satisfies it. */
    n->state = a;
    return ONYX_OK;
}

typedef struct topk_ctx {
    const key *keys;
    key_kind kind;
    int sign; /* -1 for largest first */
} topk_ctx;

static int topk_cmp(const void *ctx, int64_t a, int64_t b) {
    const topk_ctx *c = ctx;
    int r = c->sign * key_cmp(c->kind, c->keys[a], c->keys[b]);
    return r ? r : (a > b) - (a < b);
}

static onyx_status topk_run(const onyx_node *n, onyx_exec *x) {
    const topk_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int64_t k = a->k;
    if (n->opset >= 10 && !scalar_i64(onyx_exec_input(x, 1), &k)) return FAIL("missing K");
    int axis;
    if (!onyx_op_norm_axis(a->axis, in->ndim, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
    int64_t D = in->dims[axis];
    if (k < 0 || k > D) return FAIL("k = %lld out of range for axis of size %lld", (long long)k, (long long)D);
    int64_t dims[ONYX_MAX_DIMS];
    memcpy(dims, in->dims, sizeof dims);
    dims[axis] = k;
    onyx_tensor *vals, *idx;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, dims, &vals);
    if (st) return st;
    st = onyx_exec_output(x, 1, ONYX_DTYPE_INT64, in->ndim, dims, &idx);
    if (st) return st;
    if (k == 0 || onyx_tensor_count(in) == 0) return ONYX_OK;
    size_t ni = (size_t)D;
    key *keys = onyx_exec_scratch(x, ni * sizeof *keys + 2 * ni * sizeof(int64_t));
    if (!keys) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t *ord = (int64_t *)(void *)(keys + ni), *tmp = ord + ni;
    topk_ctx c = {keys, key_kind_of(in->dtype), a->largest ? -1 : 1};
    size_t es = onyx_dtype_size(in->dtype);
    int64_t outer = onyx_op_prod(in->dims, 0, axis), inner = onyx_op_prod(in->dims, axis + 1, in->ndim);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t d = 0; d < D; d++) {
                keys[d] = load_key(in, (o * D + d) * inner + i);
                ord[d] = d;
            }
            merge_sort(ord, tmp, D, topk_cmp, &c);
            for (int64_t j = 0; j < k; j++) {
                int64_t op = (o * k + j) * inner + i;
                memcpy(ELEM(vals, op), CELEM(in, (o * D + ord[j]) * inner + i), es);
                ((int64_t *)idx->data)[op] = ord[j];
            }
        }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* ArgMax, ArgMin                                                          */

typedef struct arg_attrs {
    int64_t axis;
    bool keepdims, last, is_min;
} arg_attrs;

static onyx_status arg_init(onyx_node *n, onyx_error *err) {
    arg_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->axis = onyx_attr_int(n, "axis", 0);
    a->keepdims = onyx_attr_int(n, "keepdims", 1) != 0;
    a->last = onyx_attr_int(n, "select_last_index", 0) != 0;
    a->is_min = strcmp(n->op_type, "ArgMin") == 0;
    n->state = a;
    return ONYX_OK;
}

static onyx_status arg_run(const onyx_node *n, onyx_exec *x) {
    const arg_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int axis;
    if (!onyx_op_norm_axis(a->axis, in->ndim, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
    int64_t D = in->dims[axis];
    if (D == 0) return FAIL("cannot reduce an empty axis");
    int64_t dims[ONYX_MAX_DIMS];
    int r = 0;
    for (int k = 0; k < in->ndim; k++) {
        if (k == axis && !a->keepdims) continue;
        dims[r++] = k == axis ? 1 : in->dims[k];
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_INT64, r, dims, &out);
    if (st) return st;
    key_kind kind = key_kind_of(in->dtype);
    int64_t outer = onyx_op_prod(in->dims, 0, axis), inner = onyx_op_prod(in->dims, axis + 1, in->ndim);
    int want = a->is_min ? -1 : 1;
    int64_t *o = out->data;
    for (int64_t oo = 0; oo < outer; oo++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            key bk = load_key(in, oo * D * inner + i);
            for (int64_t d = 1; d < D; d++) {
                key v = load_key(in, (oo * D + d) * inner + i);
                int c = key_cmp(kind, v, bk) * want;
                if (c > 0 || (c == 0 && a->last)) {
                    best = d;
                    bk = v;
                }
            }
            o[oo * inner + i] = best;
        }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define ANY ONYX_T_ALL
#define NUM ONYX_T_NUMERIC
#define ROW(op, v, mi, xi, mo, xo, types, init, run) {"", op, v, mi, xi, mo, xo, types, init, run}
#define CUMSUM_T                                                                                   \
    (ONYX_T_FLOATS | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64) | ONYX_T(ONYX_DTYPE_UINT32) | \
     ONYX_T(ONYX_DTYPE_UINT64))
#define RANGE_T                                                                                  \
    (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_INT16) |              \
     ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64))
#define EYE_T (ONYX_T_NUMERIC | ONYX_T(ONYX_DTYPE_BOOL))

const onyx_op_schema onyx_ops_tensor[] = {
    ROW("Concat", 1, 1, -1, 1, 1, ANY, concat_init, concat_run),
    ROW("Concat", 4, 1, -1, 1, 1, ANY, concat_init, concat_run),
    ROW("Concat", 11, 1, -1, 1, 1, ANY, concat_init, concat_run),
    ROW("Concat", 13, 1, -1, 1, 1, ANY, concat_init, concat_run),
    ROW("Split", 1, 1, 2, 1, -1, ANY, split_init, split_run),
    ROW("Split", 2, 1, 1, 1, -1, ANY, split_init, split_run),
    ROW("Split", 11, 1, 1, 1, -1, ANY, split_init, split_run),
    ROW("Split", 13, 1, 2, 1, -1, ANY, split_init, split_run),
    ROW("Split", 18, 1, 2, 1, -1, ANY, split_init, split_run),
    ROW("Slice", 1, 1, 1, 1, 1, ANY, slice_init, slice_run),
    ROW("Slice", 10, 3, 5, 1, 1, ANY, slice_init, slice_run),
    ROW("Slice", 11, 3, 5, 1, 1, ANY, slice_init, slice_run),
    ROW("Slice", 13, 3, 5, 1, 1, ANY, slice_init, slice_run),
    ROW("Pad", 1, 1, 1, 1, 1, ONYX_T_FLOATS, pad_init, pad_run),
    ROW("Pad", 2, 1, 1, 1, 1, ONYX_T_FLOATS, pad_init, pad_run),
    ROW("Pad", 11, 2, 3, 1, 1, ANY, pad_init, pad_run),
    ROW("Pad", 13, 2, 3, 1, 1, ANY, pad_init, pad_run),
    ROW("Pad", 18, 2, 4, 1, 1, ANY, pad_init, pad_run),
    ROW("Pad", 19, 2, 4, 1, 1, ANY, pad_init, pad_run),
    ROW("Pad", 21, 2, 4, 1, 1, ANY, pad_init, pad_run),
    ROW("Pad", 23, 2, 4, 1, 1, ANY, pad_init, pad_run),
    ROW("Pad", 24, 2, 4, 1, 1, ANY, pad_init, pad_run),
    ROW("Constant", 1, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 9, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 11, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 12, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 13, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 19, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 21, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 23, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("Constant", 24, 0, 0, 1, 1, 0, constant_init, constant_run),
    ROW("ConstantOfShape", 9, 1, 1, 1, 1, ONYX_T_INTS, const_of_shape_init, const_of_shape_run),
    ROW("ConstantOfShape", 20, 1, 1, 1, 1, ONYX_T_INTS, const_of_shape_init, const_of_shape_run),
    ROW("ConstantOfShape", 21, 1, 1, 1, 1, ONYX_T_INTS, const_of_shape_init, const_of_shape_run),
    ROW("ConstantOfShape", 23, 1, 1, 1, 1, ONYX_T_INTS, const_of_shape_init, const_of_shape_run),
    ROW("ConstantOfShape", 24, 1, 1, 1, 1, ONYX_T_INTS, const_of_shape_init, const_of_shape_run),
    ROW("Range", 11, 3, 3, 1, 1, RANGE_T, NULL, range_run),
    ROW("Tile", 6, 2, 2, 1, 1, ANY, NULL, tile_run),
    ROW("Tile", 13, 2, 2, 1, 1, ANY, NULL, tile_run),
    ROW("Trilu", 14, 1, 2, 1, 1, ANY, trilu_init, trilu_run),
    ROW("OneHot", 9, 3, 3, 1, 1, NUM, onehot_init, onehot_run),
    ROW("OneHot", 11, 3, 3, 1, 1, NUM, onehot_init, onehot_run),
    ROW("EyeLike", 9, 1, 1, 1, 1, EYE_T, eyelike_init, eyelike_run),
    ROW("EyeLike", 22, 1, 1, 1, 1, EYE_T, eyelike_init, eyelike_run),
    ROW("CumSum", 11, 2, 2, 1, 1, CUMSUM_T, cumsum_init, cumsum_run),
    ROW("CumSum", 14, 2, 2, 1, 1, CUMSUM_T, cumsum_init, cumsum_run),
    ROW("ReverseSequence", 10, 2, 2, 1, 1, ANY, revseq_init, revseq_run),
    ROW("Compress", 9, 2, 2, 1, 1, ANY, onyx_op_axis_init0, compress_run),
    ROW("Compress", 11, 2, 2, 1, 1, ANY, onyx_op_axis_init0, compress_run),
    ROW("NonZero", 9, 1, 1, 1, 1, ANY, NULL, nonzero_run),
    ROW("NonZero", 13, 1, 1, 1, 1, ANY, NULL, nonzero_run),
    ROW("Unique", 11, 1, 1, 1, 4, ANY, unique_init, unique_run),
    ROW("TopK", 1, 1, 1, 2, 2, NUM, topk_init, topk_run),
    ROW("TopK", 10, 2, 2, 2, 2, NUM, topk_init, topk_run),
    ROW("TopK", 11, 2, 2, 2, 2, NUM, topk_init, topk_run),
    ROW("TopK", 24, 2, 2, 2, 2, NUM, topk_init, topk_run),
    ROW("ArgMax", 1, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMax", 11, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMax", 12, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMax", 13, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMin", 1, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMin", 11, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMin", 12, 1, 1, 1, 1, NUM, arg_init, arg_run),
    ROW("ArgMin", 13, 1, 1, 1, 1, NUM, arg_init, arg_run),
    {0},
};
