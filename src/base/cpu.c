/* cpu.c - CPUID/XGETBV feature detection; see cpu.h. The only place that
 * knows about cpuid and the Linux AMX permission request. */
#define _GNU_SOURCE
#include "base/cpu.h"

#include "onyx.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void detect(onyx_cpu *c) {
    unsigned a, b, cc, d;
    if (!__get_cpuid(1, &a, &b, &cc, &d)) return;
    bool osxsave = cc & (1u << 27);
    c->sse41 = cc & (1u << 19);
    bool avx_hw = cc & (1u << 28), fma_hw = cc & (1u << 12), f16c_hw = cc & (1u << 29);
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
    c->avx = avx_hw && ymm;
    c->fma = fma_hw && ymm;
    c->f16c = f16c_hw && ymm;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, cc, d);
    c->avx2 = (b & (1u << 5)) && ymm;
    c->avx512f = (b & (1u << 16)) && zmm;
    c->avx512dq = (b & (1u << 17)) && zmm;
    c->avx512bw = (b & (1u << 30)) && zmm;
    c->avx512vl = (b & (1u << 31)) && zmm;
    c->avx512_vnni = (cc & (1u << 11)) && zmm;
    bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    c->avx512_bf16 = (a1 & (1u << 5)) && zmm;
    /* Linux hands out the AMX tile state only on request (ARCH_REQ_XCOMP_PERM). */
    if (amx_tile && (xcr0 & (3ull << 17)) == (3ull << 17)) {
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) {
            c->amx_tile = true;
            c->amx_bf16 = amx_bf16;
            c->amx_int8 = amx_int8;
        }
    }
}
#else
static void detect(onyx_cpu *c) { (void)c; }
#endif

static onyx_cpu cpu;
static char names[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
    detect(&cpu);
    struct { bool on; const char *name; } f[] = {
        {cpu.sse41, "sse4.1"},     {cpu.avx, "avx"},           {cpu.avx2, "avx2"},
        {cpu.fma, "fma"},          {cpu.f16c, "f16c"},         {cpu.avx512f, "avx512f"},
        {cpu.avx512bw, "avx512bw"}, {cpu.avx512vl, "avx512vl"}, {cpu.avx512dq, "avx512dq"},
        {cpu.avx512_vnni, "avx512vnni"}, {cpu.avx512_bf16, "avx512bf16"},
        {cpu.amx_tile, "amx-tile"}, {cpu.amx_bf16, "amx-bf16"}, {cpu.amx_int8, "amx-int8"},
    };
    size_t k = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on && k < sizeof names)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", k ? " " : "", f[i].name);
}

const onyx_cpu *onyx_cpu_get(void) {
    pthread_once(&once, init);
    return &cpu;
}

const char *onyx_cpu_features(void) {
    pthread_once(&once, init);
    return names;
}
