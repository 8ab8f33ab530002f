/* dispatch.h - the table of kernels chosen once for this CPU. Ops ask here
 * instead of testing CPU features themselves: the one place the choice is
 * made. ONYX_KERNELS=generic|avx2|avx512 in the environment caps the choice
 * (for testing the twins against each other). */
#ifndef ONYX_DISPATCH_H
#define ONYX_DISPATCH_H

#include "kernels/conv_kernels.h"
#include "kernels/depthwise.h"
#include "kernels/ew.h"
#include "kernels/gemm.h"
#include "kernels/rows.h"
#include "kernels/winograd.h"

typedef struct onyx_kernels {
    const char *isa;                  /* "generic", "avx2", "avx512" */
    const onyx_sgemm_kernel *sgemm;
    const onyx_conv_kernels *conv;    /* epilogues, per-plane depthwise */
    const onyx_depthwise_kernels *depthwise; /* channel-blocked depthwise */
    const onyx_winograd_kernels *winograd; /* tile transforms */
    const onyx_ew_kernels *ew;        /* float32 elementwise arithmetic and math */
    const onyx_row_kernels *rows;     /* softmax, layer norm */
} onyx_kernels;

/* The kernels for this CPU. Thread-safe; chosen on first call. */
const onyx_kernels *onyx_kernels_get(void);

/* Whether this CPU runs the *_avx512.c kernels: they are compiled for
 * AVX-512 F, BW, DQ and VL (Makefile ISA_avx512), and the compiler may use
 * any of the four. */
bool onyx_kernels_avx512_ok(void);

extern const onyx_sgemm_kernel onyx_sgemm_kernel_avx2;
extern const onyx_sgemm_kernel onyx_sgemm_kernel_avx512;

#endif
