/* util.c - helpers shared by the operator families (declared in util.h):
 * axes, shapes and attribute lookups, STRING ownership, the strided copy
 * engine, value outputs.
 * Does not own any operator. */
#include "ops/util.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Shapes and axes

int64_t onyx_op_prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int k = from; k < to; k++) p *= d[k];
    return p;
}

bool onyx_op_norm_axis(int64_t a, int rank, int *out) {
    if (a < -(int64_t)rank || a >= rank) return false;
    *out = (int)(a < 0 ? a + rank : a);
    return true;
}

onyx_status onyx_op_read_axes(onyx_exec *x, const int64_t *attr, int64_t n_attr,
                              const onyx_tensor *in, int rank, int *axes, int *n) {
    int64_t cnt = in ? onyx_tensor_count(in) : n_attr;
    if (cnt > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "too many axes (%lld)", (long long)cnt);
    bool seen[ONYX_MAX_DIMS] = {false};
    for (int64_t i = 0; i < cnt; i++) {
        int64_t a = in ? onyx_tensor_get_i64(in, i) : attr[i];
        int ax;
        if (!onyx_op_norm_axis(a, rank, &ax))
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                                  (long long)a, rank);
        if (seen[ax])
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld repeated", (long long)a);
        seen[ax] = true;
        axes[i] = ax;
    }
    *n = (int)cnt;
    return ONYX_OK;
}

onyx_status onyx_op_read_shape(onyx_exec *x, const onyx_tensor *sh, bool scalar_ok, int64_t *dims,
                               int *n) {
    int64_t cnt = onyx_tensor_count(sh);
    if (sh->ndim > 1 || (sh->ndim == 0 && !scalar_ok) || cnt > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "shape must be 1-D with at most %d dims", ONYX_MAX_DIMS);
    for (int i = 0; i < cnt; i++) {
        dims[i] = onyx_tensor_get_i64(sh, i);
        if (dims[i] < 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "shape[%d] = %lld is negative", i,
                                  (long long)dims[i]);
    }
    *n = (int)cnt;
    return ONYX_OK;
}

int onyx_op_lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static onyx_status axis_init(onyx_node *n, onyx_error *err, int64_t def) {
    onyx_op_axis *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->has_axis = onyx_attr_find(n, "axis") != NULL;
    a->axis = onyx_attr_int(n, "axis", def);
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_op_axis_init0(onyx_node *n, onyx_error *err) { return axis_init(n, err, 0); }
onyx_status onyx_op_axis_init1(onyx_node *n, onyx_error *err) { return axis_init(n, err, 1); }

// ----------------------------------------------------------------------------
// Element moves

onyx_status onyx_op_own_strings(onyx_exec *x, onyx_tensor *t) {
    if (t->dtype != ONYX_DTYPE_STRING) return ONYX_OK;
    int64_t n = onyx_tensor_count(t);
    char **s = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i]) continue;
        char *c = strdup(s[i]);
        if (!c) {
            for (int64_t j = i; j < n; j++) s[j] = NULL;
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory copying strings");
        }
        s[i] = c;
    }
    return ONYX_OK;
}

bool onyx_op_copy_elems(void *dst, const void *src, int64_t n, onyx_dtype dt) {
    if (n <= 0) return true;
    if (dt != ONYX_DTYPE_STRING) {
        memcpy(dst, src, (size_t)n * onyx_dtype_size(dt));
        return true;
    }
    char **d = dst;
    char *const *s = src;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i]) continue;
        if (!(d[i] = strdup(s[i]))) return false;
    }
    return true;
}

onyx_status onyx_op_copy_data(onyx_exec *x, onyx_tensor *dst, const onyx_tensor *src) {
    if (!onyx_op_copy_elems(dst->data, src->data, onyx_tensor_count(src), src->dtype))
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory copying strings");
    return ONYX_OK;
}

onyx_status onyx_op_copy_through(onyx_exec *x, onyx_tensor *out, const onyx_tensor *in) {
    if (in->dtype != ONYX_DTYPE_STRING) {
        onyx_exec_place_input(x, 0, 0, 0);
        if (out->data == in->data) return ONYX_OK;
    }
    return onyx_op_copy_data(x, out, in);
}

// ----------------------------------------------------------------------------
// Strided copy

#define MAXD ONYX_OP_STRIDED_MAX_DIMS

typedef struct strided_job {
    char *dst;
    const char *src;
    int64_t es;             /* element size in bytes (signed: strides may be negative) */
    int ndim;               /* >= 1 after simplification */
    int64_t dims[MAXD];     /* output dims */
    int64_t strides[MAXD];  /* input element stride per output axis */
} strided_job;

#define COPY_LINE(T)                                                                    \
    do {                                                                                \
        T *o = (T *)(void *)d;                                                          \
        const T *p = (const T *)(const void *)s;                                        \
        for (int64_t i = 0; i < n; i++) o[i] = p[i * st];                               \
    } while (0)

/* Copies n elements with input stride `st` (in elements, any sign) to
 * contiguous d. Offsets stay signed: a negative stride walks backwards. */
static void copy_line(char *d, const char *s, int64_t n, int64_t st, int64_t es) {
    if (st == 1) {
        memcpy(d, s, (size_t)(n * es));
        return;
    }
    switch (es) {
    case 1: COPY_LINE(uint8_t); break;
    case 2: COPY_LINE(uint16_t); break;
    case 4: COPY_LINE(uint32_t); break;
    case 8: COPY_LINE(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + i * es, s + i * st * es, (size_t)es);
    }
}

/* Rows [begin, end) of the output, a row being the last output axis. */
static void strided_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const strided_job *j = ctx;
    int nd = j->ndim;
    int64_t inner = j->dims[nd - 1], ist = j->strides[nd - 1];
    int64_t idx[MAXD] = {0};
    int64_t r = begin, off = 0;
    for (int k = nd - 2; k >= 0; k--) {
        idx[k] = r % j->dims[k];
        r /= j->dims[k];
        off += idx[k] * j->strides[k];
    }
    for (int64_t row = begin; row < end; row++) {
        copy_line(j->dst + row * inner * j->es, j->src + off * j->es, inner, ist, j->es);
        for (int k = nd - 2; k >= 0; k--) {
            off += j->strides[k];
            if (++idx[k] < j->dims[k]) break;
            off -= idx[k] * j->strides[k];
            idx[k] = 0;
        }
    }
}

/* Batched 2-D transpose: out (B, P, Q) from in (B, Q, P), in square tiles so
 * both sides stay in cache (NCHW <-> NHWC lands here). */
#define TILE 32

typedef struct tile_job {
    char *dst;
    const char *src;
    size_t es;
    int64_t B, P, Q; /* output is (B, P, Q) */
    int64_t ptiles;  /* ceil(P / TILE) */
} tile_job;

#define TRANSPOSE_TILE(T)                                                               \
    do {                                                                                \
        T *o = (T *)(void *)ob;                                                         \
        const T *s = (const T *)(const void *)ib;                                       \
        for (int64_t q0 = 0; q0 < Q; q0 += TILE) {                                      \
            int64_t q1 = q0 + TILE < Q ? q0 + TILE : Q;                                 \
            for (int64_t p = p0; p < p1; p++)                                           \
                for (int64_t q = q0; q < q1; q++) o[p * Q + q] = s[q * P + p];          \
        }                                                                               \
    } while (0)

static void tile_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const tile_job *j = ctx;
    int64_t P = j->P, Q = j->Q;
    for (int64_t t = begin; t < end; t++) {
        int64_t b = t / j->ptiles, p0 = (t % j->ptiles) * TILE;
        int64_t p1 = p0 + TILE < P ? p0 + TILE : P;
        char *ob = j->dst + (size_t)(b * P * Q) * j->es;
        const char *ib = j->src + (size_t)(b * P * Q) * j->es;
        switch (j->es) {
        case 1: TRANSPOSE_TILE(uint8_t); break;
        case 2: TRANSPOSE_TILE(uint16_t); break;
        case 4: TRANSPOSE_TILE(uint32_t); break;
        case 8: TRANSPOSE_TILE(uint64_t); break;
        default:
            for (int64_t p = p0; p < p1; p++)
                for (int64_t q = 0; q < Q; q++)
                    memcpy(ob + (size_t)(p * Q + q) * j->es, ib + (size_t)(q * P + p) * j->es,
                           j->es);
        }
    }
}

void onyx_op_strided_copy(onyx_exec *x, void *dst, const void *src, size_t es, int ndim,
                          const int64_t *dims, const int64_t *strides) {
    ONYX_ASSERT(ndim <= MAXD);
    strided_job j = {.dst = dst, .src = src, .es = (int64_t)es, .ndim = 0};
    int64_t count = onyx_op_prod(dims, 0, ndim);
    if (count == 0) return;
    for (int k = 0; k < ndim; k++) {
        if (dims[k] == 1) continue;
        if (j.ndim > 0 && j.strides[j.ndim - 1] == strides[k] * dims[k]) {
            j.dims[j.ndim - 1] *= dims[k];
            j.strides[j.ndim - 1] = strides[k];
            continue;
        }
        j.dims[j.ndim] = dims[k];
        j.strides[j.ndim] = strides[k];
        j.ndim++;
    }
    if (j.ndim == 0) {
        memcpy(dst, src, es);
        return;
    }
    int nd = j.ndim;
    /* A transpose of the last two axes, optionally batched over a third. */
    if (nd >= 2 && j.strides[nd - 2] == 1 && j.strides[nd - 1] == j.dims[nd - 2] &&
        (nd == 2 || (nd == 3 && j.strides[0] == j.dims[1] * j.dims[2])) && j.dims[nd - 2] >= 4 &&
        j.dims[nd - 1] >= 4) {
        tile_job t = {.dst = dst, .src = src, .es = es};
        t.B = nd == 3 ? j.dims[0] : 1;
        t.P = j.dims[nd - 2];
        t.Q = j.dims[nd - 1];
        t.ptiles = (t.P + TILE - 1) / TILE;
        onyx_exec_parallel(x, t.B * t.ptiles, 1, tile_rows, &t);
        return;
    }
    int64_t rows = count / j.dims[nd - 1];
    int64_t grain = j.dims[nd - 1] >= 4096 ? 1 : 4096 / j.dims[nd - 1];
    onyx_exec_parallel(x, rows, grain, strided_rows, &j);
}

// ----------------------------------------------------------------------------
// Values

onyx_status onyx_op_put_value(onyx_exec *x, int i, onyx_value *v) {
    if (!onyx_exec_wants_output(x, i)) {
        onyx_value_clear(v);
        return ONYX_OK;
    }
    onyx_value *o = onyx_exec_output_value(x, i);
    if (!o) {
        onyx_value_clear(v);
        return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "output index %d out of range", i);
    }
    onyx_status st = onyx_value_take(o, v);
    if (st) return onyx_exec_fail(x, st, "out of memory moving output %d", i);
    return ONYX_OK;
}

onyx_value *onyx_op_values_new(int n) { return calloc((size_t)n + 1, sizeof(onyx_value)); }

void onyx_op_values_free(onyx_value *values, int n) {
    if (!values) return;
    for (int i = 0; i < n; i++) onyx_value_clear(&values[i]);
    free(values);
}
