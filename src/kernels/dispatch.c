/* dispatch.c - picks each kernel's ISA variant from the CPU features, once;
 * see dispatch.h. */
#include "kernels/dispatch.h"

#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static onyx_kernels table;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
    const onyx_cpu *cpu = onyx_cpu_get();
    const char *cap = getenv("ONYX_KERNELS");
    int level = 2; /* 0 generic, 1 avx2, 2 avx512 */
    if (cap && strcmp(cap, "generic") == 0) level = 0;
    if (cap && strcmp(cap, "avx2") == 0) level = 1;
    table.isa = "generic";
    table.sgemm = &onyx_sgemm_kernel_generic;
    table.conv = &onyx_conv_kernels_generic;
    table.depthwise = &onyx_depthwise_generic;
    table.winograd = &onyx_winograd_generic;
    table.ew = &onyx_ew_kernels_generic;
    table.rows = &onyx_row_kernels_generic;
    if (level >= 1 && cpu->avx2 && cpu->fma) {
        table.isa = "avx2";
        table.sgemm = &onyx_sgemm_kernel_avx2;
        table.conv = &onyx_conv_kernels_avx2;
        table.depthwise = &onyx_depthwise_avx2;
        table.winograd = &onyx_winograd_avx2;
        table.ew = &onyx_ew_kernels_avx2;
        table.rows = &onyx_row_kernels_avx2;
    }
    /* AVX-512 has its own GEMM micro-kernel; the convolution kernels stay
     * AVX2 there (every AVX-512 CPU has AVX2 and FMA). */
    if (level >= 2 && onyx_kernels_avx512_ok()) {
        table.isa = "avx512";
        table.sgemm = &onyx_sgemm_kernel_avx512;
    }
}

bool onyx_kernels_avx512_ok(void) {
    const onyx_cpu *cpu = onyx_cpu_get();
    return cpu->avx512f && cpu->avx512bw && cpu->avx512dq && cpu->avx512vl;
}

const onyx_kernels *onyx_kernels_get(void) {
    pthread_once(&once, choose);
    return &table;
}
