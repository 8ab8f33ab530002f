/* gather.c - indexed reads and writes: Gather, GatherElements, GatherND,
 * ScatterElements, ScatterND and the deprecated Scatter. Element moves are by
 * element size (every dtype, STRING outputs own their strings); only the
 * scatter reductions (add/mul/max/min) are typed. Every index is checked
 * against its axis before any memory is touched.
 * Does not own: slicing and concatenation (tensor.c). */
#include "core/op.h"
#include "ops/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM_INIT(err) onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory")
#define ELEM(t, i) ((char *)(t)->data + (size_t)(i) * onyx_dtype_size((t)->dtype))
#define CELEM(t, i) ((const char *)(t)->data + (size_t)(i) * onyx_dtype_size((t)->dtype))

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

/* Reads every index of `ind` into a scratch array, each made non-negative
 * against the size of the axis it addresses: dim_of(i) is `dim` for all i, or
 * dims[i % ndims] when `dims` is given (GatherND/ScatterND tuples). */
static onyx_status load_indices(onyx_exec *x, const onyx_tensor *ind, int64_t dim,
                                const int64_t *dims, int ndims, int64_t **out) {
    int64_t n = onyx_tensor_count(ind);
    if (ind->dtype != ONYX_DTYPE_INT64 && ind->dtype != ONYX_DTYPE_INT32)
        return FAIL("indices must be int32 or int64, not %s", onyx_dtype_name(ind->dtype));
    int64_t *v = onyx_exec_scratch(x, (size_t)(n ? n : 1) * sizeof *v);
    if (!v) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t d = dims ? dims[i % ndims] : dim;
        int64_t id = ind->dtype == ONYX_DTYPE_INT64 ? ((const int64_t *)ind->data)[i]
                                                    : ((const int32_t *)ind->data)[i];
        if (id < -d || id >= d)
            return FAIL("index %lld out of range for an axis of size %lld", (long long)id, (long long)d);
        v[i] = id < 0 ? id + d : id;
    }
    *out = v;
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Scatter reductions                                                      */

typedef enum red_op { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN, RED_OP_COUNT } red_op;

#define RED_FLOAT(T)                                                     \
    do {                                                                 \
        T a, b;                                                          \
        memcpy(&a, d, sizeof a);                                         \
        memcpy(&b, s, sizeof b);                                         \
        switch (op) {                                                    \
        case RED_ADD: a = a + b; break;                                  \
        case RED_MUL: a = a * b; break;                                  \
        case RED_MAX: a = a > b ? a : b; break;                          \
        case RED_MIN: a = a < b ? a : b; break;                          \
        default: a = b;                                                  \
        }                                                                \
        memcpy(d, &a, sizeof a);                                         \
    } while (0)

/* Integers add and multiply with wrap-around (through the unsigned type U),
 * never signed overflow. */
#define RED_INT(T, U)                                                    \
    do {                                                                 \
        T a, b;                                                          \
        memcpy(&a, d, sizeof a);                                         \
        memcpy(&b, s, sizeof b);                                         \
        switch (op) {                                                    \
        case RED_ADD: a = (T)(U)((U)a + (U)b); break;                    \
        case RED_MUL: a = (T)(U)((U)a * (U)b); break;                    \
        case RED_MAX: a = a > b ? a : b; break;                          \
        case RED_MIN: a = a < b ? a : b; break;                          \
        default: a = b;                                                  \
        }                                                                \
        memcpy(d, &a, sizeof a);                                         \
    } while (0)

/* d = d (op) s for one element of type t. */
static void reduce_elem(onyx_dtype t, red_op op, void *d, const void *s) {
    switch (t) {
    case ONYX_DTYPE_FLOAT: RED_FLOAT(float); break;
    case ONYX_DTYPE_DOUBLE: RED_FLOAT(double); break;
    case ONYX_DTYPE_INT8: RED_INT(int8_t, uint8_t); break;
    case ONYX_DTYPE_INT16: RED_INT(int16_t, uint16_t); break;
    case ONYX_DTYPE_INT32: RED_INT(int32_t, uint32_t); break;
    case ONYX_DTYPE_INT64: RED_INT(int64_t, uint64_t); break;
    case ONYX_DTYPE_UINT8: RED_INT(uint8_t, uint32_t); break;
    case ONYX_DTYPE_UINT16: RED_INT(uint16_t, uint32_t); break;
    case ONYX_DTYPE_UINT32: RED_INT(uint32_t, uint32_t); break;
    case ONYX_DTYPE_UINT64: RED_INT(uint64_t, uint64_t); break;
    case ONYX_DTYPE_BOOL: {
        uint8_t a = *(uint8_t *)d, b = *(const uint8_t *)s;
        a = op == RED_ADD || op == RED_MAX ? (a | b) : op == RED_NONE ? b : (a & b);
        *(uint8_t *)d = a;
        break;
    }
    case ONYX_DTYPE_FLOAT16:
    case ONYX_DTYPE_BFLOAT16: {
        bool h = t == ONYX_DTYPE_FLOAT16;
        uint16_t ra, rb;
        memcpy(&ra, d, 2);
        memcpy(&rb, s, 2);
        float fa = h ? onyx_f16_to_f32(ra) : onyx_bf16_to_f32(ra);
        float fb = h ? onyx_f16_to_f32(rb) : onyx_bf16_to_f32(rb);
        reduce_elem(ONYX_DTYPE_FLOAT, op, &fa, &fb);
        ra = h ? onyx_f32_to_f16(fa) : onyx_f32_to_bf16(fa);
        memcpy(d, &ra, 2);
        break;
    }
    default: memcpy(d, s, onyx_dtype_size(t)); break;
    }
}

typedef struct scatter_attrs {
    int64_t axis;
    red_op op;
} scatter_attrs;

static onyx_status scatter_init(onyx_node *n, onyx_error *err) {
    scatter_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->axis = onyx_attr_int(n, "axis", 0);
    const char *r = onyx_attr_string(n, "reduction", "none");
    static const char *const names[RED_OP_COUNT] = {"none", "add", "mul", "max", "min"};
    int op = onyx_op_lookup(r, names, RED_OP_COUNT);
    if (op < 0 || ((op == RED_MAX || op == RED_MIN) && n->opset < 18))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'reduction' is '%s'", r);
    a->op = (red_op)op;
    n->state = a;
    return ONYX_OK;
}

/* Writes element s of `src` into element d of `out` under the reduction. */
static onyx_status scatter_put(onyx_exec *x, onyx_tensor *out, int64_t d, const onyx_tensor *src,
                               int64_t s, red_op op) {
    if (out->dtype == ONYX_DTYPE_STRING) {
        if (op != RED_NONE) return FAIL("reductions do not apply to strings");
        char **o = (char **)out->data + d;
        const char *v = ((char *const *)src->data)[s];
        char *c = v ? strdup(v) : NULL;
        if (v && !c) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        free(*o);
        *o = c;
        return ONYX_OK;
    }
    if (op == RED_NONE) memcpy(ELEM(out, d), CELEM(src, s), onyx_dtype_size(out->dtype));
    else reduce_elem(out->dtype, op, ELEM(out, d), CELEM(src, s));
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Gather                                                                  */

static onyx_status gather_run(const onyx_node *n, onyx_exec *x) {
    const onyx_op_axis *a = n->state;
    const onyx_tensor *data = onyx_exec_input(x, 0), *ind = onyx_exec_input(x, 1);
    if (!data || !ind) return FAIL("missing input");
    int r = data->ndim, q = ind->ndim, axis;
    if (!onyx_op_norm_axis(a->axis, r, &axis)) return FAIL("axis %lld out of range for rank %d", (long long)a->axis, r);
    if (r - 1 + q > ONYX_MAX_DIMS) return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output rank too large");
    int64_t D = data->dims[axis];
    int64_t *idx;
    onyx_status st = load_indices(x, ind, D, NULL, 0, &idx);
    if (st) return st;
    int64_t dims[ONYX_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < axis; k++) dims[nd++] = data->dims[k];
    for (int k = 0; k < q; k++) dims[nd++] = ind->dims[k];
    for (int k = axis + 1; k < r; k++) dims[nd++] = data->dims[k];
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, data->dtype, nd, dims, &out);
    if (st) return st;
    int64_t outer = onyx_op_prod(data->dims, 0, axis), inner = onyx_op_prod(data->dims, axis + 1, r);
    int64_t ni = onyx_tensor_count(ind);
    size_t blk = (size_t)inner * onyx_dtype_size(data->dtype);
    if (blk)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < ni; j++)
                memcpy(ELEM(out, (o * ni + j) * inner), CELEM(data, (o * D + idx[j]) * inner), blk);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* GatherElements, ScatterElements, Scatter                                */

/* For every position i of `ind` (row-major), offs[i] is the flat index into a
 * tensor of dims `dd` (same rank) at that position with the axis coordinate
 * replaced by idx[i]. */
static void element_offsets(const onyx_tensor *ind, const int64_t *dd, int axis, const int64_t *idx,
                            int64_t *offs) {
    int r = ind->ndim;
    int64_t str[ONYX_MAX_DIMS], s = 1, pos[ONYX_MAX_DIMS] = {0};
    for (int k = r - 1; k >= 0; k--) {
        str[k] = s;
        s *= dd[k];
    }
    int64_t n = onyx_tensor_count(ind), base = 0; /* base: offset without the axis term */
    for (int64_t i = 0; i < n; i++) {
        offs[i] = base + idx[i] * str[axis];
        for (int k = r - 1; k >= 0; k--) {
            if (k != axis) base += str[k];
            if (++pos[k] < ind->dims[k]) break;
            if (k != axis) base -= pos[k] * str[k];
            pos[k] = 0;
        }
    }
}

static onyx_status check_elements_shape(onyx_exec *x, const onyx_tensor *data, const onyx_tensor *ind,
                                        int axis) {
    if (ind->ndim != data->ndim) return FAIL("indices rank %d differs from data rank %d", ind->ndim, data->ndim);
    for (int k = 0; k < data->ndim; k++)
        if (k != axis && ind->dims[k] > data->dims[k])
            return FAIL("indices dim %d (%lld) exceeds data dim (%lld)", k, (long long)ind->dims[k],
                        (long long)data->dims[k]);
    return ONYX_OK;
}

static onyx_status gather_elements_run(const onyx_node *n, onyx_exec *x) {
    const onyx_op_axis *a = n->state;
    const onyx_tensor *data = onyx_exec_input(x, 0), *ind = onyx_exec_input(x, 1);
    if (!data || !ind) return FAIL("missing input");
    int axis;
    if (!onyx_op_norm_axis(a->axis, data->ndim, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
    onyx_status st = check_elements_shape(x, data, ind, axis);
    if (st) return st;
    int64_t *idx;
    st = load_indices(x, ind, data->dims[axis], NULL, 0, &idx);
    if (st) return st;
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, data->dtype, ind->ndim, ind->dims, &out);
    if (st) return st;
    int64_t ni = onyx_tensor_count(ind);
    if (ni == 0) return ONYX_OK;
    int64_t *offs = onyx_exec_scratch(x, (size_t)ni * sizeof *offs);
    if (!offs) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    element_offsets(ind, data->dims, axis, idx, offs);
    size_t es = onyx_dtype_size(data->dtype);
    for (int64_t i = 0; i < ni; i++) memcpy(ELEM(out, i), CELEM(data, offs[i]), es);
    return onyx_op_own_strings(x, out);
}

static onyx_status scatter_elements_run(const onyx_node *n, onyx_exec *x) {
    const scatter_attrs *a = n->state;
    const onyx_tensor *data = onyx_exec_input(x, 0), *ind = onyx_exec_input(x, 1),
                      *upd = onyx_exec_input(x, 2);
    if (!data || !ind || !upd) return FAIL("missing input");
    int axis;
    if (!onyx_op_norm_axis(a->axis, data->ndim, &axis)) return FAIL("axis %lld out of range", (long long)a->axis);
    onyx_status st = check_elements_shape(x, data, ind, axis);
    if (st) return st;
    if (upd->ndim != ind->ndim || memcmp(upd->dims, ind->dims, (size_t)ind->ndim * sizeof *ind->dims) ||
        upd->dtype != data->dtype)
        return FAIL("updates must match indices in shape and data in type");
    int64_t *idx;
    st = load_indices(x, ind, data->dims[axis], NULL, 0, &idx);
    if (st) return st;
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, data->dtype, data->ndim, data->dims, &out);
    if (st) return st;
    size_t nb = onyx_tensor_nbytes(data);
    if (nb) memcpy(out->data, data->data, nb);
    st = onyx_op_own_strings(x, out);
    if (st) return st;
    int64_t ni = onyx_tensor_count(ind);
    if (ni == 0) return ONYX_OK;
    int64_t *offs = onyx_exec_scratch(x, (size_t)ni * sizeof *offs);
    if (!offs) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    element_offsets(ind, data->dims, axis, idx, offs);
    for (int64_t i = 0; i < ni; i++) {
        st = scatter_put(x, out, offs[i], upd, i, a->op);
        if (st) return st;
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* GatherND, ScatterND                                                     */

typedef struct gathernd_attrs {
    int64_t batch_dims;
} gathernd_attrs;

static onyx_status gathernd_init(onyx_node *n, onyx_error *err) {
    gathernd_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return OOM_INIT(err);
    a->batch_dims = onyx_attr_int(n, "batch_dims", 0);
    if (a->batch_dims < 0 || a->batch_dims > ONYX_MAX_DIMS)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'batch_dims' is invalid");
    n->state = a;
    return ONYX_OK;
}

static onyx_status gathernd_run(const onyx_node *n, onyx_exec *x) {
    const gathernd_attrs *a = n->state;
    const onyx_tensor *data = onyx_exec_input(x, 0), *ind = onyx_exec_input(x, 1);
    if (!data || !ind) return FAIL("missing input");
    int r = data->ndim, q = ind->ndim, b = (int)a->batch_dims;
    if (q < 1 || b >= q || b >= r) return FAIL("batch_dims %d too large for ranks %d and %d", b, r, q);
    int64_t m = ind->dims[q - 1];
    if (m < 1 || m > r - b) return FAIL("index tuples of length %lld for data rank %d", (long long)m, r);
    for (int k = 0; k < b; k++)
        if (ind->dims[k] != data->dims[k]) return FAIL("batch dim %d differs between data and indices", k);
    int64_t *idx;
    onyx_status st = load_indices(x, ind, 0, data->dims + b, (int)m, &idx);
    if (st) return st;
    int64_t dims[ONYX_MAX_DIMS + ONYX_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < q - 1; k++) dims[nd++] = ind->dims[k];
    for (int k = b + (int)m; k < r; k++) dims[nd++] = data->dims[k];
    if (nd > ONYX_MAX_DIMS) return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output rank too large");
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, data->dtype, nd, dims, &out);
    if (st) return st;
    int64_t B = onyx_op_prod(data->dims, 0, b);
    int64_t per_batch = B ? onyx_op_prod(ind->dims, b, q - 1) : 0; /* tuples per batch */
    int64_t slice = onyx_op_prod(data->dims, b + (int)m, r);
    int64_t dbatch = onyx_op_prod(data->dims, b, r);
    size_t blk = (size_t)slice * onyx_dtype_size(data->dtype);
    if (blk)
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t t = 0; t < per_batch; t++) {
                const int64_t *tu = idx + (bb * per_batch + t) * m;
                int64_t off = 0;
                for (int64_t k = 0; k < m; k++) off = off * data->dims[b + k] + tu[k];
                memcpy(ELEM(out, (bb * per_batch + t) * slice), CELEM(data, bb * dbatch + off * slice), blk);
            }
    return onyx_op_own_strings(x, out);
}

static onyx_status scatternd_run(const onyx_node *n, onyx_exec *x) {
    const scatter_attrs *a = n->state;
    const onyx_tensor *data = onyx_exec_input(x, 0), *ind = onyx_exec_input(x, 1),
                      *upd = onyx_exec_input(x, 2);
    if (!data || !ind || !upd) return FAIL("missing input");
    int r = data->ndim, q = ind->ndim;
    if (q < 1) return FAIL("indices must have rank >= 1");
    int64_t m = ind->dims[q - 1];
    if (m < 0 || m > r) return FAIL("index tuples of length %lld for data rank %d", (long long)m, r);
    /* updates: indices.shape[:-1] + data.shape[m:] */
    if (upd->dtype != data->dtype || upd->ndim != q - 1 + r - (int)m)
        return FAIL("updates has the wrong rank or type");
    for (int k = 0; k < q - 1; k++)
        if (upd->dims[k] != ind->dims[k]) return FAIL("updates dim %d differs from indices", k);
    for (int k = (int)m; k < r; k++)
        if (upd->dims[q - 1 + k - m] != data->dims[k]) return FAIL("updates dim differs from data");
    int64_t *idx = NULL;
    onyx_status st = m ? load_indices(x, ind, 0, data->dims, (int)m, &idx) : ONYX_OK;
    if (st) return st;
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, data->dtype, r, data->dims, &out);
    if (st) return st;
    size_t nb = onyx_tensor_nbytes(data);
    if (nb) memcpy(out->data, data->data, nb);
    st = onyx_op_own_strings(x, out);
    if (st) return st;
    int64_t tuples = onyx_op_prod(ind->dims, 0, q - 1), slice = onyx_op_prod(data->dims, (int)m, r);
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        for (int64_t k = 0; k < m; k++) off = off * data->dims[k] + idx[t * m + k];
        for (int64_t e = 0; e < slice; e++) {
            st = scatter_put(x, out, off * slice + e, upd, t * slice + e, a->op);
            if (st) return st;
        }
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define ANY ONYX_T_ALL
#define ROW(op, v, mi, xi, mo, xo, types, init, run) {"", op, v, mi, xi, mo, xo, types, init, run}

const onyx_op_schema onyx_ops_gather[] = {
    {"", "Gather", 1, 2, 2, 1, 1, ANY, onyx_op_axis_init0, gather_run, ONYX_OP_BYTEWISE_IN0},
    {"", "Gather", 11, 2, 2, 1, 1, ANY, onyx_op_axis_init0, gather_run, ONYX_OP_BYTEWISE_IN0},
    {"", "Gather", 13, 2, 2, 1, 1, ANY, onyx_op_axis_init0, gather_run, ONYX_OP_BYTEWISE_IN0},
    ROW("GatherElements", 11, 2, 2, 1, 1, ANY, onyx_op_axis_init0, gather_elements_run),
    ROW("GatherElements", 13, 2, 2, 1, 1, ANY, onyx_op_axis_init0, gather_elements_run),
    ROW("GatherND", 11, 2, 2, 1, 1, ANY, gathernd_init, gathernd_run),
    ROW("GatherND", 12, 2, 2, 1, 1, ANY, gathernd_init, gathernd_run),
    ROW("GatherND", 13, 2, 2, 1, 1, ANY, gathernd_init, gathernd_run),
    ROW("Scatter", 9, 3, 3, 1, 1, ANY, scatter_init, scatter_elements_run),
    ROW("ScatterElements", 11, 3, 3, 1, 1, ANY, scatter_init, scatter_elements_run),
    ROW("ScatterElements", 13, 3, 3, 1, 1, ANY, scatter_init, scatter_elements_run),
    ROW("ScatterElements", 16, 3, 3, 1, 1, ANY, scatter_init, scatter_elements_run),
    ROW("ScatterElements", 18, 3, 3, 1, 1, ANY, scatter_init, scatter_elements_run),
    ROW("ScatterND", 11, 3, 3, 1, 1, ANY, scatter_init, scatternd_run),
    ROW("ScatterND", 13, 3, 3, 1, 1, ANY, scatter_init, scatternd_run),
    ROW("ScatterND", 16, 3, 3, 1, 1, ANY, scatter_init, scatternd_run),
    ROW("ScatterND", 18, 3, 3, 1, 1, ANY, scatter_init, scatternd_run),
    {0},
};
