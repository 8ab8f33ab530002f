/* misc.c - operators without a family of their own: Einsum (general
 * equations reduced to diagonals, sums, transposes and batched GEMMs) and
 * Det (LU with partial pivoting).
 * float32/float16 compute in float32 on the blocked GEMM, double in double,
 * integer types in int64 with wrap-around. */
#include "core/op.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

#include <math.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM() onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")
#define OOM_() onyx_exec_fail(c->x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

// ----------------------------------------------------------------------------
// Einsum: the equation

/* Labels: 'a'..'z' are 0..25, 'A'..'Z' 26..51, ellipsis dimensions 52.. */
#define EIN_LETTERS 52
#define EIN_MAX_LABELS (EIN_LETTERS + ONYX_MAX_DIMS)
#define EIN_MAX_AXES 32 /* axes of an intermediate product */
#define EIN_MAX_INPUTS 64

typedef struct ein_term {
    int n;                      /* letters given (ellipsis counts as one entry, -1) */
    int lab[ONYX_MAX_DIMS + 1]; /* letter labels in order; -1 marks the ellipsis */
    bool ellipsis;
} ein_term;

typedef struct ein_attr {
    int n_in;
    ein_term in[EIN_MAX_INPUTS];
    bool explicit_out;
    ein_term out;
} ein_attr;

static int ein_label(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
    return -1;
}

static char ein_char(int l) {
    return l < 26 ? (char)('a' + l) : l < EIN_LETTERS ? (char)('A' + l - 26) : '.';
}

/* Parses one term from s[0..len); false on a bad character or layout. */
static bool ein_parse_term(const char *s, size_t len, ein_term *t) {
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (t->ellipsis || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.') return false;
            t->ellipsis = true;
            if (t->n > ONYX_MAX_DIMS) return false;
            t->lab[t->n++] = -1;
            i += 2;
            continue;
        }
        int l = ein_label(s[i]);
        if (l < 0 || t->n > ONYX_MAX_DIMS) return false;
        t->lab[t->n++] = l;
    }
    return true;
}

static onyx_status init_einsum(onyx_node *n, onyx_error *err) {
    const char *eq = onyx_attr_string(n, "equation", NULL);
    if (!eq) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "missing attribute 'equation'");
    ein_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    char buf[512];
    size_t len = 0;
    for (const char *p = eq; *p; p++) {
        if (*p == ' ') continue;
        if (len + 1 >= sizeof buf)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "equation is too long");
        buf[len++] = *p;
    }
    buf[len] = 0;
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : len;
    a->explicit_out = arrow != NULL;
    if (arrow && !ein_parse_term(arrow + 2, strlen(arrow + 2), &a->out))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "bad output term in equation '%s'", eq);
    size_t start = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && buf[i] != ',') continue;
        if (a->n_in == EIN_MAX_INPUTS)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "too many terms in equation");
        if (!ein_parse_term(buf + start, i - start, &a->in[a->n_in++]))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "bad term in equation '%s'", eq);
        start = i + 1;
    }
    if (a->explicit_out) {
        bool seen[EIN_LETTERS] = {false};
        for (int i = 0; i < a->out.n; i++) {
            int l = a->out.lab[i];
            if (l < 0) continue;
            if (seen[l])
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "output label repeated in equation '%s'", eq);
            seen[l] = true;
            bool found = false;
            for (int t = 0; t < a->n_in && !found; t++)
                for (int k = 0; k < a->in[t].n && !found; k++)
                    found = a->in[t].lab[k] == l;
            if (!found)
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "output label not among the inputs in equation '%s'", eq);
        }
    }
    n->state = a;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Einsum: labelled dense tensors in the compute type

typedef struct ein_t {
    int n;
    int lab[EIN_MAX_AXES];
    int64_t dim[EIN_MAX_AXES];
    void *data; /* contiguous row-major, compute type */
} ein_t;

typedef struct ein_ctx {
    onyx_exec *x;
    onyx_dtype ct; /* FLOAT, DOUBLE or INT64 */
    size_t es;
} ein_ctx;

static int ein_find(const ein_t *t, int lab) {
    for (int i = 0; i < t->n; i++)
        if (t->lab[i] == lab) return i;
    return -1;
}

/* Copies src, viewed through element strides `st` over dims `dim` (n axes),
 * into a new contiguous buffer; NULL when out of memory. */
static void *ein_gather(ein_ctx *c, const void *src, int n, const int64_t *dim, const int64_t *st) {
    int64_t count = 1;
    for (int i = 0; i < n; i++)
        count *= dim[i];
    void *dst = onyx_exec_scratch(c->x, c->es * (size_t)(count ? count : 1));
    if (!dst || count == 0) return dst;
    int64_t idx[EIN_MAX_AXES] = {0};
    int64_t off = 0, inner = n ? dim[n - 1] : 1, is = n ? st[n - 1] : 0;
    for (int64_t o = 0; o < count; o += inner) {
        if (c->es == 4) {
            const uint32_t *s = src;
            uint32_t *d = (uint32_t *)dst + o;
            for (int64_t k = 0; k < inner; k++)
                d[k] = s[off + k * is];
        } else {
            const uint64_t *s = src;
            uint64_t *d = (uint64_t *)dst + o;
            for (int64_t k = 0; k < inner; k++)
                d[k] = s[off + k * is];
        }
        for (int a = n - 2; a >= 0; a--) {
            off += st[a];
            if (++idx[a] < dim[a]) break;
            off -= st[a] * dim[a];
            idx[a] = 0;
        }
    }
    return dst;
}

/* t rearranged to the label order `lab` (n labels, each present in t or
 * broadcast from nothing) with sizes `dim`; axes of size 1 in t broadcast.
 * Returns t itself when nothing moves. */
static onyx_status ein_permute(ein_ctx *c, const ein_t *t, int n, const int *lab,
                               const int64_t *dim, ein_t *out) {
    int64_t tst[EIN_MAX_AXES], st[EIN_MAX_AXES];
    int64_t s = 1;
    for (int i = t->n - 1; i >= 0; i--) {
        tst[i] = s;
        s *= t->dim[i];
    }
    bool same = n == t->n;
    for (int i = 0; i < n; i++) {
        int k = ein_find(t, lab[i]);
        st[i] = k < 0 || t->dim[k] == 1 ? 0 : tst[k];
        if (k < 0 || k != i || t->dim[k] != dim[i]) same = false;
    }
    out->n = n;
    memcpy(out->lab, lab, sizeof(int) * (size_t)n);
    memcpy(out->dim, dim, sizeof(int64_t) * (size_t)n);
    if (same) {
        out->data = t->data;
        return ONYX_OK;
    }
    out->data = ein_gather(c, t->data, n, dim, st);
    return out->data ? ONYX_OK : OOM_();
}

#define SUM_BLOCKS(T)                                                                              \
    do {                                                                                           \
        const T *s = src;                                                                          \
        T *d = dst;                                                                                \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            T acc = 0;                                                                             \
            for (int64_t k = 0; k < block; k++)                                                    \
                acc += s[o * block + k];                                                           \
            d[o] = acc;                                                                            \
        }                                                                                          \
    } while (0)

/* Sums t over every label for which drop[label] is set. */
static onyx_status ein_reduce(ein_ctx *c, ein_t *t, const bool *drop) {
    int nk = 0, order[EIN_MAX_AXES] = {0}, no = 0;
    int64_t dims[EIN_MAX_AXES] = {0}, outer = 1, block = 1;
    for (int i = 0; i < t->n; i++)
        if (!drop[t->lab[i]]) {
            nk++;
            order[no] = t->lab[i];
            dims[no++] = t->dim[i];
            outer *= t->dim[i];
        }
    if (nk == t->n) return ONYX_OK;
    for (int i = 0; i < t->n; i++)
        if (drop[t->lab[i]]) {
            order[no] = t->lab[i];
            dims[no++] = t->dim[i];
            block *= t->dim[i];
        }
    ein_t p;
    onyx_status st = ein_permute(c, t, no, order, dims, &p);
    if (st) return st;
    void *dst = onyx_exec_scratch(c->x, c->es * (size_t)(outer ? outer : 1));
    if (!dst) return onyx_exec_fail(c->x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const void *src = p.data;
    if (c->ct == ONYX_DTYPE_FLOAT)
        SUM_BLOCKS(float);
    else if (c->ct == ONYX_DTYPE_DOUBLE)
        SUM_BLOCKS(double);
    else
        SUM_BLOCKS(uint64_t); /* int64 with wrap-around */
    t->n = nk;
    for (int i = 0; i < nk; i++) {
        t->lab[i] = order[i];
        t->dim[i] = dims[i];
    }
    t->data = dst;
    return ONYX_OK;
}

static void exec_parallel_for(void *px, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_exec_parallel(px, n, grain, fn, ctx);
}

/* C (m x n) = A (m x k) * B (k x n), all contiguous, in the compute type. */
static onyx_status ein_gemm(ein_ctx *c, int64_t m, int64_t n, int64_t k, const void *a,
                            const void *b, void *out) {
    if (m == 0 || n == 0) return ONYX_OK;
    if (k == 0) {
        memset(out, 0, c->es * (size_t)(m * n));
        return ONYX_OK;
    }
    onyx_parallel par = {exec_parallel_for, c->x, onyx_exec_threads(c->x)};
    if (c->ct == ONYX_DTYPE_FLOAT) {
        size_t ws = onyx_sgemm_workspace(m, n, k, par.threads);
        void *work = ws ? onyx_exec_scratch(c->x, ws) : NULL;
        if (ws && !work) return onyx_exec_fail(c->x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        return onyx_sgemm(onyx_kernels_get()->sgemm, false, false, m, n, k, 1.0f, a, k, b, n, 0.0f,
                          out, n, &par, work);
    }
    if (c->ct == ONYX_DTYPE_DOUBLE) {
        onyx_dgemm(false, false, m, n, k, 1.0, a, k, b, n, 0.0, out, n, &par);
        return ONYX_OK;
    }
    const uint64_t *A = a, *B = b;
    uint64_t *C = out;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++)
            C[i * n + j] = 0;
        for (int64_t p = 0; p < k; p++) {
            uint64_t av = A[i * k + p];
            for (int64_t j = 0; j < n; j++)
                C[i * n + j] += av * B[p * n + j];
        }
    }
    return ONYX_OK;
}

/* Contracts a with b: labels in both and needed later are batch axes,
 * in both and not needed are summed by the GEMM, the rest are M (a) or N (b)
 * axes. Labels in one operand only and not needed are summed first. */
static onyx_status ein_contract(ein_ctx *c, ein_t *a, ein_t *b, const bool *needed, ein_t *out) {
    onyx_exec *x = c->x;
    bool drop[EIN_MAX_LABELS] = {false};
    for (int i = 0; i < a->n; i++)
        if (!needed[a->lab[i]] && ein_find(b, a->lab[i]) < 0) drop[a->lab[i]] = true;
    for (int i = 0; i < b->n; i++)
        if (!needed[b->lab[i]] && ein_find(a, b->lab[i]) < 0) drop[b->lab[i]] = true;
    onyx_status st;
    if ((st = ein_reduce(c, a, drop)) || (st = ein_reduce(c, b, drop))) return st;
    int bl[EIN_MAX_AXES], ml[EIN_MAX_AXES], kl[EIN_MAX_AXES], nl[EIN_MAX_AXES];
    int64_t bd[EIN_MAX_AXES], md[EIN_MAX_AXES], kd[EIN_MAX_AXES], ndm[EIN_MAX_AXES];
    int nb = 0, nm = 0, nk = 0, nn = 0;
    int64_t B = 1, M = 1, K = 1, N = 1;
    for (int i = 0; i < a->n; i++) {
        int l = a->lab[i], j = ein_find(b, l);
        if (j < 0) {
            ml[nm] = l, md[nm++] = a->dim[i], M *= a->dim[i];
            continue;
        }
        int64_t da = a->dim[i], db = b->dim[j];
        if (da != db && da != 1 && db != 1)
            return FAIL("einsum label '%c' has sizes %lld and %lld", ein_char(l), (long long)da,
                        (long long)db);
        int64_t d = da == 1 ? db : da;
        if (needed[l])
            bl[nb] = l, bd[nb++] = d, B *= d;
        else
            kl[nk] = l, kd[nk++] = d, K *= d;
    }
    for (int i = 0; i < b->n; i++)
        if (ein_find(a, b->lab[i]) < 0) nl[nn] = b->lab[i], ndm[nn++] = b->dim[i], N *= b->dim[i];
    if (nb + nm + nn > EIN_MAX_AXES) return FAIL("einsum intermediate has too many axes");
    int la[EIN_MAX_AXES], lb[EIN_MAX_AXES];
    int64_t da[EIN_MAX_AXES], db[EIN_MAX_AXES];
    int na = 0, nbb = 0;
    for (int i = 0; i < nb; i++)
        la[na] = bl[i], da[na++] = bd[i], lb[nbb] = bl[i], db[nbb++] = bd[i];
    for (int i = 0; i < nm; i++)
        la[na] = ml[i], da[na++] = md[i];
    for (int i = 0; i < nk; i++)
        la[na] = kl[i], da[na++] = kd[i], lb[nbb] = kl[i], db[nbb++] = kd[i];
    for (int i = 0; i < nn; i++)
        lb[nbb] = nl[i], db[nbb++] = ndm[i];
    ein_t pa, pb;
    if ((st = ein_permute(c, a, na, la, da, &pa)) || (st = ein_permute(c, b, nbb, lb, db, &pb)))
        return st;
    out->n = 0;
    for (int i = 0; i < nb; i++)
        out->lab[out->n] = bl[i], out->dim[out->n++] = bd[i];
    for (int i = 0; i < nm; i++)
        out->lab[out->n] = ml[i], out->dim[out->n++] = md[i];
    for (int i = 0; i < nn; i++)
        out->lab[out->n] = nl[i], out->dim[out->n++] = ndm[i];
    int64_t total = B * M * N;
    out->data = onyx_exec_scratch(x, c->es * (size_t)(total ? total : 1));
    if (!out->data) return OOM();
    for (int64_t i = 0; i < B; i++) {
        st = ein_gemm(c, M, N, K, (const char *)pa.data + (size_t)(i * M * K) * c->es,
                      (const char *)pb.data + (size_t)(i * K * N) * c->es,
                      (char *)out->data + (size_t)(i * M * N) * c->es);
        if (st) return st;
    }
    return ONYX_OK;
}

static onyx_status run_einsum(const onyx_node *nd, onyx_exec *x) {
    const ein_attr *at = nd->state;
    if (nd->n_in != at->n_in)
        return FAIL("equation has %d terms but the node has %d inputs", at->n_in, nd->n_in);
    const onyx_tensor *in[EIN_MAX_INPUTS];
    onyx_dtype dt = ONYX_DTYPE_UNDEFINED;
    for (int i = 0; i < at->n_in; i++) {
        in[i] = onyx_exec_input(x, i);
        if (!in[i]) return FAIL("missing input %d", i);
        if (i == 0)
            dt = in[i]->dtype;
        else if (in[i]->dtype != dt)
            return FAIL("inputs differ in element type");
    }
    ein_ctx c = {x, ONYX_DTYPE_INT64, 8};
    if (dt == ONYX_DTYPE_FLOAT || dt == ONYX_DTYPE_FLOAT16 || dt == ONYX_DTYPE_BFLOAT16)
        c.ct = ONYX_DTYPE_FLOAT, c.es = 4;
    else if (dt == ONYX_DTYPE_DOUBLE)
        c.ct = ONYX_DTYPE_DOUBLE;
    else if (!onyx_dtype_is_signed_int(dt) && !onyx_dtype_is_unsigned_int(dt))
        return FAIL("element type %s is not supported", onyx_dtype_name(dt));

    /* Ellipsis rank: the same for every operand up to broadcasting. */
    int ell = 0;
    for (int i = 0; i < at->n_in; i++) {
        const ein_term *t = &at->in[i];
        int letters = t->n - (t->ellipsis ? 1 : 0);
        if (t->ellipsis ? in[i]->ndim < letters : in[i]->ndim != letters)
            return FAIL("input %d has rank %d, its term needs %s%d", i, in[i]->ndim,
                        t->ellipsis ? "at least " : "", letters);
        if (t->ellipsis && in[i]->ndim - letters > ell) ell = in[i]->ndim - letters;
    }
    /* Labelled operands; repeated labels become diagonals. */
    ein_t ops[EIN_MAX_INPUTS];
    int64_t size[EIN_MAX_LABELS];
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        size[l] = -1;
    onyx_status st;
    for (int i = 0; i < at->n_in; i++) {
        const ein_term *t = &at->in[i];
        const onyx_tensor *T = in[i];
        int labs[ONYX_MAX_DIMS];
        int ax = 0, letters = t->n - (t->ellipsis ? 1 : 0), e = T->ndim - letters;
        for (int k = 0; k < t->n; k++) {
            if (t->lab[k] >= 0) {
                labs[ax++] = t->lab[k];
                continue;
            }
            for (int q = 0; q < e; q++)
                labs[ax++] = EIN_LETTERS + (ell - e) + q;
        }
        int64_t count = onyx_tensor_count(T);
        void *data = T->data;
        if (T->dtype != c.ct) {
            data = onyx_exec_scratch(x, c.es * (size_t)(count ? count : 1));
            if (!data) return OOM();
            if (count) onyx_convert(c.ct, data, T->dtype, T->data, count, false);
        }
        int64_t tst[ONYX_MAX_DIMS], s = 1;
        for (int k = T->ndim - 1; k >= 0; k--)
            tst[k] = s, s *= T->dims[k];
        ein_t *o = &ops[i];
        int64_t st2[EIN_MAX_AXES];
        o->n = 0;
        bool diag = false;
        for (int k = 0; k < T->ndim; k++) {
            int j = ein_find(o, labs[k]);
            if (j >= 0) {
                if (o->dim[j] != T->dims[k])
                    return FAIL("input %d repeats a label over sizes %lld and %lld", i,
                                (long long)o->dim[j], (long long)T->dims[k]);
                st2[j] += tst[k];
                diag = true;
                continue;
            }
            o->lab[o->n] = labs[k];
            o->dim[o->n] = T->dims[k];
            st2[o->n++] = tst[k];
        }
        o->data = diag ? ein_gather(&c, data, o->n, o->dim, st2) : data;
        if (diag && !o->data) return OOM();
        for (int k = 0; k < o->n; k++) {
            int l = o->lab[k];
            if (size[l] < 0 || size[l] == 1)
                size[l] = o->dim[k];
            else if (o->dim[k] != 1 && o->dim[k] != size[l])
                return FAIL("einsum label sizes %lld and %lld do not match", (long long)size[l],
                            (long long)o->dim[k]);
        }
    }
    /* Output labels. */
    int olab[EIN_MAX_AXES], on = 0;
    if (at->explicit_out) {
        for (int k = 0; k < at->out.n; k++) {
            if (at->out.lab[k] >= 0)
                olab[on++] = at->out.lab[k];
            else
                for (int q = 0; q < ell; q++)
                    olab[on++] = EIN_LETTERS + q;
        }
    } else {
        /* Letters written exactly once in the equation, 'A'..'Z' before 'a'..'z'. */
        int uses[EIN_LETTERS] = {0};
        for (int i = 0; i < at->n_in; i++)
            for (int k = 0; k < at->in[i].n; k++)
                if (at->in[i].lab[k] >= 0) uses[at->in[i].lab[k]]++;
        for (int q = 0; q < ell; q++)
            olab[on++] = EIN_LETTERS + q;
        for (int l = 0; l < EIN_LETTERS; l++)
            if (uses[(l + 26) % EIN_LETTERS] == 1) olab[on++] = (l + 26) % EIN_LETTERS;
    }
    if (on > ONYX_MAX_DIMS) return FAIL("einsum output has more than %d axes", ONYX_MAX_DIMS);
    bool in_out[EIN_MAX_LABELS] = {false};
    int64_t odims[ONYX_MAX_DIMS];
    for (int k = 0; k < on; k++) {
        in_out[olab[k]] = true;
        odims[k] = size[olab[k]] < 0 ? 1 : size[olab[k]];
    }
    onyx_tensor *Y;
    if ((st = onyx_exec_output(x, 0, dt, on, odims, &Y))) return st;

    /* Left to right: contract the running product with the next operand. */
    ein_t cur = ops[0];
    for (int i = 1; i <= at->n_in; i++) {
        bool needed[EIN_MAX_LABELS];
        memcpy(needed, in_out, sizeof needed);
        for (int j = i + 1; j < at->n_in; j++)
            for (int k = 0; k < ops[j].n; k++)
                needed[ops[j].lab[k]] = true;
        if (i == at->n_in) {
            bool drop[EIN_MAX_LABELS];
            for (int l = 0; l < EIN_MAX_LABELS; l++)
                drop[l] = !needed[l];
            if ((st = ein_reduce(&c, &cur, drop))) return st;
            break;
        }
        ein_t next;
        if ((st = ein_contract(&c, &cur, &ops[i], needed, &next))) return st;
        cur = next;
    }
    ein_t res;
    if ((st = ein_permute(&c, &cur, on, olab, odims, &res))) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count) onyx_convert(dt, Y->data, c.ct, res.data, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Det

static onyx_status run_det(const onyx_node *nd, onyx_exec *x) {
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return FAIL("missing input");
    if (X->ndim < 2 || X->dims[X->ndim - 1] != X->dims[X->ndim - 2])
        return FAIL("input must be (..., M, M)");
    int64_t m = X->dims[X->ndim - 1];
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim - 2, X->dims, &Y);
    if (st) return st;
    int64_t batch = onyx_tensor_count(Y), mm = m * m;
    double *a =
        onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, (mm ? mm : 1) * batch + 1));
    double *det = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, batch + 1));
    if (!a || !det) return OOM();
    if (mm > 0 && batch > 0)
        onyx_convert(ONYX_DTYPE_DOUBLE, a, X->dtype, X->data, mm * batch, false);
    for (int64_t b = 0; b < batch; b++) {
        double *A = a + b * mm, d = 1;
        for (int64_t k = 0; k < m && d != 0; k++) {
            int64_t p = k;
            for (int64_t i = k + 1; i < m; i++)
                if (fabs(A[i * m + k]) > fabs(A[p * m + k])) p = i;
            if (A[p * m + k] == 0) {
                d = 0;
                break;
            }
            if (p != k) {
                for (int64_t j = 0; j < m; j++) {
                    double t = A[k * m + j];
                    A[k * m + j] = A[p * m + j];
                    A[p * m + j] = t;
                }
                d = -d;
            }
            double piv = A[k * m + k];
            d *= piv;
            for (int64_t i = k + 1; i < m; i++) {
                double f = A[i * m + k] / piv;
                if (f == 0) continue;
                for (int64_t j = k + 1; j < m; j++)
                    A[i * m + j] -= f * A[k * m + j];
            }
        }
        det[b] = d;
    }
    if (batch) onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_DOUBLE, det, batch, false);
    (void)nd;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_EIN                                                                                      \
    (ONYX_T_INTS | ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) |                          \
     ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_DET3 (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))

const onyx_op_schema onyx_ops_misc[] = {
    {"", "Einsum", 12, 1, -1, 1, 1, T_EIN, init_einsum, run_einsum, 0},
    {"", "Det", 11, 1, 1, 1, 1, T_DET3, NULL, run_det, 0},
    {"", "Det", 22, 1, 1, 1, 1, T_DET3 | ONYX_T(ONYX_DTYPE_BFLOAT16), NULL, run_det, 0},
    {0},
};
