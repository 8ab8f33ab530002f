/* classify.c - a minimal program using only the public API (include/onyx.h):
 * load a model, fill its first input, run it, print the top-5 of its output.
 *
 *   build/example MODEL [INPUT.f32] [--fill VALUE] [--threads N]
 *
 * INPUT.f32 holds the first input's elements as raw little-endian float32 in
 * row-major order (numpy: `x.astype('<f4').tofile('input.f32')`). Without it
 * every element is VALUE (default 0.5). Symbolic dimensions such as the batch
 * size are taken as 1. The model's first input must be a float tensor and its
 * first output a numeric tensor; scores are printed as the model emits them
 * (no softmax is applied).
 */
#include "onyx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_K 5

/* Reads exactly `count` floats from a raw file into `data`. Returns 0 on
 * success, or prints why not and returns -1. */
static int read_floats(const char *path, float *data, int64_t count) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t got = fread(data, sizeof(float), (size_t)count, f);
    int extra = fgetc(f); /* the file must hold exactly `count` floats */
    fclose(f);
    if (got != (size_t)count || extra != EOF) {
        fprintf(stderr, "%s: expected exactly %lld float32 values (%lld bytes)\n", path,
                (long long)count, (long long)count * 4);
        return -1;
    }
    return 0;
}

/* Element i of a numeric tensor as a double, for ranking. */
static double element(const onyx_tensor_view *t, int64_t i) {
    switch (t->dtype) {
    case ONYX_DTYPE_FLOAT:
        return ((const float *)t->data)[i];
    case ONYX_DTYPE_DOUBLE:
        return ((const double *)t->data)[i];
    case ONYX_DTYPE_INT64:
        return (double)((const int64_t *)t->data)[i];
    case ONYX_DTYPE_INT32:
        return ((const int32_t *)t->data)[i];
    case ONYX_DTYPE_UINT8:
        return ((const uint8_t *)t->data)[i];
    case ONYX_DTYPE_INT8:
        return ((const int8_t *)t->data)[i];
    default:
        return 0;
    }
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *input_path = NULL;
    float fill = 0.5f;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc)
            fill = strtof(argv[++i], NULL);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!model_path)
            model_path = argv[i];
        else if (!input_path)
            input_path = argv[i];
        else {
            fprintf(stderr, "unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "usage: %s MODEL [INPUT.f32] [--fill VALUE] [--threads N]\n", argv[0]);
        return 2;
    }

    int status = 1;
    onyx_model *model = NULL;
    onyx_session *session = NULL;
    float *input = NULL; /* (dims of the first input) */
    onyx_error err;

    /* 1. Load the model. Options carry the thread count (0 = all cores). */
    onyx_options opts;
    onyx_options_init(&opts);
    opts.threads = threads;
    if (onyx_model_load_file(model_path, &opts, &model, &err) != ONYX_OK) {
        fprintf(stderr, "cannot load %s: %s\n", model_path, err.message);
        goto done;
    }

    /* 2. Describe the first input and build a tensor of its shape. */
    onyx_io_info in;
    if (onyx_model_num_inputs(model) < 1 || onyx_model_input(model, 0, &in) != ONYX_OK ||
        in.kind != ONYX_KIND_TENSOR || in.dtype != ONYX_DTYPE_FLOAT || in.ndim < 0) {
        fprintf(stderr, "the model's first input is not a float tensor of known rank\n");
        goto done;
    }
    onyx_tensor_view x = {.dtype = ONYX_DTYPE_FLOAT, .ndim = in.ndim};
    int64_t count = 1;
    for (int d = 0; d < in.ndim; d++) {
        x.dims[d] = in.dims[d] >= 0 ? in.dims[d] : 1; /* symbolic dims -> 1 */
        if (x.dims[d] > 0 && count > ((int64_t)1 << 40) / x.dims[d]) {
            fprintf(stderr, "the first input is too large\n");
            goto done;
        }
        count *= x.dims[d];
    }
    input = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    if (!input) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if (input_path) {
        if (read_floats(input_path, input, count) != 0) goto done;
    } else {
        for (int64_t i = 0; i < count; i++)
            input[i] = fill;
    }
    x.data = input;

    /* 3. A session holds the per-run state; run it once. The output view is
     * owned by the session and stays valid until the next run or free. */
    if (onyx_session_new(model, &opts, &session, &err) != ONYX_OK) {
        fprintf(stderr, "cannot create a session: %s\n", err.message);
        goto done;
    }
    onyx_io_info out_info;
    onyx_model_output(model, 0, &out_info);
    const char *in_name = in.name, *out_name = out_info.name;
    onyx_tensor_view y;
    if (onyx_session_run_tensors(session, 1, &in_name, &x, 1, &out_name, &y, &err) != ONYX_OK) {
        fprintf(stderr, "run failed: %s\n", err.message);
        goto done;
    }

    /* 4. Rank the output's elements (all of them, flattened: a [1, classes]
     * output ranks the classes) and print the best TOP_K. */
    int64_t n = 1;
    for (int d = 0; d < y.ndim; d++)
        n *= y.dims[d];
    if (n <= 0 || (y.dtype != ONYX_DTYPE_FLOAT && y.dtype != ONYX_DTYPE_DOUBLE &&
                   y.dtype != ONYX_DTYPE_INT64 && y.dtype != ONYX_DTYPE_INT32 &&
                   y.dtype != ONYX_DTYPE_UINT8 && y.dtype != ONYX_DTYPE_INT8)) {
        fprintf(stderr, "output '%s' is not a non-empty numeric tensor\n", out_name);
        goto done;
    }
    int64_t top[TOP_K];
    int k = 0;
    for (int64_t i = 0; i < n; i++) {
        /* Insertion into a sorted list of at most TOP_K indices. */
        double v = element(&y, i);
        int pos = k;
        while (pos > 0 && element(&y, top[pos - 1]) < v)
            pos--;
        if (pos >= TOP_K) continue;
        if (k < TOP_K) k++;
        memmove(&top[pos + 1], &top[pos], (size_t)(k - 1 - pos) * sizeof top[0]);
        top[pos] = i;
    }
    printf("argmax: %lld\n", (long long)top[0]);
    printf("top-%d of '%s':\n", k, out_name);
    for (int i = 0; i < k; i++)
        printf("  %2d. class %-6lld score %.6g\n", i + 1, (long long)top[i], element(&y, top[i]));
    status = 0;

done:
    onyx_session_free(session);
    onyx_model_free(model);
    free(input);
    return status;
}
