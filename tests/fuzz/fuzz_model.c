/* fuzz_model.c - libFuzzer entry point for everything after decoding: a
 * model that decodes may still carry attributes, shapes, types or graphs
 * that no exporter writes. Each input is loaded as a model (graph build,
 * shape inference, passes, node init and weight packing), a session is
 * made, and when that succeeds it runs once on inputs of the declared
 * shapes (symbolic dims 2, at most 64 Ki elements each) filled from the
 * fuzz input's bytes. Any crash, sanitizer report or leak is a bug; an
 * error status is the right answer to a bad model.
 *
 * Not built by the Makefile; build by hand with the library compiled by
 * clang for coverage (docs/testing.md), e.g.:
 *   make BUILD=build/fuzz CC=clang SAN=1 OPT=-O1 EXTRA_CFLAGS="-fsanitize=fuzzer-no-link \
 *        -Wno-unknown-warning-option -Wno-duplicate-decl-specifier" build/fuzz/libonyx.a
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *     tests/fuzz/fuzz_model.c build/fuzz/libonyx.a -ljpeg -lpng -lz -lm \
 *     -pthread -o build/fuzz/fuzz_model
 *   mkdir -p corpus && find .venv -name model.onnx -path '*data/node*' | \
 *     while read f; do cp "$f" corpus/$(echo "$f" | md5sum | cut -c1-16).onnx; done
 *   build/fuzz/fuzz_model -max_len=65536 -rss_limit_mb=4096 -timeout=20 corpus/ */
#include "onyx.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_INPUTS = 16, MAX_ELEMS = 1 << 16 };

static size_t dtype_size(onyx_dtype t) {
    switch (t) {
    case ONYX_DTYPE_FLOAT: case ONYX_DTYPE_INT32: case ONYX_DTYPE_UINT32: return 4;
    case ONYX_DTYPE_DOUBLE: case ONYX_DTYPE_INT64: case ONYX_DTYPE_UINT64: return 8;
    case ONYX_DTYPE_INT8: case ONYX_DTYPE_UINT8: case ONYX_DTYPE_BOOL: return 1;
    case ONYX_DTYPE_INT16: case ONYX_DTYPE_UINT16: case ONYX_DTYPE_FLOAT16:
    case ONYX_DTYPE_BFLOAT16: return 2;
    default: return 0;
    }
}

/* Small values from the fuzz bytes: floats in [-2, 2), integers in [0, 4)
 * (valid as indices and axes for most small shapes), booleans 0/1. */
static void fill(void *p, onyx_dtype t, size_t n, const uint8_t *src, size_t len) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t b = len ? src[i % len] : (uint8_t)i;
        switch (t) {
        case ONYX_DTYPE_FLOAT: ((float *)p)[i] = (float)(b % 64) / 16.0f - 2.0f; break;
        case ONYX_DTYPE_DOUBLE: ((double *)p)[i] = (double)(b % 64) / 16.0 - 2.0; break;
        case ONYX_DTYPE_INT64: case ONYX_DTYPE_UINT64: ((int64_t *)p)[i] = b % 4; break;
        case ONYX_DTYPE_INT32: case ONYX_DTYPE_UINT32: ((int32_t *)p)[i] = b % 4; break;
        case ONYX_DTYPE_BOOL: ((uint8_t *)p)[i] = b & 1; break;
        default: memset((uint8_t *)p + i * dtype_size(t), b % 4, dtype_size(t)); break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    onyx_options opts;
    onyx_options_init(&opts);
    opts.threads = 1;
    opts.memory_limit = (size_t)256 << 20;
    onyx_error err;
    onyx_model *m = NULL;
    if (onyx_model_load_memory(data, size, NULL, &opts, &m, &err)) return 0;
    onyx_session *s = NULL;
    if (onyx_session_new(m, &opts, &s, &err)) {
        onyx_model_free(m);
        return 0;
    }
    const char *names[MAX_INPUTS];
    onyx_tensor_view views[MAX_INPUTS];
    void *bufs[MAX_INPUTS];
    int n = 0;
    bool runnable = onyx_model_num_inputs(m) <= MAX_INPUTS;
    for (int i = 0; runnable && i < onyx_model_num_inputs(m); i++) {
        onyx_io_info info;
        onyx_model_input(m, i, &info);
        size_t es = dtype_size(info.dtype);
        if (info.kind != ONYX_KIND_TENSOR || !es || info.ndim < 0) {
            runnable = false;
            break;
        }
        onyx_tensor_view *v = &views[n];
        memset(v, 0, sizeof *v);
        v->dtype = info.dtype;
        v->ndim = info.ndim;
        size_t elems = 1;
        for (int d = 0; d < info.ndim; d++) {
            v->dims[d] = info.dims[d] < 0 ? 2 : info.dims[d];
            if (v->dims[d] > MAX_ELEMS || (elems *= (size_t)v->dims[d]) > MAX_ELEMS) {
                runnable = false;
                break;
            }
        }
        if (!runnable) break;
        bufs[n] = malloc(elems * es + 1);
        fill(bufs[n], info.dtype, elems, data, size);
        v->data = bufs[n];
        names[n++] = info.name;
    }
    if (runnable) {
        int n_out = onyx_model_num_outputs(m);
        onyx_tensor_view *outs = calloc((size_t)n_out + 1, sizeof *outs);
        onyx_session_run_tensors(s, n, names, views, n_out, NULL, outs, &err);
        free(outs);
    }
    for (int i = 0; i < n; i++) free(bufs[i]);
    onyx_session_free(s);
    onyx_model_free(m);
    return 0;
}
