/* shape.c - shape and layout operators: Shape, Size, Reshape, Flatten,
 * Squeeze, Unsqueeze, Expand, Transpose, Identity, Dropout, DepthToSpace,
 * SpaceToDepth. Data moves by element size, so one path serves every dtype;
 * STRING outputs receive their own copies of the strings.
 * Does not own: Concat/Slice/Pad and friends (tensor.c), gathers (gather.c). */
#include "core/op.h"
#include "ops/rng.h"
#include "ops/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

#define MAXD ONYX_OP_STRIDED_MAX_DIMS

/* out = in transposed by perm (out axis k is in axis perm[k]). */
static void permute(onyx_exec *x, void *dst, const void *src, size_t es, int ndim,
                    const int64_t *idims, const int *perm) {
    int64_t istr[MAXD], odims[MAXD], ostr[MAXD];
    int64_t s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        istr[k] = s;
        s *= idims[k];
    }
    for (int k = 0; k < ndim; k++) {
        odims[k] = idims[perm[k]];
        ostr[k] = istr[perm[k]];
    }
    onyx_op_strided_copy(x, dst, src, es, ndim, odims, ostr);
}

/* ---------------------------------------------------------------------- */
/* Shape, Size                                                             */

typedef struct shape_attrs {
    int64_t start, end;
    bool has_end;
} shape_attrs;

static onyx_status shape_init(onyx_node *n, onyx_error *err) {
    shape_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->start = onyx_attr_int(n, "start", 0);
    a->has_end = onyx_attr_find(n, "end") != NULL;
    a->end = onyx_attr_int(n, "end", 0);
    n->state = a;
    return ONYX_OK;
}

static int64_t clamp_dim_index(int64_t v, int rank) {
    if (v < 0) v += rank;
    if (v < 0) v = 0;
    if (v > rank) v = rank;
    return v;
}

static onyx_status shape_run(const onyx_node *n, onyx_exec *x) {
    const shape_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input is not a tensor");
    int64_t start = 0, end = in->ndim;
    if (a) {
        start = clamp_dim_index(a->start, in->ndim);
        if (a->has_end) end = clamp_dim_index(a->end, in->ndim);
    }
    int64_t len = end > start ? end - start : 0;
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_INT64, 1, &len, &out);
    if (st) return st;
    int64_t *o = out->data;
    for (int64_t i = 0; i < len; i++) o[i] = in->dims[start + i];
    return ONYX_OK;
}

static onyx_status size_run(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input is not a tensor");
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_INT64, 0, NULL, &out);
    if (st) return st;
    *(int64_t *)out->data = onyx_tensor_count(in);
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Reshape, Flatten                                                        */

typedef struct reshape_attrs {
    const int64_t *shape; /* opset 1-4: the shape attribute */
    int64_t n_shape;
    bool allowzero;
} reshape_attrs;

static onyx_status reshape_init(onyx_node *n, onyx_error *err) {
    reshape_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->n_shape = -1;
    if (n->opset < 5) {
        a->n_shape = onyx_attr_ints(n, "shape", &a->shape);
        if (a->n_shape < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'shape' is required");
        if (a->n_shape > ONYX_MAX_DIMS)
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "attribute 'shape' has more than %d dims",
                               ONYX_MAX_DIMS);
    }
    a->allowzero = onyx_attr_int(n, "allowzero", 0) != 0;
    n->state = a;
    return ONYX_OK;
}

static onyx_status reshape_run(const onyx_node *n, onyx_exec *x) {
    const reshape_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    const onyx_tensor *sh = a->n_shape >= 0 ? NULL : onyx_exec_input(x, 1);
    if (!in || (a->n_shape < 0 && !sh))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing data or shape input");
    int64_t nd = sh ? onyx_tensor_count(sh) : a->n_shape;
    if (sh && sh->ndim != 1)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "shape must be 1-D");
    if (nd > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "shape has %lld dims (max %d)", (long long)nd,
                              ONYX_MAX_DIMS);
    int64_t dims[ONYX_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        int64_t d = sh ? onyx_tensor_get_i64(sh, i) : a->shape[i];
        if (d == 0 && !a->allowzero) {
            if (i >= in->ndim)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "shape[%d] = 0 copies a dim the input lacks", i);
            d = in->dims[i];
        }
        if (d == -1) {
            if (infer >= 0)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "shape has more than one -1");
            infer = i;
            d = 1;
        } else if (d < 0) {
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "shape[%d] = %lld is invalid", i,
                                  (long long)d);
        }
        dims[i] = d;
        if (d && known > INT64_MAX / d)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "shape overflows");
        known *= d;
    }
    int64_t count = onyx_tensor_count(in);
    if (infer >= 0) {
        if (known == 0 || count % known)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "cannot infer -1: %lld elements into blocks of %lld",
                                  (long long)count, (long long)known);
        dims[infer] = count / known;
        known = count;
    }
    if (known != count)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "cannot reshape %lld elements into %lld", (long long)count,
                              (long long)known);
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, (int)nd, dims, &out);
    if (st) return st;
    return onyx_op_copy_through(x, out, in);
}

static onyx_status flatten_run(const onyx_node *n, onyx_exec *x) {
    const onyx_op_axis *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    int64_t axis = a->axis;
    if (axis < 0) axis += in->ndim;
    if (axis < 0 || axis > in->ndim)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                              (long long)a->axis, in->ndim);
    int64_t dims[2] = {1, 1};
    for (int k = 0; k < in->ndim; k++) dims[k < axis ? 0 : 1] *= in->dims[k];
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, 2, dims, &out);
    if (st) return st;
    return onyx_op_copy_through(x, out, in);
}

/* ---------------------------------------------------------------------- */
/* Squeeze, Unsqueeze                                                      */

typedef struct axes_attr {
    const int64_t *axes;
    int64_t n_axes; /* -1: absent */
} axes_attr;

static onyx_status axes_init(onyx_node *n, onyx_error *err) {
    axes_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->n_axes = onyx_attr_ints(n, "axes", &a->axes);
    n->state = a;
    return ONYX_OK;
}

static onyx_status squeeze_run(const onyx_node *n, onyx_exec *x) {
    const axes_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    const onyx_tensor *ax = n->opset >= 13 ? onyx_exec_input(x, 1) : NULL;
    bool drop[ONYX_MAX_DIMS] = {false};
    if (ax || (n->opset < 13 && a->n_axes >= 0)) {
        int axes[ONYX_MAX_DIMS], na;
        onyx_status st = onyx_op_read_axes(x, a->axes, a->n_axes, ax, in->ndim, axes, &na);
        if (st) return st;
        for (int i = 0; i < na; i++) {
            if (in->dims[axes[i]] != 1)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "cannot squeeze axis %d of size %lld", axes[i],
                                      (long long)in->dims[axes[i]]);
            drop[axes[i]] = true;
        }
    } else {
        for (int k = 0; k < in->ndim; k++) drop[k] = in->dims[k] == 1;
    }
    int64_t dims[ONYX_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < in->ndim; k++)
        if (!drop[k]) dims[nd++] = in->dims[k];
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, nd, dims, &out);
    if (st) return st;
    return onyx_op_copy_through(x, out, in);
}

static onyx_status unsqueeze_run(const onyx_node *n, onyx_exec *x) {
    const axes_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    const onyx_tensor *ax = NULL;
    if (n->opset >= 13) {
        ax = onyx_exec_input(x, 1);
        if (!ax) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing axes input");
    } else if (a->n_axes < 0) {
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "attribute 'axes' is required");
    }
    int64_t na64 = ax ? onyx_tensor_count(ax) : a->n_axes;
    if (in->ndim + na64 > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output rank %lld exceeds %d",
                              (long long)(in->ndim + na64), ONYX_MAX_DIMS);
    int rank = in->ndim + (int)na64;
    int axes[ONYX_MAX_DIMS], na;
    onyx_status st = onyx_op_read_axes(x, a->axes, a->n_axes, ax, rank, axes, &na);
    if (st) return st;
    bool ins[ONYX_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) ins[axes[i]] = true;
    int64_t dims[ONYX_MAX_DIMS];
    for (int k = 0, j = 0; k < rank; k++) dims[k] = ins[k] ? 1 : in->dims[j++];
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, in->dtype, rank, dims, &out);
    if (st) return st;
    return onyx_op_copy_through(x, out, in);
}

/* ---------------------------------------------------------------------- */
/* Expand                                                                  */

static onyx_status expand_run(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    const onyx_tensor *sh = onyx_exec_input(x, 1);
    if (!in || !sh) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    int64_t want[ONYX_MAX_DIMS], dims[ONYX_MAX_DIMS];
    int ns, nd;
    onyx_status st = onyx_op_read_shape(x, sh, false, want, &ns);
    if (st) return st;
    if (onyx_broadcast_shape(in->ndim, in->dims, ns, want, &nd, dims) != ONYX_OK)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input cannot be broadcast to shape");
    onyx_tensor *out;
    st = onyx_exec_output(x, 0, in->dtype, nd, dims, &out);
    if (st) return st;
    int64_t strides[ONYX_MAX_DIMS];
    onyx_broadcast_strides(in, nd, dims, strides);
    onyx_op_strided_copy(x, out->data, in->data, onyx_dtype_size(in->dtype), nd, dims, strides);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Transpose                                                               */

typedef struct transpose_attrs {
    const int64_t *perm;
    int64_t n_perm; /* -1: reverse the axes */
} transpose_attrs;

static onyx_status transpose_init(onyx_node *n, onyx_error *err) {
    transpose_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->n_perm = onyx_attr_ints(n, "perm", &a->perm);
    if (a->n_perm > ONYX_MAX_DIMS)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "attribute 'perm' longer than %d", ONYX_MAX_DIMS);
    bool seen[ONYX_MAX_DIMS] = {false};
    for (int64_t i = 0; i < a->n_perm; i++) {
        int64_t p = a->perm[i];
        if (p < 0 || p >= a->n_perm || seen[p])
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'perm' is not a permutation");
        seen[p] = true;
    }
    n->state = a;
    return ONYX_OK;
}

static onyx_status transpose_run(const onyx_node *n, onyx_exec *x) {
    const transpose_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    int r = in->ndim, perm[ONYX_MAX_DIMS];
    if (a->n_perm >= 0 && a->n_perm != r)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "perm has %lld entries for rank %d",
                              (long long)a->n_perm, r);
    for (int k = 0; k < r; k++) perm[k] = a->n_perm >= 0 ? (int)a->perm[k] : r - 1 - k;
    int64_t dims[ONYX_MAX_DIMS];
    for (int k = 0; k < r; k++) dims[k] = in->dims[perm[k]];
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, dims, &out);
    if (st) return st;
    permute(x, out->data, in->data, onyx_dtype_size(in->dtype), r, in->dims, perm);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Identity                                                                */

static onyx_status identity_run(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_value *v = onyx_exec_input_value(x, 0);
    if (!v) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (v->kind == ONYX_KIND_TENSOR && !v->is_optional) {
        const onyx_tensor *in = &v->tensor;
        onyx_tensor *out;
        onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
        if (st) return st;
        return onyx_op_copy_through(x, out, in);
    }
    onyx_value *out = onyx_exec_output_value(x, 0);
    if (!out) return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "output value unavailable");
    onyx_status st = onyx_value_copy(out, v);
    if (st) return onyx_exec_fail(x, st, "could not copy the input value");
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Dropout                                                                 */

typedef struct dropout_attrs {
    float ratio;     /* opset < 12: the ratio attribute */
    bool training;   /* opset < 7: is_test == 0 */
    bool has_seed;
    uint64_t seed;
} dropout_attrs;

static onyx_status dropout_init(onyx_node *n, onyx_error *err) {
    dropout_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->ratio = onyx_attr_float(n, "ratio", 0.5f);
    /* Before opset 7 the op trained unless is_test was set; inference
     * engines (onnxruntime included) run it as the identity regardless. */
    a->training = false;
    a->has_seed = onyx_attr_find(n, "seed") != NULL;
    a->seed = (uint64_t)onyx_attr_int(n, "seed", 0);
    n->state = a;
    return ONYX_OK;
}


static onyx_status dropout_run(const onyx_node *n, onyx_exec *x) {
    const dropout_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    double ratio = a->ratio;
    bool training = a->training;
    if (n->opset >= 12) {
        const onyx_tensor *r = onyx_exec_input(x, 1), *t = onyx_exec_input(x, 2);
        ratio = r && onyx_tensor_count(r) ? onyx_tensor_get_f64(r, 0) : 0.5;
        training = t && onyx_tensor_count(t) && onyx_tensor_get_i64(t, 0) != 0;
    }
    if (training && !(ratio >= 0 && ratio < 1))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "ratio %g is not in [0, 1)", ratio);
    if (training && ratio == 0) training = false;
    onyx_tensor *out, *mask = NULL;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    if (n->n_out > 1 && onyx_exec_wants_output(x, 1)) {
        st = onyx_exec_output(x, 1, ONYX_DTYPE_BOOL, in->ndim, in->dims, &mask);
        if (st) return st;
    }
    int64_t count = onyx_tensor_count(in);
    if (!training) {
        if (mask && count) memset(mask->data, 1, (size_t)count);
        return onyx_op_copy_through(x, out, in);
    }
    /* Training: keep each element with probability 1 - ratio, scaled by
     * 1 / (1 - ratio). Without a seed attribute the stream starts from 0, so
     * runs are reproducible. */
    onyx_mt19937 *mt = onyx_exec_scratch(x, sizeof *mt);
    if (!mt) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_mt_seed(mt, (uint32_t)(a->has_seed ? a->seed : 0));
    float scale = (float)(1.0 / (1.0 - ratio));
    for (int64_t i = 0; i < count; i++) {
        bool keep = onyx_mt_double(mt) >= ratio;
        if (mask) ((uint8_t *)mask->data)[i] = keep;
        switch (in->dtype) {
        case ONYX_DTYPE_FLOAT: ((float *)out->data)[i] = keep ? ((const float *)in->data)[i] * scale : 0.0f; break;
        case ONYX_DTYPE_DOUBLE:
            ((double *)out->data)[i] = keep ? ((const double *)in->data)[i] * (1.0 / (1.0 - ratio)) : 0.0;
            break;
        default: {
            float f = keep ? (float)onyx_tensor_get_f64(in, i) * scale : 0.0f;
            st = onyx_convert(in->dtype, (char *)out->data + i * (int64_t)onyx_dtype_size(in->dtype),
                              ONYX_DTYPE_FLOAT, &f, 1, false);
            if (st) return onyx_exec_fail(x, st, "cannot convert dropout output");
        }
        }
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* DepthToSpace, SpaceToDepth                                              */

typedef struct block_attrs {
    int64_t blocksize;
    bool crd; /* DepthToSpace mode CRD (column-row-depth) instead of DCR */
} block_attrs;

static onyx_status block_init(onyx_node *n, onyx_error *err) {
    block_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->blocksize = onyx_attr_int(n, "blocksize", 0);
    if (a->blocksize <= 0 || a->blocksize > (1 << 20))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'blocksize' must be positive");
    const char *mode = onyx_attr_string(n, "mode", "DCR");
    if (strcmp(mode, "DCR") == 0) {
        a->crd = false;
    } else if (strcmp(mode, "CRD") == 0) {
        a->crd = true;
    } else {
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'mode' is '%s' (DCR or CRD)", mode);
    }
    n->state = a;
    return ONYX_OK;
}

static onyx_status depth_to_space_run(const onyx_node *n, onyx_exec *x) {
    const block_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in || in->ndim != 4)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be 4-D (N, C, H, W)");
    int64_t b = a->blocksize, N = in->dims[0], C = in->dims[1], H = in->dims[2], W = in->dims[3];
    if (C % (b * b))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "C = %lld not divisible by blocksize^2",
                              (long long)C);
    int64_t Co = C / (b * b);
    int64_t odims[4] = {N, Co, H * b, W * b};
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, 4, odims, &out);
    if (st) return st;
    static const int dcr[6] = {0, 3, 4, 1, 5, 2}, crd[6] = {0, 1, 4, 2, 5, 3};
    int64_t dcr_dims[6] = {N, b, b, Co, H, W}, crd_dims[6] = {N, Co, b, b, H, W};
    permute(x, out->data, in->data, onyx_dtype_size(in->dtype), 6, a->crd ? crd_dims : dcr_dims,
            a->crd ? crd : dcr);
    return onyx_op_own_strings(x, out);
}

static onyx_status space_to_depth_run(const onyx_node *n, onyx_exec *x) {
    const block_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in || in->ndim != 4)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be 4-D (N, C, H, W)");
    int64_t b = a->blocksize, N = in->dims[0], C = in->dims[1], H = in->dims[2], W = in->dims[3];
    if (H % b || W % b)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "H = %lld, W = %lld not divisible by blocksize %lld", (long long)H,
                              (long long)W, (long long)b);
    int64_t odims[4] = {N, C * b * b, H / b, W / b};
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, 4, odims, &out);
    if (st) return st;
    static const int perm[6] = {0, 3, 5, 1, 2, 4};
    int64_t idims[6] = {N, C, H / b, b, W / b, b};
    permute(x, out->data, in->data, onyx_dtype_size(in->dtype), 6, idims, perm);
    return onyx_op_own_strings(x, out);
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define ANY ONYX_T_ALL
#define FLOATS ONYX_T_FLOATS
#define ROW(op, v, mi, xi, mo, xo, types, init, run) {"", op, v, mi, xi, mo, xo, types, init, run}

const onyx_op_schema onyx_ops_shape[] = {
    ROW("Shape", 1, 1, 1, 1, 1, ANY, NULL, shape_run),
    ROW("Shape", 13, 1, 1, 1, 1, ANY, NULL, shape_run),
    ROW("Shape", 15, 1, 1, 1, 1, ANY, shape_init, shape_run),
    ROW("Shape", 19, 1, 1, 1, 1, ANY, shape_init, shape_run),
    ROW("Shape", 21, 1, 1, 1, 1, ANY, shape_init, shape_run),
    ROW("Shape", 23, 1, 1, 1, 1, ANY, shape_init, shape_run),
    ROW("Shape", 24, 1, 1, 1, 1, ANY, shape_init, shape_run),
    ROW("Size", 1, 1, 1, 1, 1, ANY, NULL, size_run),
    ROW("Size", 13, 1, 1, 1, 1, ANY, NULL, size_run),
    ROW("Size", 19, 1, 1, 1, 1, ANY, NULL, size_run),
    ROW("Size", 21, 1, 1, 1, 1, ANY, NULL, size_run),
    ROW("Size", 23, 1, 1, 1, 1, ANY, NULL, size_run),
    ROW("Size", 24, 1, 1, 1, 1, ANY, NULL, size_run),
    ROW("Reshape", 1, 1, 1, 1, 1, FLOATS, reshape_init, reshape_run),
    ROW("Reshape", 5, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Reshape", 13, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Reshape", 14, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Reshape", 19, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Reshape", 21, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Reshape", 23, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Reshape", 24, 2, 2, 1, 1, ANY, reshape_init, reshape_run),
    ROW("Flatten", 1, 1, 1, 1, 1, FLOATS, onyx_op_axis_init1, flatten_run),
    ROW("Flatten", 9, 1, 1, 1, 1, ANY, onyx_op_axis_init1, flatten_run),
    ROW("Flatten", 11, 1, 1, 1, 1, ANY, onyx_op_axis_init1, flatten_run),
    ROW("Flatten", 13, 1, 1, 1, 1, ANY, onyx_op_axis_init1, flatten_run),
    ROW("Flatten", 21, 1, 1, 1, 1, ANY, onyx_op_axis_init1, flatten_run),
    ROW("Flatten", 23, 1, 1, 1, 1, ANY, onyx_op_axis_init1, flatten_run),
    ROW("Flatten", 24, 1, 1, 1, 1, ANY, onyx_op_axis_init1, flatten_run),
    ROW("Squeeze", 1, 1, 1, 1, 1, ANY, axes_init, squeeze_run),
    ROW("Squeeze", 11, 1, 1, 1, 1, ANY, axes_init, squeeze_run),
    ROW("Squeeze", 13, 1, 2, 1, 1, ANY, axes_init, squeeze_run),
    ROW("Squeeze", 21, 1, 2, 1, 1, ANY, axes_init, squeeze_run),
    ROW("Squeeze", 23, 1, 2, 1, 1, ANY, axes_init, squeeze_run),
    ROW("Squeeze", 24, 1, 2, 1, 1, ANY, axes_init, squeeze_run),
    ROW("Unsqueeze", 1, 1, 1, 1, 1, ANY, axes_init, unsqueeze_run),
    ROW("Unsqueeze", 11, 1, 1, 1, 1, ANY, axes_init, unsqueeze_run),
    ROW("Unsqueeze", 13, 2, 2, 1, 1, ANY, axes_init, unsqueeze_run),
    ROW("Unsqueeze", 21, 2, 2, 1, 1, ANY, axes_init, unsqueeze_run),
    ROW("Unsqueeze", 23, 2, 2, 1, 1, ANY, axes_init, unsqueeze_run),
    ROW("Unsqueeze", 24, 2, 2, 1, 1, ANY, axes_init, unsqueeze_run),
    ROW("Expand", 8, 2, 2, 1, 1, ANY, NULL, expand_run),
    ROW("Expand", 13, 2, 2, 1, 1, ANY, NULL, expand_run),
    ROW("Transpose", 1, 1, 1, 1, 1, ANY, transpose_init, transpose_run),
    ROW("Transpose", 13, 1, 1, 1, 1, ANY, transpose_init, transpose_run),
    ROW("Transpose", 21, 1, 1, 1, 1, ANY, transpose_init, transpose_run),
    ROW("Transpose", 23, 1, 1, 1, 1, ANY, transpose_init, transpose_run),
    ROW("Transpose", 24, 1, 1, 1, 1, ANY, transpose_init, transpose_run),
    /* Identity also passes sequences and optionals: input types unchecked. */
    ROW("Identity", 1, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 13, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 14, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 16, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 19, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 21, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 23, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Identity", 24, 1, 1, 1, 1, 0, NULL, identity_run),
    ROW("Dropout", 1, 1, 1, 1, 2, FLOATS, dropout_init, dropout_run),
    ROW("Dropout", 6, 1, 1, 1, 2, FLOATS, dropout_init, dropout_run),
    ROW("Dropout", 7, 1, 1, 1, 2, FLOATS, dropout_init, dropout_run),
    ROW("Dropout", 10, 1, 1, 1, 2, FLOATS, dropout_init, dropout_run),
    ROW("Dropout", 12, 1, 3, 1, 2, FLOATS, dropout_init, dropout_run),
    ROW("Dropout", 13, 1, 3, 1, 2, FLOATS, dropout_init, dropout_run),
    ROW("Dropout", 22, 1, 3, 1, 2, ONYX_T_FLOATS | ONYX_T(ONYX_DTYPE_FLOAT8E4M3FN) |
                                         ONYX_T(ONYX_DTYPE_FLOAT8E4M3FNUZ) |
                                         ONYX_T(ONYX_DTYPE_FLOAT8E5M2) |
                                         ONYX_T(ONYX_DTYPE_FLOAT8E5M2FNUZ),
        dropout_init, dropout_run),
    ROW("DepthToSpace", 1, 1, 1, 1, 1, ANY, block_init, depth_to_space_run),
    ROW("DepthToSpace", 11, 1, 1, 1, 1, ANY, block_init, depth_to_space_run),
    ROW("DepthToSpace", 13, 1, 1, 1, 1, ANY, block_init, depth_to_space_run),
    ROW("SpaceToDepth", 1, 1, 1, 1, 1, ANY, block_init, space_to_depth_run),
    ROW("SpaceToDepth", 13, 1, 1, 1, 1, ANY, block_init, space_to_depth_run),
    {0},
};
