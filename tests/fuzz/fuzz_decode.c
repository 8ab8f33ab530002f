/* fuzz_decode.c - libFuzzer entry point for the ONNX protobuf decoder: every
 * input is decoded as each top-level message kind, and the tensors it yields
 * are converted, so any out-of-bounds read or crash surfaces under ASan.
 * Not built by the Makefile; build by hand, e.g.:
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *     -D_POSIX_C_SOURCE=200809L tests/fuzz/fuzz_decode.c src/onnx/decode.c src/onnx/convert.c \
 *     src/onnx/encode.c src/base/arena.c src/base/error.c src/core/tensor.c \
 *     src/core/dtype.c -lm -o fuzz_decode
 *   ./fuzz_decode -max_len=4096 corpus/   (seed corpus: any model.onnx / *.pb files) */
#include "onnx/onnx.h"

#include <stddef.h>
#include <stdint.h>

static void convert_graph(const onyx_pb_graph *g) {
    for (int i = 0; g && i < g->n_initializers; i++) {
        onyx_tensor t;
        if (!onyx_pb_tensor_to_tensor(&g->initializers[i], NULL, NULL, &t, NULL))
            onyx_tensor_release(&t);
    }
    for (int i = 0; g && i < g->n_sparse_initializers; i++) {
        onyx_tensor t;
        if (!onyx_pb_sparse_to_tensor(&g->sparse_initializers[i], NULL, NULL, &t, NULL))
            onyx_tensor_release(&t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    onyx_arena arena;
    onyx_error err;
    onyx_value v;

    onyx_arena_init(&arena);
    onyx_pb_model *model;
    if (!onyx_pb_decode_model(data, size, &arena, &model, &err)) convert_graph(model->graph);
    onyx_arena_deinit(&arena);

    onyx_arena_init(&arena);
    onyx_pb_tensor *tensor;
    if (!onyx_pb_decode_tensor(data, size, &arena, &tensor, &err)) {
        onyx_tensor t;
        if (!onyx_pb_tensor_to_tensor(tensor, NULL, NULL, &t, &err)) onyx_tensor_release(&t);
    }
    onyx_pb_sequence *seq;
    if (!onyx_pb_decode_sequence(data, size, &arena, &seq, &err) &&
        !onyx_pb_sequence_to_value(seq, &v, &err))
        onyx_value_clear(&v);
    onyx_pb_map *map;
    if (!onyx_pb_decode_map(data, size, &arena, &map, &err) && !onyx_pb_map_to_value(map, &v, &err))
        onyx_value_clear(&v);
    onyx_pb_optional *opt;
    if (!onyx_pb_decode_optional(data, size, &arena, &opt, &err) &&
        !onyx_pb_optional_to_value(opt, &v, &err))
        onyx_value_clear(&v);
    onyx_arena_deinit(&arena);
    return 0;
}
