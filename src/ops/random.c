/* random.c - the random generator operators: RandomUniform, RandomNormal,
 * their *Like forms, Bernoulli and Multinomial. With a seed attribute every
 * run restarts the stream from that seed and, for all but Multinomial,
 * reproduces the ONNX reference (numpy's RandomState(seed)) exactly; without
 * one each run draws a fresh seed from the clock. Generator: ops/rng.h. */
#include "core/op.h"
#include "ops/rng.h"

#include <math.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM() onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

typedef enum random_kind { RND_UNIFORM, RND_NORMAL, RND_BERNOULLI, RND_MULTINOMIAL, RND_KIND_COUNT } random_kind;

typedef struct random_attr {
    random_kind kind;
    bool like;              /* shape (and default dtype) from input 0 */
    bool has_seed;
    uint32_t seed;          /* numpy's RandomState(int(seed)) */
    onyx_dtype dtype;       /* UNDEFINED: the input's type (*Like, Bernoulli) */
    double a, b;            /* uniform: low, high; normal: mean, scale */
    int ndim;               /* RandomUniform / RandomNormal: the shape attribute */
    int64_t dims[ONYX_MAX_DIMS];
    int64_t sample_size;    /* Multinomial */
} random_attr;

#define T_RANDOM_OUT ONYX_T_FLOATS
#define T_BERNOULLI_OUT (ONYX_T_FLOATS | ONYX_T_INTS | ONYX_T(ONYX_DTYPE_BOOL))

static onyx_status init_random(onyx_node *n, onyx_error *err, random_kind kind, bool like) {
    random_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->kind = kind;
    a->like = like;
    const onyx_pb_attr *seed = onyx_attr_find(n, "seed");
    if (seed) {
        double s = onyx_attr_float(n, "seed", 0.0f);
        if (!isfinite(s)) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'seed' is not finite");
        /* int(seed), then taken modulo 2^32 (numpy refuses seeds outside
         * [0, 2^32), which no real model uses). */
        a->has_seed = true;
        a->seed = (uint32_t)(uint64_t)(int64_t)s;
    }
    uint64_t allowed = kind == RND_BERNOULLI ? T_BERNOULLI_OUT
                       : kind == RND_MULTINOMIAL ? ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64)
                                                 : T_RANDOM_OUT;
    int64_t def = like || kind == RND_BERNOULLI ? 0 : kind == RND_MULTINOMIAL ? ONYX_DTYPE_INT32 : ONYX_DTYPE_FLOAT;
    int64_t dt = onyx_attr_int(n, "dtype", def);
    if (dt != 0 && (dt < 0 || dt >= ONYX_DTYPE_COUNT || !(allowed & ONYX_T(dt))))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'dtype' %lld is not supported", (long long)dt);
    a->dtype = (onyx_dtype)dt;
    if (kind == RND_UNIFORM) {
        a->a = onyx_attr_float(n, "low", 0.0f);
        a->b = onyx_attr_float(n, "high", 1.0f);
    } else if (kind == RND_NORMAL) {
        a->a = onyx_attr_float(n, "mean", 0.0f);
        a->b = onyx_attr_float(n, "scale", 1.0f);
    }
    if ((kind == RND_UNIFORM || kind == RND_NORMAL) && !like) {
        const int64_t *shape;
        int64_t nd = onyx_attr_ints(n, "shape", &shape);
        if (nd < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "missing attribute 'shape'");
        if (nd > ONYX_MAX_DIMS) return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "shape has %lld dimensions", (long long)nd);
        for (int64_t i = 0; i < nd; i++) {
            if (shape[i] < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "shape[%lld] is negative", (long long)i);
            a->dims[i] = shape[i];
        }
        a->ndim = (int)nd;
        if (onyx_dims_count(a->ndim, a->dims) < 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "shape is too large");
    }
    if (kind == RND_MULTINOMIAL) {
        a->sample_size = onyx_attr_int(n, "sample_size", 1);
        if (a->sample_size < 1) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "sample_size must be positive");
    }
    n->state = a;
    return ONYX_OK;
}

static onyx_status init_uniform(onyx_node *n, onyx_error *err) {
    return init_random(n, err, RND_UNIFORM, false);
}
static onyx_status init_normal(onyx_node *n, onyx_error *err) {
    return init_random(n, err, RND_NORMAL, false);
}
static onyx_status init_uniform_like(onyx_node *n, onyx_error *err) {
    return init_random(n, err, RND_UNIFORM, true);
}
static onyx_status init_normal_like(onyx_node *n, onyx_error *err) {
    return init_random(n, err, RND_NORMAL, true);
}
static onyx_status init_bernoulli(onyx_node *n, onyx_error *err) {
    return init_random(n, err, RND_BERNOULLI, true);
}
static onyx_status init_multinomial(onyx_node *n, onyx_error *err) {
    return init_random(n, err, RND_MULTINOMIAL, false);
}

static void start_stream(const random_attr *a, onyx_mt19937 *mt, const void *salt) {
    onyx_mt_seed(mt, a->has_seed ? a->seed : onyx_mt_entropy_seed(salt));
}

/* Stores value v (computed in double) as element i of t. */
static void store(onyx_tensor *t, int64_t i, double v) {
    switch (t->dtype) {
    case ONYX_DTYPE_FLOAT: ((float *)t->data)[i] = (float)v; break;
    case ONYX_DTYPE_DOUBLE: ((double *)t->data)[i] = v; break;
    default:
        onyx_convert(t->dtype, (char *)t->data + (size_t)i * onyx_dtype_size(t->dtype), ONYX_DTYPE_DOUBLE, &v, 1,
                     false);
        break;
    }
}

/* Uniform: u * (high - low) + low; normal: g * scale + mean. As the
 * reference casts the draw to the output type first and then scales with
 * Python floats (NEP 50: in the output type), the float32 path rounds the
 * draw, the product and the sum to float32 each. */
static onyx_status run_dense(const onyx_node *nd, onyx_exec *x) {
    const random_attr *a = nd->state;
    int ndim = a->ndim;
    const int64_t *dims = a->dims;
    onyx_dtype dt = a->dtype;
    if (a->like) {
        const onyx_tensor *in = onyx_exec_input(x, 0);
        if (!in) return FAIL("missing input");
        ndim = in->ndim;
        dims = in->dims;
        if (dt == ONYX_DTYPE_UNDEFINED) dt = in->dtype;
        if (!(T_RANDOM_OUT & ONYX_T(dt)))
            return FAIL("output type %s is not a float type: set the dtype attribute", onyx_dtype_name(dt));
    }
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, dt, ndim, dims, &Y);
    if (st) return st;
    onyx_mt19937 *mt = onyx_exec_scratch(x, sizeof *mt);
    if (!mt) return OOM();
    start_stream(a, mt, Y->data);
    int64_t count = onyx_tensor_count(Y);
    bool uniform = a->kind == RND_UNIFORM;
    double mul = uniform ? a->b - a->a : a->b, add = a->a;
    float mulf = (float)mul, addf = (float)add;
    for (int64_t i = 0; i < count; i++) {
        double r = uniform ? onyx_mt_double(mt) : onyx_mt_gauss(mt);
        if (dt == ONYX_DTYPE_DOUBLE) {
            store(Y, i, r * mul + add);
        } else {
            float f = (float)r;
            f = f * mulf;
            f = f + addf;
            store(Y, i, f);
        }
    }
    return ONYX_OK;
}

/* input p (any shape, float types, values in [0, 1]) -> 0/1 draws of the
 * same shape, as RandomState.binomial(1, p). */
static onyx_status run_bernoulli(const onyx_node *nd, onyx_exec *x) {
    const random_attr *a = nd->state;
    const onyx_tensor *P = onyx_exec_input(x, 0);
    if (!P) return FAIL("missing input");
    if (!onyx_dtype_is_float(P->dtype)) return FAIL("input must be a float type, got %s", onyx_dtype_name(P->dtype));
    onyx_dtype dt = a->dtype == ONYX_DTYPE_UNDEFINED ? P->dtype : a->dtype;
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, dt, P->ndim, P->dims, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(P);
    for (int64_t i = 0; i < count; i++) {
        double p = onyx_tensor_get_f64(P, i);
        if (!(p >= 0.0 && p <= 1.0)) return FAIL("probability %g at element %lld is outside [0, 1]", p, (long long)i);
    }
    onyx_mt19937 *mt = onyx_exec_scratch(x, sizeof *mt);
    if (!mt) return OOM();
    start_stream(a, mt, Y->data);
    for (int64_t i = 0; i < count; i++) store(Y, i, onyx_mt_bernoulli(mt, onyx_tensor_get_f64(P, i)));
    return ONYX_OK;
}

/* input (B, K) unnormalized log-probabilities -> (B, sample_size) class
 * indices, each drawn from softmax(row) by inverting its CDF with one
 * uniform draw (the spec fixes no algorithm; onnxruntime's stream differs). */
static onyx_status run_multinomial(const onyx_node *nd, onyx_exec *x) {
    const random_attr *a = nd->state;
    const onyx_tensor *L = onyx_exec_input(x, 0);
    if (!L) return FAIL("missing input");
    if (!onyx_dtype_is_float(L->dtype)) return FAIL("input must be a float type, got %s", onyx_dtype_name(L->dtype));
    if (L->ndim != 2) return FAIL("input must be (batch, classes), got rank %d", L->ndim);
    int64_t B = L->dims[0], K = L->dims[1];
    if (K < 1) return FAIL("input has no classes");
    int64_t dims[2] = {B, a->sample_size};
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, a->dtype, 2, dims, &Y);
    if (st) return st;
    double *cdf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, K));
    onyx_mt19937 *mt = onyx_exec_scratch(x, sizeof *mt);
    if (!cdf || !mt) return OOM();
    start_stream(a, mt, Y->data);
    for (int64_t b = 0; b < B; b++) {
        double mx = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            double v = onyx_tensor_get_f64(L, b * K + k);
            if (isnan(v)) return FAIL("row %lld has a NaN log-probability", (long long)b);
            if (v > mx) mx = v;
        }
        if (!isfinite(mx)) return FAIL("row %lld has no finite log-probability", (long long)b);
        double sum = 0;
        for (int64_t k = 0; k < K; k++) {
            sum += exp(onyx_tensor_get_f64(L, b * K + k) - mx);
            cdf[k] = sum;
        }
        for (int64_t s = 0; s < a->sample_size; s++) {
            double u = onyx_mt_double(mt) * sum;
            int64_t lo = 0, hi = K - 1;
            /* The first class whose CDF passes u; zero-probability classes
             * repeat the previous CDF value and so are never chosen. */
            while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (cdf[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            int64_t i = b * a->sample_size + s;
            if (a->dtype == ONYX_DTYPE_INT64)
                ((int64_t *)Y->data)[i] = lo;
            else
                ((int32_t *)Y->data)[i] = (int32_t)lo;
        }
    }
    return ONYX_OK;
}

#define T_ANY ONYX_T_ALL

const onyx_op_schema onyx_ops_random[] = {
    {"", "RandomUniform", 1, 0, 0, 1, 1, 0, init_uniform, run_dense, 0},
    {"", "RandomNormal", 1, 0, 0, 1, 1, 0, init_normal, run_dense, 0},
    {"", "RandomUniformLike", 1, 1, 1, 1, 1, T_ANY, init_uniform_like, run_dense, 0},
    {"", "RandomNormalLike", 1, 1, 1, 1, 1, T_ANY, init_normal_like, run_dense, 0},
    {"", "Bernoulli", 15, 1, 1, 1, 1, ONYX_T_FLOATS, init_bernoulli, run_bernoulli, 0},
    {"", "Multinomial", 7, 1, 1, 1, 1, ONYX_T_FLOATS, init_multinomial, run_multinomial, 0},
    {0},
};
