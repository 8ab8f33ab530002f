/* quant.c - linear quantization operators: QuantizeLinear, DequantizeLinear
 * (per-tensor, per-axis and blocked; 8/16/4-bit integers, float8, float4),
 * DynamicQuantizeLinear, and the requantizing integer kernels QLinearMatMul
 * and QLinearConv (int32 accumulation, then rounding to the output scale).
 * Does not own: MatMulInteger (matmul.c), ConvInteger and float convolution
 * (conv.c). */
#include "core/op.h"
#include "ops/util.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

enum { BLK = 256 };       /* elements converted per block in generic paths */
enum { GRAIN = 1 << 14 }; /* elements per parallel task */

static bool is_f8(onyx_dtype t) {
    return t == ONYX_DTYPE_FLOAT8E4M3FN || t == ONYX_DTYPE_FLOAT8E4M3FNUZ ||
           t == ONYX_DTYPE_FLOAT8E5M2 || t == ONYX_DTYPE_FLOAT8E5M2FNUZ;
}

/* Saturation range of an integer quantized type; false for the others. */
static bool int_range(onyx_dtype t, double *lo, double *hi) {
    switch (t) {
    case ONYX_DTYPE_UINT8:
        *lo = 0, *hi = 255;
        return true;
    case ONYX_DTYPE_INT8:
        *lo = -128, *hi = 127;
        return true;
    case ONYX_DTYPE_UINT16:
        *lo = 0, *hi = 65535;
        return true;
    case ONYX_DTYPE_INT16:
        *lo = -32768, *hi = 32767;
        return true;
    case ONYX_DTYPE_UINT4:
        *lo = 0, *hi = 15;
        return true;
    case ONYX_DTYPE_INT4:
        *lo = -8, *hi = 7;
        return true;
    case ONYX_DTYPE_INT32:
        *lo = -2147483648.0, *hi = 2147483647.0;
        return true;
    default:
        return false;
    }
}

/* Rounds v half to even, adds the zero point, saturates to [lo, hi]; NaN
 * gives lo. The rounding comes first: ties depend on the integer part. */
static inline double round_sat(double v, double zp, double lo, double hi) {
    v = nearbyint(v) + zp;
    if (!(v >= lo)) return lo;
    return v > hi ? hi : v;
}

/* Rounds a float to the precision of `t` (FLOAT16/BFLOAT16), else unchanged. */
static inline float round_to(onyx_dtype t, float v) {
    if (t == ONYX_DTYPE_FLOAT16) return onyx_f16_to_f32(onyx_f32_to_f16(v));
    if (t == ONYX_DTYPE_BFLOAT16) return onyx_bf16_to_f32(onyx_f32_to_bf16(v));
    return v;
}

/* A tensor's elements converted to `to` in scratch (borrowed if already of
 * that type); NULL with the failure recorded. */
static void *converted(onyx_exec *x, const onyx_tensor *t, onyx_dtype to) {
    if (t->dtype == to) return t->data;
    int64_t n = onyx_tensor_count(t);
    size_t bytes = onyx_dtype_bytes(to, n);
    void *buf = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes + 1);
    if (!buf) {
        onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    onyx_status st = onyx_convert(to, buf, t->dtype, t->data, n, false);
    if (st) {
        onyx_exec_fail(x, st, "cannot convert %s to %s", onyx_dtype_name(t->dtype),
                       onyx_dtype_name(to));
        return NULL;
    }
    return buf;
}

/* Fails unless t is a single element (a scalar or a 1-element tensor). */
static onyx_status need_scalar(onyx_exec *x, const onyx_tensor *t, const char *what) {
    if (t && onyx_tensor_count(t) != 1)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "%s must be a scalar, got %lld elements", what,
                              (long long)onyx_tensor_count(t));
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Quantization granularity                                                */

typedef enum qmode { Q_TENSOR, Q_AXIS, Q_BLOCK } qmode;

/* x viewed as (outer, Da, inner) around the quantization axis. Scale index of
 * element (o, a, i): Q_TENSOR 0; Q_AXIS a; Q_BLOCK (o*nb + a/bs)*inner + i. */
typedef struct qlayout {
    qmode mode;
    int64_t Da, inner, nb, bs;
} qlayout;

static onyx_status qlayout_make(onyx_exec *x, const onyx_tensor *in, const onyx_tensor *scale,
                                const onyx_tensor *zp, int64_t axis_attr, int64_t block,
                                qlayout *q) {
    memset(q, 0, sizeof *q);
    q->Da = 1, q->inner = onyx_tensor_count(in), q->bs = 1, q->nb = 1;
    if (zp && onyx_tensor_count(zp) != onyx_tensor_count(scale))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "zero point and scale have different shapes");
    if (onyx_tensor_count(scale) == 1 && block <= 0) return ONYX_OK;
    int axis;
    if (!onyx_op_norm_axis(axis_attr, in->ndim, &axis))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                              (long long)axis_attr, in->ndim);
    q->Da = in->dims[axis];
    q->inner = onyx_dims_count(in->ndim - axis - 1, in->dims + axis + 1);
    if (block <= 0) {
        if (scale->ndim != 1 || scale->dims[0] != q->Da)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "scale must be a scalar or 1-D of length %lld (axis %d)",
                                  (long long)q->Da, axis);
        q->mode = Q_AXIS;
        return ONYX_OK;
    }
    q->mode = Q_BLOCK;
    q->bs = block;
    q->nb = (q->Da + block - 1) / block;
    bool ok = scale->ndim == in->ndim;
    for (int i = 0; ok && i < in->ndim; i++)
        ok = scale->dims[i] == (i == axis ? q->nb : in->dims[i]);
    if (!ok)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "blocked scale must match the input shape with dim %d = %lld", axis,
                              (long long)q->nb);
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* QuantizeLinear / DequantizeLinear element loops                         */

typedef struct qjob {
    qlayout l;
    const void *x;
    onyx_dtype xdt;
    void *y;
    onyx_dtype ydt;
    const float *scale; /* scales as float (exact for every scale type) */
    const double *zp;   /* zero points as double, NULL: 0 */
    onyx_dtype prec;    /* Quantize: the division's precision */
    bool saturate;
    bool dequant;
} qjob;

/* Quantizes x[e, e+n) with scales s[k*ss] and zero points z[k*ss]. */
static void quant_seg(const qjob *q, int64_t e, int64_t n, const float *s, const double *z,
                      int64_t ss) {
    double lo = 0, hi = 0;
    bool ints = int_range(q->ydt, &lo, &hi);
    if (q->xdt == ONYX_DTYPE_FLOAT && q->prec == ONYX_DTYPE_FLOAT && ss == 0 &&
        (q->ydt == ONYX_DTYPE_UINT8 || q->ydt == ONYX_DTYPE_INT8)) {
        const float *xs = (const float *)q->x + e, sv = s[0];
        const float zv = z ? (float)z[0] : 0.0f, flo = (float)lo, fhi = (float)hi;
        if (q->ydt == ONYX_DTYPE_UINT8) {
            uint8_t *y = (uint8_t *)q->y + e;
            for (int64_t i = 0; i < n; i++) {
                float v = nearbyintf(xs[i] / sv) + zv;
                y[i] = (uint8_t)(!(v >= flo) ? flo : v > fhi ? fhi : v);
            }
        } else {
            int8_t *y = (int8_t *)q->y + e;
            for (int64_t i = 0; i < n; i++) {
                float v = nearbyintf(xs[i] / sv) + zv;
                y[i] = (int8_t)(!(v >= flo) ? flo : v > fhi ? fhi : v);
            }
        }
        return;
    }
    size_t xes = onyx_dtype_size(q->xdt), yes = onyx_dtype_size(q->ydt);
    double xb[BLK], vb[BLK];
    for (int64_t i0 = 0; i0 < n; i0 += BLK) {
        int64_t m = n - i0 < BLK ? n - i0 : BLK;
        onyx_convert(ONYX_DTYPE_DOUBLE, xb, q->xdt, (const char *)q->x + (size_t)(e + i0) * xes, m,
                     false);
        for (int64_t k = 0; k < m; k++) {
            float sv = round_to(q->prec, s[(i0 + k) * ss]);
            float xv = round_to(q->prec, (float)xb[k]);
            float qv = round_to(q->prec, xv / sv);
            double zv = z ? z[(i0 + k) * ss] : 0.0;
            if (ints)
                vb[k] = round_sat((double)qv, zv, lo, hi);
            else if (q->ydt == ONYX_DTYPE_FLOAT4E2M1)
                vb[k] = (double)(qv + (float)zv);
            else
                vb[k] = qv; /* float8: the zero point is not applied */
        }
        onyx_convert(q->ydt, (char *)q->y + (size_t)(e + i0) * yes, ONYX_DTYPE_DOUBLE, vb, m,
                     q->saturate);
    }
}

/* Dequantizes x[e, e+n) with scales s[k*ss] and zero points z[k*ss]. */
static void dequant_seg(const qjob *q, int64_t e, int64_t n, const float *s, const double *z,
                        int64_t ss) {
    if (q->ydt == ONYX_DTYPE_FLOAT && ss == 0 &&
        (q->xdt == ONYX_DTYPE_UINT8 || q->xdt == ONYX_DTYPE_INT8)) {
        const float sv = s[0];
        const int zv = z ? (int)z[0] : 0;
        float *y = (float *)q->y + e;
        if (q->xdt == ONYX_DTYPE_UINT8) {
            const uint8_t *xs = (const uint8_t *)q->x + e;
            for (int64_t i = 0; i < n; i++)
                y[i] = (float)((int)xs[i] - zv) * sv;
        } else {
            const int8_t *xs = (const int8_t *)q->x + e;
            for (int64_t i = 0; i < n; i++)
                y[i] = (float)((int)xs[i] - zv) * sv;
        }
        return;
    }
    size_t xes = onyx_dtype_size(q->xdt), yes = onyx_dtype_size(q->ydt);
    double xb[BLK], vb[BLK];
    for (int64_t i0 = 0; i0 < n; i0 += BLK) {
        int64_t m = n - i0 < BLK ? n - i0 : BLK;
        onyx_convert(ONYX_DTYPE_DOUBLE, xb, q->xdt, (const char *)q->x + (size_t)(e + i0) * xes, m,
                     false);
        for (int64_t k = 0; k < m; k++) {
            double zv = z ? z[(i0 + k) * ss] : 0.0;
            vb[k] = (double)((float)(xb[k] - zv) * s[(i0 + k) * ss]);
        }
        onyx_convert(q->ydt, (char *)q->y + (size_t)(e + i0) * yes, ONYX_DTYPE_DOUBLE, vb, m,
                     false);
    }
}

/* Elements [begin, end), split into runs that share a scale layout row. */
static void qtask(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const qjob *q = ctx;
    const qlayout *l = &q->l;
    int64_t e = begin;
    while (e < end) {
        int64_t row = e / l->inner, i = e % l->inner;
        int64_t n = l->inner - i < end - e ? l->inner - i : end - e;
        int64_t si = 0, ss = 0;
        if (l->mode == Q_AXIS) {
            si = row % l->Da;
        } else if (l->mode == Q_BLOCK) {
            int64_t o = row / l->Da, a = row % l->Da;
            si = (o * l->nb + a / l->bs) * l->inner + i;
            ss = 1;
        }
        const double *z = q->zp ? q->zp + si : NULL;
        if (q->dequant)
            dequant_seg(q, e, n, q->scale + si, z, ss);
        else
            quant_seg(q, e, n, q->scale + si, z, ss);
        e += n;
    }
}

/* ---------------------------------------------------------------------- */
/* QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear               */

typedef struct q_attrs {
    int64_t axis, block;
    onyx_dtype output_dtype; /* 0: from the zero point or scale */
    onyx_dtype precision;    /* 0: the scale's type */
    bool saturate;
} q_attrs;

static onyx_status q_init(onyx_node *n, onyx_error *err) {
    q_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->axis = onyx_attr_int(n, "axis", 1);
    a->block = onyx_attr_int(n, "block_size", 0);
    a->saturate = onyx_attr_int(n, "saturate", 1) != 0;
    int64_t od = onyx_attr_int(n, "output_dtype", 0), pr = onyx_attr_int(n, "precision", 0);
    if (a->block < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'block_size' is negative");
    if (od && !onyx_dtype_is_valid((int32_t)od))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'output_dtype' is %lld",
                           (long long)od);
    if (pr && pr != ONYX_DTYPE_FLOAT && pr != ONYX_DTYPE_FLOAT16 && pr != ONYX_DTYPE_BFLOAT16)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "attribute 'precision' is %lld",
                           (long long)pr);
    a->output_dtype = (onyx_dtype)od;
    a->precision = (onyx_dtype)pr;
    n->state = a;
    return ONYX_OK;
}

/* Zero points as doubles in scratch; NULL when absent (or on failure, with
 * *st set). */
static const double *zp_doubles(onyx_exec *x, const onyx_tensor *zp, onyx_status *st) {
    if (!zp) return NULL;
    const double *z = converted(x, zp, ONYX_DTYPE_DOUBLE);
    if (!z) *st = ONYX_ERR_OUT_OF_MEMORY;
    return z;
}

static onyx_status run_qjob(onyx_exec *x, qjob *q, int64_t count) {
    onyx_exec_parallel(x, count, GRAIN, qtask, q);
    return ONYX_OK;
}

static onyx_status quantize_run(const onyx_node *n, onyx_exec *x) {
    const q_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0), *scale = onyx_exec_input(x, 1),
                      *zp = onyx_exec_input(x, 2);
    if (!in || !scale)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "x and y_scale are required");
    onyx_dtype yt = zp ? zp->dtype : a->output_dtype ? a->output_dtype : ONYX_DTYPE_UINT8;
    if (zp && a->output_dtype && a->output_dtype != zp->dtype)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "output_dtype %s differs from the zero point's type %s",
                              onyx_dtype_name(a->output_dtype), onyx_dtype_name(zp->dtype));
    double lo, hi;
    if ((!int_range(yt, &lo, &hi) || yt == ONYX_DTYPE_INT32) && !is_f8(yt) &&
        yt != ONYX_DTYPE_FLOAT4E2M1)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "quantizing to %s", onyx_dtype_name(yt));
    onyx_dtype xt = in->dtype, st_t = scale->dtype;
    if (xt != ONYX_DTYPE_FLOAT && xt != ONYX_DTYPE_FLOAT16 && xt != ONYX_DTYPE_BFLOAT16 &&
        xt != ONYX_DTYPE_INT32)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "x of type %s", onyx_dtype_name(xt));
    if (st_t != ONYX_DTYPE_FLOAT && st_t != ONYX_DTYPE_FLOAT16 && st_t != ONYX_DTYPE_BFLOAT16 &&
        st_t != ONYX_DTYPE_FLOAT8E8M0)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "y_scale of type %s", onyx_dtype_name(st_t));
    qjob q = {.x = in->data, .xdt = xt, .ydt = yt, .saturate = a->saturate};
    /* The division runs in float32 unless `precision` says otherwise: the
     * specification names y_scale's type, but onnxruntime (the oracle users
     * compare against) divides float16/bfloat16 inputs in float32. */
    q.prec = a->precision ? a->precision : ONYX_DTYPE_FLOAT;
    onyx_status st = qlayout_make(x, in, scale, zp, a->axis, a->block, &q.l);
    if (st) return st;
    if (!(q.scale = converted(x, scale, ONYX_DTYPE_FLOAT))) return ONYX_ERR_OUT_OF_MEMORY;
    q.zp = zp_doubles(x, zp, &st);
    if (st) return st;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, yt, in->ndim, in->dims, &out))) return st;
    q.y = out->data;
    return run_qjob(x, &q, onyx_tensor_count(in));
}

static onyx_status dequantize_run(const onyx_node *n, onyx_exec *x) {
    const q_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0), *scale = onyx_exec_input(x, 1),
                      *zp = onyx_exec_input(x, 2);
    if (!in || !scale)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "x and x_scale are required");
    onyx_dtype xt = in->dtype, st_t = scale->dtype;
    double lo, hi;
    bool xf = is_f8(xt) || xt == ONYX_DTYPE_FLOAT4E2M1;
    if (!int_range(xt, &lo, &hi) && !xf)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "x of type %s", onyx_dtype_name(xt));
    if (zp && zp->dtype != xt)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "x_zero_point is %s but x is %s",
                              onyx_dtype_name(zp->dtype), onyx_dtype_name(xt));
    if (st_t != ONYX_DTYPE_FLOAT && st_t != ONYX_DTYPE_FLOAT16 && st_t != ONYX_DTYPE_BFLOAT16 &&
        st_t != ONYX_DTYPE_FLOAT8E8M0)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "x_scale of type %s", onyx_dtype_name(st_t));
    onyx_dtype yt = a->output_dtype ? a->output_dtype : st_t;
    if (yt != ONYX_DTYPE_FLOAT && yt != ONYX_DTYPE_FLOAT16 && yt != ONYX_DTYPE_BFLOAT16)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "dequantizing to %s", onyx_dtype_name(yt));
    qjob q = {.x = in->data, .xdt = xt, .ydt = yt, .dequant = true};
    onyx_status st = qlayout_make(x, in, scale, zp, a->axis, a->block, &q.l);
    if (st) return st;
    if (!(q.scale = converted(x, scale, ONYX_DTYPE_FLOAT))) return ONYX_ERR_OUT_OF_MEMORY;
    /* float8 and float4 zero points must be zero and are not applied. */
    if (!xf) q.zp = zp_doubles(x, zp, &st);
    if (st) return st;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, yt, in->ndim, in->dims, &out))) return st;
    q.y = out->data;
    return run_qjob(x, &q, onyx_tensor_count(in));
}

typedef struct minmax_job {
    const float *x;
    int64_t n;
    float *lo, *hi; /* (chunks) partial results */
} minmax_job;

static void minmax_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const minmax_job *j = ctx;
    for (int64_t c = begin; c < end; c++) {
        int64_t e0 = c * GRAIN, e1 = e0 + GRAIN < j->n ? e0 + GRAIN : j->n;
        float lo = 0.0f, hi = 0.0f; /* the range always includes 0 */
        for (int64_t i = e0; i < e1; i++) {
            float v = j->x[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        j->lo[c] = lo;
        j->hi[c] = hi;
    }
}

static onyx_status dynamic_quantize_run(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in || in->dtype != ONYX_DTYPE_FLOAT)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "x must be a float tensor");
    int64_t count = onyx_tensor_count(in), chunks = (count + GRAIN - 1) / GRAIN;
    minmax_job mj = {in->data, count, NULL, NULL};
    mj.lo = onyx_exec_scratch(x, (size_t)(2 * chunks + 1) * sizeof(float));
    if (!mj.lo) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    mj.hi = mj.lo + chunks;
    onyx_exec_parallel(x, chunks, 1, minmax_task, &mj);
    float lo = 0.0f, hi = 0.0f;
    for (int64_t c = 0; c < chunks; c++) {
        lo = mj.lo[c] < lo ? mj.lo[c] : lo;
        hi = mj.hi[c] > hi ? mj.hi[c] : hi;
    }
    /* As onnxruntime: scale = (max - min) / 255 (1/255 when max == min),
     * zero point = round(clamp(-min / scale, 0, 255)), all in float32. */
    float scale = (hi == lo ? 1.0f : hi - lo) / 255.0f;
    float zpf = 0.0f - lo / scale;
    zpf = zpf < 0.0f ? 0.0f : zpf > 255.0f ? 255.0f : zpf;
    zpf = nearbyintf(zpf);

    onyx_tensor *y, *ys, *yz;
    onyx_status st;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_UINT8, in->ndim, in->dims, &y)) ||
        (st = onyx_exec_output(x, 1, ONYX_DTYPE_FLOAT, 0, NULL, &ys)) ||
        (st = onyx_exec_output(x, 2, ONYX_DTYPE_UINT8, 0, NULL, &yz)))
        return st;
    *(float *)ys->data = scale;
    *(uint8_t *)yz->data = (uint8_t)zpf;
    double zd = zpf;
    qjob q = {.x = in->data,
              .xdt = ONYX_DTYPE_FLOAT,
              .y = y->data,
              .ydt = ONYX_DTYPE_UINT8,
              .scale = &scale,
              .zp = &zd,
              .prec = ONYX_DTYPE_FLOAT};
    q.l = (qlayout){Q_TENSOR, 1, count, 1, 1};
    return run_qjob(x, &q, count);
}

/* ---------------------------------------------------------------------- */
/* Integer matrix rows shared by QLinearMatMul and the convolutions        */

/* acc (rows, P) += w (rows, K) * col (K, P), with row stride P for acc and
 * col and K for w. Zero weights (common after quantization) are skipped. */
static void int_gemm_rows(int64_t rows, int64_t K, int64_t P, const int32_t *w, const int32_t *col,
                          int32_t *acc) {
    for (int64_t m = 0; m < rows; m++) {
        int32_t *out = acc + m * P;
        const int32_t *wr = w + m * K;
        for (int64_t k = 0; k < K; k++) {
            int32_t wv = wr[k];
            if (!wv) continue;
            const int32_t *cr = col + k * P;
            /* Wrapping int32 accumulation, as the specification allows. */
            for (int64_t p = 0; p < P; p++)
                out[p] = (int32_t)((uint32_t)out[p] + (uint32_t)(wv * cr[p]));
        }
    }
}

/* Writes a requantized row: y[p] = saturate(round(acc[p] * mult[p*ms]) + zp). */
static void requant_row(onyx_dtype yt, void *y, int64_t off, const int32_t *acc, int64_t n,
                        const double *mult, int64_t ms, double zp) {
    double lo = 0, hi = 255;
    int_range(yt, &lo, &hi);
    if (yt == ONYX_DTYPE_UINT8) {
        uint8_t *o = (uint8_t *)y + off;
        for (int64_t p = 0; p < n; p++)
            o[p] = (uint8_t)round_sat((double)acc[p] * mult[p * ms], zp, lo, hi);
    } else {
        int8_t *o = (int8_t *)y + off;
        for (int64_t p = 0; p < n; p++)
            o[p] = (int8_t)round_sat((double)acc[p] * mult[p * ms], zp, lo, hi);
    }
}

/* Reads element i of a uint8/int8 tensor's data. */
static inline int32_t q8(onyx_dtype t, const void *d, int64_t i) {
    return t == ONYX_DTYPE_UINT8 ? ((const uint8_t *)d)[i] : ((const int8_t *)d)[i];
}

static bool is_q8(const onyx_tensor *t) {
    return t && (t->dtype == ONYX_DTYPE_UINT8 || t->dtype == ONYX_DTYPE_INT8);
}

/* The per-tensor float value of a scale input (count 1). */
static float scale_value(const onyx_tensor *t, int64_t i) {
    return (float)onyx_tensor_get_f64(t, i);
}

/* ---------------------------------------------------------------------- */
/* QLinearMatMul                                                           */

typedef struct qmm_job {
    int64_t M, K, N;
    const int32_t *A;   /* (batches, M, K) with zero points removed */
    const int32_t *B;   /* (batches, K, N) with zero points removed */
    const double *mult; /* (batches, M, N) requantization multipliers */
    double yzp;
    onyx_dtype yt;
    void *y;      /* (batches, M, N) */
    int32_t *acc; /* (threads, N) */
} qmm_job;

static void qmm_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const qmm_job *j = ctx;
    int32_t *acc = j->acc + (int64_t)thread * j->N;
    for (int64_t r = begin; r < end; r++) {
        int64_t b = r / j->M;
        memset(acc, 0, (size_t)j->N * sizeof *acc);
        int_gemm_rows(1, j->K, j->N, j->A + r * j->K, j->B + b * j->K * j->N, acc);
        requant_row(j->yt, j->y, r * j->N, acc, j->N, j->mult + r * j->N, 1, j->yzp);
    }
}

/* Element strides of t viewed at (nd, dims), or all-zero when t is NULL. */
static void view_strides(const onyx_tensor *t, int nd, const int64_t *dims, int64_t *s) {
    if (!t) {
        memset(s, 0, sizeof(int64_t) * (size_t)nd);
        return;
    }
    onyx_broadcast_strides(t, nd, dims, s);
}

static onyx_status qlinear_matmul_run(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *a = onyx_exec_input(x, 0), *as = onyx_exec_input(x, 1),
                      *az = onyx_exec_input(x, 2), *b = onyx_exec_input(x, 3),
                      *bs = onyx_exec_input(x, 4), *bz = onyx_exec_input(x, 5),
                      *ys = onyx_exec_input(x, 6), *yz = onyx_exec_input(x, 7);
    if (!a || !as || !b || !bs || !ys)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing inputs");
    if (!is_q8(a) || !is_q8(b))
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "QLinearMatMul of %s x %s",
                              onyx_dtype_name(a->dtype), onyx_dtype_name(b->dtype));
    onyx_dtype yt = yz ? yz->dtype : a->dtype;
    if ((az && az->dtype != a->dtype) || (bz && bz->dtype != b->dtype) ||
        (yt != ONYX_DTYPE_UINT8 && yt != ONYX_DTYPE_INT8))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "zero point types do not match");
    onyx_status st;
    if ((st = need_scalar(x, ys, "y_scale")) || (st = need_scalar(x, yz, "y_zero_point")))
        return st;
    if (a->ndim < 1 || b->ndim < 1)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "inputs must have rank >= 1");

    /* numpy matmul shapes: promote 1-D operands, broadcast the batch dims. */
    int ra = a->ndim < 2 ? 2 : a->ndim, rb = b->ndim < 2 ? 2 : b->ndim;
    int64_t ad[ONYX_MAX_DIMS], bd[ONYX_MAX_DIMS];
    if (a->ndim == 1)
        ad[0] = 1, ad[1] = a->dims[0];
    else
        memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ra);
    if (b->ndim == 1)
        bd[0] = b->dims[0], bd[1] = 1;
    else
        memcpy(bd, b->dims, sizeof(int64_t) * (size_t)rb);
    int64_t M = ad[ra - 2], K = ad[ra - 1], N = bd[rb - 1];
    if (bd[rb - 2] != K)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "inner dims differ: %lld vs %lld",
                              (long long)K, (long long)bd[rb - 2]);
    int nbd;
    int64_t batch[ONYX_MAX_DIMS];
    if (onyx_broadcast_shape(ra - 2, ad, rb - 2, bd, &nbd, batch))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "batch dims do not broadcast");
    int64_t nb = onyx_dims_count(nbd, batch);
    int fr = nbd + 2;
    if (fr > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "rank above %d", ONYX_MAX_DIMS);
    int64_t fa[ONYX_MAX_DIMS], fb[ONYX_MAX_DIMS];
    memcpy(fa, batch, sizeof(int64_t) * (size_t)nbd);
    memcpy(fb, batch, sizeof(int64_t) * (size_t)nbd);
    fa[nbd] = M, fa[nbd + 1] = K, fb[nbd] = K, fb[nbd + 1] = N;

    /* Strides of each operand and its scale/zero point viewed at the full
     * (batch, M, K) or (batch, K, N) shape. A 1-D operand is viewed through
     * its promoted shape. */
    onyx_tensor a2 = *a, b2 = *b;
    onyx_tensor_set_shape(&a2, ra, ad);
    onyx_tensor_set_shape(&b2, rb, bd);
    int64_t sa[ONYX_MAX_DIMS], sb[ONYX_MAX_DIMS], saz[ONYX_MAX_DIMS], sbz[ONYX_MAX_DIMS],
        sas[ONYX_MAX_DIMS], sbs[ONYX_MAX_DIMS];
    const onyx_tensor *viewed[6] = {&a2, az, as, &b2, bz, bs};
    int64_t *strides[6] = {sa, saz, sas, sb, sbz, sbs};
    for (int i = 0; i < 6; i++) {
        const onyx_tensor *t = viewed[i];
        const int64_t *full = i < 3 ? fa : fb;
        if (t && t->ndim > fr)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "scale/zero point rank too high");
        for (int d = 0; t && d < t->ndim; d++) {
            int64_t want = full[fr - t->ndim + d];
            if (t->dims[d] != 1 && t->dims[d] != want)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "scale/zero point shape does not fit its operand");
        }
        view_strides(t, fr, full, strides[i]);
    }
    if (sas[fr - 1] || sbs[fr - 2])
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "a_scale must be per row and b_scale per column");

    int64_t yd[ONYX_MAX_DIMS];
    int ny = 0;
    for (int i = 0; i < nbd; i++)
        yd[ny++] = batch[i];
    if (a->ndim > 1) yd[ny++] = M;
    if (b->ndim > 1) yd[ny++] = N;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, yt, ny, yd, &y))) return st;
    if (nb == 0 || M == 0 || N == 0) return ONYX_OK;

    int threads = onyx_exec_threads(x);
    int64_t na = nb * M * K, nbb = nb * K * N, nm = nb * M * N;
    if (onyx_dims_count(3, (int64_t[]){nb, M, K}) < 0 ||
        onyx_dims_count(3, (int64_t[]){nb, K, N}) < 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "tensor too large");
    int32_t *A = onyx_exec_scratch(x, (size_t)na * 4 + 4);
    int32_t *B = onyx_exec_scratch(x, (size_t)nbb * 4 + 4);
    double *mult = onyx_exec_scratch(x, (size_t)nm * 8 + 8);
    int32_t *acc = onyx_exec_scratch(x, (size_t)(threads * N) * 4 + 4);
    if (!A || !B || !mult || !acc)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");

    /* Multipliers a_scale * b_scale / y_scale in the scales' precision. */
    onyx_dtype sp = as->dtype;
    float ysv = scale_value(ys, 0);
    double yzp = yz ? onyx_tensor_get_f64(yz, 0) : 0.0;
    int64_t idx[ONYX_MAX_DIMS] = {0};
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t oa = 0, ob = 0, oaz = 0, obz = 0, oas = 0, obs = 0;
        for (int d = 0; d < nbd; d++) {
            oa += idx[d] * sa[d], ob += idx[d] * sb[d];
            oaz += idx[d] * saz[d], obz += idx[d] * sbz[d];
            oas += idx[d] * sas[d], obs += idx[d] * sbs[d];
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++) {
                int32_t zv =
                    az ? q8(az->dtype, az->data, oaz + m * saz[fr - 2] + k * saz[fr - 1]) : 0;
                A[(bi * M + m) * K + k] =
                    q8(a->dtype, a->data, oa + m * sa[fr - 2] + k * sa[fr - 1]) - zv;
            }
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < N; c++) {
                int32_t zv =
                    bz ? q8(bz->dtype, bz->data, obz + k * sbz[fr - 2] + c * sbz[fr - 1]) : 0;
                B[(bi * K + k) * N + c] =
                    q8(b->dtype, b->data, ob + k * sb[fr - 2] + c * sb[fr - 1]) - zv;
            }
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = 0; c < N; c++) {
                float av = scale_value(as, oas + m * sas[fr - 2]);
                float bv = scale_value(bs, obs + c * sbs[fr - 1]);
                mult[(bi * M + m) * N + c] = round_to(sp, round_to(sp, av * bv) / ysv);
            }
        for (int d = nbd - 1; d >= 0; d--) {
            if (++idx[d] < batch[d]) break;
            idx[d] = 0;
        }
    }
    qmm_job j = {M, K, N, A, B, mult, yzp, yt, y->data, acc};
    onyx_exec_parallel(x, nb * M, 1 + (1 << 16) / (K * N + 1), qmm_task, &j);
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Integer convolution (QLinearConv)                          */

enum { MAXSP = ONYX_MAX_DIMS - 2 };

typedef struct conv_attrs {
    const char *auto_pad;
    int64_t group;
    const int64_t *kernel, *pads, *strides, *dilations;
    int64_t n_kernel, n_pads, n_strides, n_dilations;
} conv_attrs;

static onyx_status conv_init(onyx_node *n, onyx_error *err) {
    conv_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->auto_pad = onyx_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(a->auto_pad, "NOTSET") && strcmp(a->auto_pad, "VALID") &&
        strcmp(a->auto_pad, "SAME_UPPER") && strcmp(a->auto_pad, "SAME_LOWER"))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'auto_pad' is '%s'",
                           a->auto_pad);
    a->group = onyx_attr_int(n, "group", 1);
    if (a->group < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'group' is %lld",
                           (long long)a->group);
    a->n_kernel = onyx_attr_ints(n, "kernel_shape", &a->kernel);
    a->n_pads = onyx_attr_ints(n, "pads", &a->pads);
    a->n_strides = onyx_attr_ints(n, "strides", &a->strides);
    a->n_dilations = onyx_attr_ints(n, "dilations", &a->dilations);
    n->state = a;
    return ONYX_OK;
}

typedef struct conv_geom {
    int ns;             /* spatial dims */
    int64_t N, C, M, G; /* batch, input channels, output channels, groups */
    int64_t in[MAXSP], k[MAXSP], out[MAXSP], stride[MAXSP], dil[MAXSP], pad[MAXSP];
    int64_t in_sp, out_sp, k_sp; /* spatial element counts */
} conv_geom;

static onyx_status conv_geometry(onyx_exec *x, const conv_attrs *a, const onyx_tensor *X,
                                 const onyx_tensor *W, conv_geom *g) {
    memset(g, 0, sizeof *g);
    if (X->ndim < 3 || W->ndim != X->ndim)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "x must have rank >= 3 and w the same rank (got %d and %d)", X->ndim,
                              W->ndim);
    int ns = g->ns = X->ndim - 2;
    g->N = X->dims[0], g->C = X->dims[1], g->M = W->dims[0], g->G = a->group;
    if (g->C != W->dims[1] * g->G || g->M % g->G)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "channels do not match: x has %lld, w has %lld x group %lld and "
                              "%lld outputs",
                              (long long)g->C, (long long)W->dims[1], (long long)g->G,
                              (long long)g->M);
    if ((a->n_kernel >= 0 && a->n_kernel != ns) || (a->n_strides >= 0 && a->n_strides != ns) ||
        (a->n_dilations >= 0 && a->n_dilations != ns) || (a->n_pads >= 0 && a->n_pads != 2 * ns))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "kernel_shape/strides/dilations/pads do not match %d spatial dims",
                              ns);
    g->in_sp = g->out_sp = g->k_sp = 1;
    for (int i = 0; i < ns; i++) {
        g->in[i] = X->dims[2 + i];
        g->k[i] = W->dims[2 + i];
        if (a->n_kernel >= 0 && a->kernel[i] != g->k[i])
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "kernel_shape does not match w");
        g->stride[i] = a->n_strides >= 0 ? a->strides[i] : 1;
        g->dil[i] = a->n_dilations >= 0 ? a->dilations[i] : 1;
        if (g->stride[i] < 1 || g->dil[i] < 1)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "strides/dilations must be >= 1");
        int64_t ext = (g->k[i] - 1) * g->dil[i] + 1, p0 = 0, p1 = 0;
        if (!strcmp(a->auto_pad, "SAME_UPPER") || !strcmp(a->auto_pad, "SAME_LOWER")) {
            int64_t o = (g->in[i] + g->stride[i] - 1) / g->stride[i];
            int64_t total = (o - 1) * g->stride[i] + ext - g->in[i];
            if (total < 0) total = 0;
            p0 = a->auto_pad[5] == 'U' ? total / 2 : total - total / 2;
            p1 = total - p0;
        } else if (!strcmp(a->auto_pad, "NOTSET") && a->n_pads >= 0) {
            p0 = a->pads[i], p1 = a->pads[ns + i];
        }
        if (p0 < 0 || p1 < 0) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "negative pads");
        int64_t span = g->in[i] + p0 + p1 - ext;
        g->out[i] = span < 0 ? 0 : span / g->stride[i] + 1;
        g->pad[i] = p0;
        g->in_sp *= g->in[i], g->out_sp *= g->out[i], g->k_sp *= g->k[i];
    }
    return ONYX_OK;
}

/* im2col for one image and group: col (Cg*k_sp, out_sp) from xi (Cg, in_sp),
 * zero where the window falls in the padding. */
static void im2col(const conv_geom *g, int64_t Cg, const int32_t *xi, int32_t *col) {
    int ns = g->ns;
    for (int64_t c = 0; c < Cg; c++) {
        int64_t kk[MAXSP] = {0};
        for (int64_t kq = 0; kq < g->k_sp; kq++) {
            int32_t *dst = col + (c * g->k_sp + kq) * g->out_sp;
            const int32_t *src = xi + c * g->in_sp;
            int64_t o[MAXSP] = {0};
            int64_t last = ns - 1;
            for (int64_t p = 0; p < g->out_sp; p += g->out[last]) {
                /* Offset of the row's start and whether the outer dims are inside. */
                int64_t off = 0;
                bool inside = true;
                for (int d = 0; d < last; d++) {
                    int64_t ip = o[d] * g->stride[d] - g->pad[d] + kk[d] * g->dil[d];
                    inside = inside && ip >= 0 && ip < g->in[d];
                    off = off * g->in[d] + ip;
                }
                int64_t base = kk[last] * g->dil[last] - g->pad[last];
                for (int64_t ol = 0; ol < g->out[last]; ol++) {
                    int64_t ip = ol * g->stride[last] + base;
                    dst[p + ol] =
                        inside && ip >= 0 && ip < g->in[last] ? src[off * g->in[last] + ip] : 0;
                }
                for (int d = last - 1; d >= 0; d--) {
                    if (++o[d] < g->out[d]) break;
                    o[d] = 0;
                }
            }
            for (int d = ns - 1; d >= 0; d--) {
                if (++kk[d] < g->k[d]) break;
                kk[d] = 0;
            }
        }
    }
}

typedef struct conv_job {
    const conv_geom *g;
    int64_t Mg, Kc;      /* outputs per group, col rows (Cg * k_sp) */
    const int32_t *w;    /* (M, Kc), zero points removed */
    const int32_t *col;  /* (Kc, out_sp) of the current image and group */
    const int32_t *bias; /* (M) or NULL */
    int64_t n, grp;      /* current image and group */
    int32_t *acc;        /* (N, M, out_sp) */
} conv_job;

static void conv_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const conv_job *j = ctx;
    int64_t P = j->g->out_sp;
    for (int64_t r = begin; r < end; r++) {
        int64_t m = j->grp * j->Mg + r;
        int32_t *acc = j->acc + (j->n * j->g->M + m) * P;
        int32_t b0 = j->bias ? j->bias[m] : 0;
        for (int64_t p = 0; p < P; p++)
            acc[p] = b0;
        int_gemm_rows(1, j->Kc, P, j->w + m * j->Kc, j->col, acc);
    }
}

/* acc (N, M, out_sp) = conv(x - x_zp, w - w_zp) + bias, in int32. */
static onyx_status conv_int(onyx_exec *x, const conv_geom *g, const onyx_tensor *X,
                            const onyx_tensor *xz, const onyx_tensor *W, const onyx_tensor *wz,
                            const int32_t *bias, int32_t *acc) {
    int64_t Cg = g->C / g->G, Mg = g->M / g->G, Kc = Cg * g->k_sp;
    int64_t nx = onyx_tensor_count(X), nw = onyx_tensor_count(W);
    int64_t ncol = onyx_dims_count(2, (int64_t[]){Kc, g->out_sp});
    if (ncol < 0) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "convolution too large");
    int32_t *xi = onyx_exec_scratch(x, (size_t)nx * 4 + 4);
    int32_t *wi = onyx_exec_scratch(x, (size_t)nw * 4 + 4);
    int32_t *col = onyx_exec_scratch(x, (size_t)ncol * 4 + 4);
    if (!xi || !wi || !col) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t xzv = xz ? q8(xz->dtype, xz->data, 0) : 0;
    for (int64_t i = 0; i < nx; i++)
        xi[i] = q8(X->dtype, X->data, i) - xzv;
    int64_t per_m = nw / (g->M ? g->M : 1);
    bool wz_axis = wz && onyx_tensor_count(wz) > 1;
    for (int64_t i = 0; i < nw; i++) {
        int32_t z = wz ? q8(wz->dtype, wz->data, wz_axis ? i / per_m : 0) : 0;
        wi[i] = q8(W->dtype, W->data, i) - z;
    }
    conv_job j = {g, Mg, Kc, wi, col, bias, 0, 0, acc};
    for (int64_t n = 0; n < g->N; n++) {
        for (int64_t grp = 0; grp < g->G; grp++) {
            if (onyx_exec_aborted(x))
                return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "the run was cancelled");
            im2col(g, Cg, xi + (n * g->C + grp * Cg) * g->in_sp, col);
            j.n = n, j.grp = grp;
            onyx_exec_parallel(x, Mg, 1 + (1 << 16) / (Kc * g->out_sp + 1), conv_task, &j);
        }
    }
    return ONYX_OK;
}

/* Checks a zero point that must be a scalar or hold one value per output channel. */
static onyx_status check_per_channel(onyx_exec *x, const onyx_tensor *t, int64_t M,
                                     const char *what) {
    if (!t) return ONYX_OK;
    int64_t c = onyx_tensor_count(t);
    if (c != 1 && !(t->ndim == 1 && c == M))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "%s must be a scalar or have %lld elements", what, (long long)M);
    return ONYX_OK;
}

static onyx_status conv_output(onyx_exec *x, const conv_geom *g, onyx_dtype t, onyx_tensor **out) {
    int64_t d[ONYX_MAX_DIMS] = {g->N, g->M};
    for (int i = 0; i < g->ns; i++)
        d[2 + i] = g->out[i];
    return onyx_exec_output(x, 0, t, g->ns + 2, d, out);
}

static onyx_status qlinear_conv_run(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *X = onyx_exec_input(x, 0), *xs = onyx_exec_input(x, 1),
                      *xz = onyx_exec_input(x, 2), *W = onyx_exec_input(x, 3),
                      *ws = onyx_exec_input(x, 4), *wz = onyx_exec_input(x, 5),
                      *ys = onyx_exec_input(x, 6), *yz = onyx_exec_input(x, 7),
                      *B = onyx_exec_input(x, 8);
    if (!is_q8(X) || !is_q8(W) || !xs || !ws || !ys)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "x and w must be int8 or uint8, scales are required");
    onyx_dtype yt = yz ? yz->dtype : X->dtype;
    if ((xz && xz->dtype != X->dtype) || (wz && wz->dtype != W->dtype) ||
        (yt != ONYX_DTYPE_UINT8 && yt != ONYX_DTYPE_INT8))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "zero point types do not match");
    conv_geom g;
    onyx_status st;
    if ((st = conv_geometry(x, n->state, X, W, &g)) || (st = need_scalar(x, xs, "x_scale")) ||
        (st = need_scalar(x, xz, "x_zero_point")) || (st = need_scalar(x, ys, "y_scale")) ||
        (st = need_scalar(x, yz, "y_zero_point")) ||
        (st = check_per_channel(x, ws, g.M, "w_scale")) ||
        (st = check_per_channel(x, wz, g.M, "w_zero_point")))
        return st;
    if (B && (B->dtype != ONYX_DTYPE_INT32 || onyx_tensor_count(B) != g.M))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "B must be int32 with %lld elements",
                              (long long)g.M);
    onyx_tensor *y;
    if ((st = conv_output(x, &g, yt, &y))) return st;
    int64_t ny = onyx_tensor_count(y);
    int32_t *acc = onyx_exec_scratch(x, (size_t)ny * 4 + 4);
    double *mult = onyx_exec_scratch(x, (size_t)(g.M + 1) * 8);
    if (!acc || !mult) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = conv_int(x, &g, X, xz, W, wz, B ? B->data : NULL, acc))) return st;
    /* Multiplier per output channel, x_scale * w_scale / y_scale in float32. */
    float xsv = scale_value(xs, 0), ysv = scale_value(ys, 0);
    int64_t nws = onyx_tensor_count(ws);
    for (int64_t m = 0; m < g.M; m++)
        mult[m] = xsv * scale_value(ws, nws > 1 ? m : 0) / ysv;
    double yzp = yz ? onyx_tensor_get_f64(yz, 0) : 0.0;
    for (int64_t r = 0; r < g.N * g.M; r++)
        requant_row(yt, y->data, r * g.out_sp, acc + r * g.out_sp, g.out_sp, mult + r % g.M, 0,
                    yzp);
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define T_QX (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_INT32))
#define T_QX19 (T_QX | ONYX_T(ONYX_DTYPE_FLOAT16) | ONYX_T(ONYX_DTYPE_BFLOAT16))
#define T_F8                                                                                       \
    (ONYX_T(ONYX_DTYPE_FLOAT8E4M3FN) | ONYX_T(ONYX_DTYPE_FLOAT8E4M3FNUZ) |                         \
     ONYX_T(ONYX_DTYPE_FLOAT8E5M2) | ONYX_T(ONYX_DTYPE_FLOAT8E5M2FNUZ))
#define T_Q8 (ONYX_T(ONYX_DTYPE_INT8) | ONYX_T(ONYX_DTYPE_UINT8))
#define T_DQ10 (T_Q8 | ONYX_T(ONYX_DTYPE_INT32))
#define T_DQ19 (T_DQ10 | T_F8)
#define T_DQ21                                                                                     \
    (T_DQ19 | ONYX_T(ONYX_DTYPE_INT16) | ONYX_T(ONYX_DTYPE_UINT16) | ONYX_T(ONYX_DTYPE_INT4) |     \
     ONYX_T(ONYX_DTYPE_UINT4))
#define T_DQ23 (T_DQ21 | ONYX_T(ONYX_DTYPE_FLOAT4E2M1))
#define ROW(op, v, mi, xi, mo, xo, types, init, run)                                               \
    { "", op, v, mi, xi, mo, xo, types, init, run }

const onyx_op_schema onyx_ops_quant[] = {
    ROW("QuantizeLinear", 10, 2, 3, 1, 1, T_QX, q_init, quantize_run),
    ROW("QuantizeLinear", 13, 2, 3, 1, 1, T_QX, q_init, quantize_run),
    ROW("QuantizeLinear", 19, 2, 3, 1, 1, T_QX19, q_init, quantize_run),
    ROW("QuantizeLinear", 21, 2, 3, 1, 1, T_QX19, q_init, quantize_run),
    ROW("QuantizeLinear", 23, 2, 3, 1, 1, T_QX19, q_init, quantize_run),
    ROW("QuantizeLinear", 24, 2, 3, 1, 1, T_QX19, q_init, quantize_run),
    ROW("DequantizeLinear", 10, 2, 3, 1, 1, T_DQ10, q_init, dequantize_run),
    ROW("DequantizeLinear", 13, 2, 3, 1, 1, T_DQ10, q_init, dequantize_run),
    ROW("DequantizeLinear", 19, 2, 3, 1, 1, T_DQ19, q_init, dequantize_run),
    ROW("DequantizeLinear", 21, 2, 3, 1, 1, T_DQ21, q_init, dequantize_run),
    ROW("DequantizeLinear", 23, 2, 3, 1, 1, T_DQ23, q_init, dequantize_run),
    ROW("DequantizeLinear", 24, 2, 3, 1, 1, T_DQ23, q_init, dequantize_run),
    ROW("DynamicQuantizeLinear", 11, 1, 1, 3, 3, ONYX_T(ONYX_DTYPE_FLOAT), NULL,
        dynamic_quantize_run),
    ROW("QLinearMatMul", 10, 8, 8, 1, 1, T_Q8, NULL, qlinear_matmul_run),
    /* Opset 21 also lists float8 operands; they are refused at load: no
     * runtime defines their arithmetic (the ONNX reference truncates them to
     * integers, onnxruntime has no CPU kernel). */
    ROW("QLinearMatMul", 21, 8, 8, 1, 1, T_Q8, NULL, qlinear_matmul_run),
    ROW("QLinearConv", 10, 8, 9, 1, 1, T_Q8, conv_init, qlinear_conv_run),
    {0},
};
