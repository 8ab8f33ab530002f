/* test_release.c - giving back the memory of constants at load: dropped
 * pages of a file mapping read back intact, and a model whose Conv weights
 * are released (packed GEMM, Winograd with its small-image fallback, weights
 * replaced by BatchNormalization folding, shared weights, a weight that is
 * also a graph output) computes what a plain reference convolution does,
 * loaded from a file and from memory, at every alignment of its weights. */
#include "base/file.h"
#include "core/graph.h"
#include "testmodel.h"
#include "unit.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes `n` bytes to a new temporary file; returns its path (the caller
 * unlinks and frees it) or NULL. */
static char *temp_file(const void *data, size_t n) {
    char *path = malloc(64);
    if (!path) return NULL;
    snprintf(path, 64, "/tmp/onyx_release_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    bool ok = write(fd, data, n) == (ssize_t)n;
    close(fd);
    if (!ok) {
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

UNIT_TEST(pages_drop_keeps_file_mapping_contents) {
    enum { N = 5 * 4096 + 123 };
    unsigned char *bytes = malloc(N);
    for (int i = 0; i < N; i++) bytes[i] = (unsigned char)(i * 7 + i / 4096);
    char *path = temp_file(bytes, N);
    CHECK(path != NULL);
    if (!path) {
        free(bytes);
        return;
    }
    onyx_mapping m;
    onyx_error err = {0};
    CHECK(onyx_file_map(path, &m, &err) == ONYX_OK);
    CHECK(m.size == N && memcmp(m.data, bytes, N) == 0);
    onyx_pages_drop(m.data + 100, N - 200); /* partial pages at both ends stay */
    onyx_pages_drop(m.data, 0);
    onyx_pages_drop(NULL, 10);
    CHECK(memcmp(m.data, bytes, N) == 0);
    onyx_file_unmap(&m);
    unlink(path);
    free(path);
    free(bytes);
}

// ----------------------------------------------------------------------------
// A small CNN whose weights the engine releases

enum { C = 48 };

/* y (K, H, W) = conv(x (C, H, W), w (K, C, r, r)) + b, zero padding r / 2. */
static void ref_conv(const double *x, int h, int w, const float *wt, int r, const float *b,
                     double *y) {
    int p = r / 2;
    for (int k = 0; k < C; k++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                double s = b ? b[k] : 0.0;
                for (int c = 0; c < C; c++)
                    for (int u = 0; u < r; u++)
                        for (int v = 0; v < r; v++) {
                            int ii = i + u - p, jj = j + v - p;
                            if (ii < 0 || jj < 0 || ii >= h || jj >= w) continue;
                            s += wt[((k * C + c) * r + u) * r + v] * x[(c * h + ii) * w + jj];
                        }
                y[(k * h + i) * w + j] = s;
            }
}

typedef struct cnn {
    float wa[C * C * 9], ba[C], wb[C * C * 9], wc[C * C], wd[C * C];
    float s[C], bi[C], m[C], v[C];
} cnn;

/* a = Conv3x3(x) (Winograd, W from the file); d = BN(Conv3x3(a)) (Winograd,
 * W folded on the heap); f = Conv1x1(Conv1x1(d)) sharing wc; y =
 * Conv1x1(f, wd) with wd also an output. `pad` shifts every initializer's
 * bytes, so that each is sometimes aligned (a view) and sometimes not (a
 * copy). */
static tm_buf cnn_model(const cnn *n, int pad) {
    tm_buf g = {0};
    const char *p3[] = {"pads=ints:1,1,1,1", NULL};
    char name[16];
    snprintf(name, sizeof name, "u%.*s", pad, "___");
    tm_node(&g, "Conv x,wa,ba -> a", p3);
    tm_node(&g, "Conv a,wb -> c", p3);
    tm_node(&g, "BatchNormalization c,s,bi,m,v -> d", NULL);
    tm_node(&g, "Conv d,wc -> e", NULL);
    tm_node(&g, "Conv e,wc -> f", NULL);
    tm_node(&g, "Conv f,wd -> y", NULL);
    int64_t w3[4] = {C, C, 3, 3}, w1[4] = {C, C, 1, 1}, cd[1] = {C};
    int64_t xd[4] = {1, C, -1, -1}, yd[4] = {1, C, -1, -1};
    tm_init_f32(&g, "ba", 1, cd, n->ba);
    tm_init(&g, name, ONYX_DTYPE_INT8, 1, (int64_t[]){1}, "\1"); /* unused; shifts the rest */
    tm_init_f32(&g, "wa", 4, w3, n->wa);
    tm_init_f32(&g, "wb", 4, w3, n->wb);
    tm_init_f32(&g, "s", 1, cd, n->s);
    tm_init_f32(&g, "bi", 1, cd, n->bi);
    tm_init_f32(&g, "m", 1, cd, n->m);
    tm_init_f32(&g, "v", 1, cd, n->v);
    tm_init_f32(&g, "wc", 4, w1, n->wc);
    tm_init_f32(&g, "wd", 4, w1, n->wd);
    tm_input(&g, "x", ONYX_DTYPE_FLOAT, 4, xd);
    tm_output(&g, "y", ONYX_DTYPE_FLOAT, 4, yd);
    tm_output(&g, "wd", ONYX_DTYPE_FLOAT, 4, w1);
    return tm_model(&g, 17);
}

static void cnn_reference(const cnn *n, const float *x, int h, int w, double *y) {
    size_t sz = (size_t)C * h * w;
    double *t0 = malloc(sz * sizeof *t0), *t1 = malloc(sz * sizeof *t1);
    for (size_t i = 0; i < sz; i++) t0[i] = x[i];
    ref_conv(t0, h, w, n->wa, 3, n->ba, t1);
    ref_conv(t1, h, w, n->wb, 3, NULL, t0);
    for (int k = 0; k < C; k++)
        for (int i = 0; i < h * w; i++) {
            double *q = &t0[(size_t)k * h * w + i];
            *q = (*q - n->m[k]) / sqrt((double)n->v[k] + 1e-5) * n->s[k] + n->bi[k];
        }
    ref_conv(t0, h, w, n->wc, 1, NULL, t1);
    ref_conv(t1, h, w, n->wc, 1, NULL, t0);
    ref_conv(t0, h, w, n->wd, 1, NULL, y);
    free(t0);
    free(t1);
}

/* Runs the model at each size (few tiles: Winograd's fallback reads W; many
 * tiles: Winograd) and compares y with the reference and wd with itself. */
static int check_model(onyx_model *model, const cnn *n) {
    onyx_session *s = NULL;
    onyx_error err = {0};
    if (onyx_session_new(model, NULL, &s, &err)) return 0;
    const int sizes[][2] = {{2, 3}, {9, 10}, {13, 5}, {2, 3}};
    int ok = 1;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0] && ok; t++) {
        int h = sizes[t][0], w = sizes[t][1];
        size_t sz = (size_t)C * h * w;
        float *x = malloc(sz * sizeof *x);
        double *ref = malloc(sz * sizeof *ref);
        for (size_t i = 0; i < sz; i++) x[i] = (float)((i * 37 + t) % 101) / 101.0f - 0.5f;
        cnn_reference(n, x, h, w, ref);
        onyx_tensor_view in = tm_view(ONYX_DTYPE_FLOAT, 4, (int64_t[]){1, C, h, w}, x), out[2];
        const char *names[] = {"x"};
        ok = onyx_session_run_tensors(s, 1, names, &in, 2, NULL, out, &err) == ONYX_OK;
        double worst = 0;
        for (size_t i = 0; ok && i < sz; i++)
            worst = fmax(worst, fabs(((const float *)out[0].data)[i] - ref[i]));
        if (ok && worst > 1e-3) {
            fprintf(stderr, "  %dx%d: max abs diff %g\n", h, w, worst);
            ok = 0;
        }
        ok = ok && memcmp(out[1].data, n->wd, sizeof n->wd) == 0;
        free(x);
        free(ref);
    }
    onyx_session_free(s);
    return ok;
}

/* Pages moved out of a heap block (as the load's page pool does with a
 * released weight copy) arrive with their contents; the block keeps its
 * address range, reading zeros there, and can still be written and freed.
 * Where the OS cannot move pages, nothing changes. */
UNIT_TEST(pages_move_from_heap_block) {
    const size_t ps = onyx_page_size(), n = 8 * ps;
    unsigned char *block = malloc(n + 2 * ps);
    unsigned char *dst = onyx_pages_alloc(n);
    CHECK(block && dst);
    if (!block || !dst) {
        free(block);
        onyx_pages_free(dst, n);
        return;
    }
    unsigned char *src = (unsigned char *)(((uintptr_t)block + ps - 1) / ps * ps);
    for (size_t i = 0; i < n; i++) src[i] = (unsigned char)(i * 13 + i / ps);
    bool moved = onyx_pages_move(dst, src, n);
    for (size_t i = 0; i < n; i++) {
        if (dst[i] != (moved ? (unsigned char)(i * 13 + i / ps) : 0) ||
            src[i] != (moved ? 0 : (unsigned char)(i * 13 + i / ps))) {
            CHECK(false);
            break;
        }
    }
    memset(src, 1, n); /* still mapped */
    CHECK(src[n - 1] == 1 && (!moved || dst[n - 1] == (unsigned char)((n - 1) * 13 + 7)));
    onyx_pages_free(dst, n);
    free(block);
}

UNIT_TEST(released_conv_weights_keep_results) {
    cnn *n = malloc(sizeof *n);
    unsigned st = 12345;
#define RND(scale) ((st = st * 1103515245u + 12345u), ((float)((st >> 8) & 0xffff) / 65536.0f - 0.5f) * (scale))
    for (int i = 0; i < C * C * 9; i++) n->wa[i] = RND(0.2f), n->wb[i] = RND(0.2f);
    for (int i = 0; i < C * C; i++) n->wc[i] = RND(0.3f), n->wd[i] = RND(0.3f);
    for (int i = 0; i < C; i++) {
        n->ba[i] = RND(1.0f);
        n->s[i] = 1.0f + RND(0.5f);
        n->bi[i] = RND(1.0f);
        n->m[i] = RND(0.5f);
        n->v[i] = 1.0f + RND(1.0f);
    }
#undef RND
    for (int pad = 0; pad < 4; pad++) {
        tm_buf bytes = cnn_model(n, pad);
        char *path = temp_file(bytes.p, bytes.n);
        CHECK(path != NULL);
        for (int from_file = 0; path && from_file < 2; from_file++) {
            onyx_options o;
            onyx_options_init(&o);
            o.threads = 1 + from_file;
            onyx_model *model = NULL;
            onyx_error err = {0};
            onyx_status s = from_file ? onyx_model_load_file(path, &o, &model, &err)
                                      : onyx_model_load_memory(bytes.p, bytes.n, NULL, &o, &model, &err);
            CHECK(s == ONYX_OK);
            if (s) {
                fprintf(stderr, "  %s\n", err.message);
                continue;
            }
            CHECK(onyx_model_num_nodes(model) == 5); /* BN folded */
            int ok = check_model(model, n);
            if (!ok) fprintf(stderr, "  pad %d, from %s\n", pad, from_file ? "file" : "memory");
            CHECK(ok);
            onyx_model_free(model);
        }
        if (path) unlink(path);
        free(path);
        free(bytes.p);
    }
    free(n);
}

/* The constant named `name`, or NULL. */
static const onyx_tensor *constant_named(const onyx_model *m, const char *name) {
    const onyx_graph *g = m->graph;
    for (int s = 0; s < g->n_slots; s++)
        if (g->slots[s].constant && strcmp(g->slots[s].name, name) == 0)
            return &g->slots[s].constant->tensor;
    return NULL;
}

/* Whether t's bytes lie in the model file's mapping. */
static bool in_file(const onyx_model *m, const onyx_tensor *t) {
    const uint8_t *p = t->data;
    return p >= m->map.data && p < m->map.data + m->map.size;
}

/* An embedding table read only by Gather stays (or goes back to being) a
 * view into the file, misaligned or not; one read by another op too keeps
 * its aligned copy. Both give the right rows. A small constant read at run
 * time (a bias) is a copy, never a view: reading a view maps the file's
 * page-cache pages around it (up to 2 MB on kernels that map large folios
 * whole), released weights included. */
UNIT_TEST(gathered_tables_read_from_the_file) {
    enum { ROWS = 1100, COLS = 16 }; /* over ONYX_PB_VIEW_MIN_BYTES */
    float *emb = malloc(sizeof(float) * ROWS * COLS), *emb2 = malloc(sizeof(float) * ROWS * COLS);
    double sum2 = 0;
    for (int i = 0; i < ROWS * COLS; i++) {
        emb[i] = (float)i * 0.25f;
        emb2[i] = (float)(i % 97) - 40.0f;
        sum2 += emb2[i];
    }
    for (int pad = 0; pad < 4; pad++) {
        tm_buf g = {0};
        char name[16];
        snprintf(name, sizeof name, "u%.*s", pad, "___");
        const char *keep[] = {"keepdims=i:0", NULL};
        tm_node(&g, "Gather emb,idx -> g1", NULL);
        tm_node(&g, "Gather emb2,idx -> g2", NULL);
        tm_node(&g, "ReduceSum emb2 -> s", keep);
        tm_node(&g, "Add g1,bias -> gb", NULL);
        int64_t ed[2] = {ROWS, COLS}, id[1] = {3}, gd[2] = {3, COLS};
        tm_init(&g, name, ONYX_DTYPE_INT8, 1, (int64_t[]){1}, "\1"); /* shifts the rest */
        tm_init_f32(&g, "emb", 2, ed, emb);
        tm_init_f32(&g, "emb2", 2, ed, emb2);
        tm_init_f32(&g, "bias", 0, NULL, (const float[]){0.5f});
        tm_input(&g, "idx", ONYX_DTYPE_INT64, 1, id);
        tm_output(&g, "g1", ONYX_DTYPE_FLOAT, 2, gd);
        tm_output(&g, "g2", ONYX_DTYPE_FLOAT, 2, gd);
        tm_output(&g, "s", ONYX_DTYPE_FLOAT, 0, NULL);
        tm_output(&g, "gb", ONYX_DTYPE_FLOAT, 2, gd);
        tm_buf bytes = tm_model(&g, 17);
        char *path = temp_file(bytes.p, bytes.n);
        onyx_model *model = NULL;
        onyx_session *s = NULL;
        onyx_error err = {0};
        CHECK(path && onyx_model_load_file(path, NULL, &model, &err) == ONYX_OK);
        CHECK(model && onyx_session_new(model, NULL, &s, &err) == ONYX_OK);
        if (model) {
            const onyx_tensor *e = constant_named(model, "emb"), *b = constant_named(model, "bias");
            CHECK(e && in_file(model, e) && !e->heap);
            CHECK(b && !in_file(model, b) && b->heap);
        }
        int64_t idx[3] = {999, 0, -2};
        onyx_tensor_view in = tm_view(ONYX_DTYPE_INT64, 1, id, idx), out[4];
        const char *names[] = {"idx"};
        for (int run = 0; s && run < 2; run++) {
            CHECK(onyx_session_run_tensors(s, 1, names, &in, 4, NULL, out, &err) == ONYX_OK);
            const float *g1 = out[0].data, *g2 = out[1].data;
            const int rows[3] = {999, 0, ROWS - 2};
            for (int r = 0; r < 3; r++) {
                CHECK(memcmp(g1 + r * COLS, emb + rows[r] * COLS, COLS * sizeof(float)) == 0);
                CHECK(memcmp(g2 + r * COLS, emb2 + rows[r] * COLS, COLS * sizeof(float)) == 0);
            }
            CHECK_NEAR(*(const float *)out[2].data, sum2, 1e-3);
            for (int i = 0; i < 3 * COLS; i++) CHECK(((const float *)out[3].data)[i] == g1[i] + 0.5f);
        }
        onyx_session_free(s);
        onyx_model_free(model);
        if (path) unlink(path);
        free(path);
        free(bytes.p);
    }
    free(emb);
    free(emb2);
}
