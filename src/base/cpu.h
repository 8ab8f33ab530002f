/* cpu.h - CPU feature detection (CPUID + OS-enabled state via XGETBV),
 * done once; src/kernels/dispatch.c chooses kernels from it. */
#ifndef ONYX_CPU_H
#define ONYX_CPU_H

#include <stdbool.h>

typedef struct onyx_cpu {
    bool sse41, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512_bf16, avx512_vnni;
    bool amx_tile, amx_bf16, amx_int8; /* usable: the OS granted the tile state */
} onyx_cpu;

/* The features of this CPU that the OS lets us use. Thread-safe; computed
 * on first call. */
const onyx_cpu *onyx_cpu_get(void);

#endif
