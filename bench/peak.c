/* peak.c - this machine's float32 FMA peak: the compute ceiling that any
 * engine's GFLOP/s is measured against (bench/compare.py reads it).
 *
 * Each thread runs independent multiply-add chains on registers only, no
 * memory operand: AVX2+FMA (8 lanes, 12 chains) and, where the CPU has it,
 * AVX-512F (16 lanes, 24 chains); enough chains to hide the FMA latency on
 * every x86-64 core we know of. The chains start from distinct values read
 * at run time, so the compiler cannot merge them into one (a test that
 * counted ten chains but ran one reported 124 GFLOP/s on a core whose peak
 * is 104). One thread, then all threads at once (on SMT siblings the
 * all-threads figure is less than the sum).
 *
 * Usage: peak [--seconds S] [--threads N]   prints one JSON object:
 *   {"isa": "avx2", "threads": 2, "gflops_1": 103.8, "gflops_all": 207.1}
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { ROUNDS = 100000 }; /* rounds of every chain between clock reads */

/* Distinct start values, read through a volatile pointer at run time. */
static volatile float seed[32];

__attribute__((target("avx2,fma"))) static double chains_avx2(double seconds) {
    enum { N = 12 };
    __m256 acc[N];
    for (int i = 0; i < N; i++) acc[i] = _mm256_set1_ps(seed[i]);
    const __m256 m = _mm256_set1_ps(seed[30]), a = _mm256_set1_ps(seed[31]);
    long rounds = 0;
    const double t0 = now();
    double t;
    do {
        for (int r = 0; r < ROUNDS; r++) {
            _Pragma("GCC unroll 16") for (int i = 0; i < N; i++) acc[i] =
                _mm256_fmadd_ps(acc[i], m, a);
        }
        rounds += ROUNDS;
    } while ((t = now()) - t0 < seconds);
    float sink = 0;
    for (int i = 0; i < N; i++) sink += _mm256_cvtss_f32(acc[i]);
    seed[0] = sink; /* keeps the chains live */
    return (double)rounds * N * 8 * 2 / (t - t0) * 1e-9;
}

__attribute__((target("avx512f"))) static double chains_avx512(double seconds) {
    enum { N = 24 };
    __m512 acc[N];
    for (int i = 0; i < N; i++) acc[i] = _mm512_set1_ps(seed[i]);
    const __m512 m = _mm512_set1_ps(seed[30]), a = _mm512_set1_ps(seed[31]);
    long rounds = 0;
    const double t0 = now();
    double t;
    do {
        for (int r = 0; r < ROUNDS; r++) {
            _Pragma("GCC unroll 32") for (int i = 0; i < N; i++) acc[i] =
                _mm512_fmadd_ps(acc[i], m, a);
        }
        rounds += ROUNDS;
    } while ((t = now()) - t0 < seconds);
    float sink = 0;
    for (int i = 0; i < N; i++) sink += _mm512_reduce_add_ps(acc[i]);
    seed[0] = sink;
    return (double)rounds * N * 16 * 2 / (t - t0) * 1e-9;
}

typedef struct {
    double (*fn)(double);
    double seconds, gflops;
} job;

static void *run_job(void *p) {
    job *j = p;
    j->gflops = j->fn(j->seconds);
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = 0.3;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atol(argv[i + 1]);
    }
    if (threads < 1 || threads > 256 || !(seconds > 0)) {
        fprintf(stderr, "usage: peak [--seconds S] [--threads N]\n");
        return 2;
    }
    for (int i = 0; i < 32; i++) seed[i] = 1.0f + (float)i * 1e-3f;
    seed[30] = 0.999999f;
    seed[31] = 1e-7f;
    __builtin_cpu_init();
    const char *isa;
    double (*fn)(double);
    if (__builtin_cpu_supports("avx512f")) isa = "avx512f", fn = chains_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isa = "avx2", fn = chains_avx2;
    else {
        printf("{\"isa\": \"none\"}\n");
        return 0;
    }
    fn(0.05); /* wakes the core's vector unit and clock */
    const double one = fn(seconds);
    job jobs[256];
    pthread_t tid[256];
    double all = 0;
    for (long i = 0; i < threads; i++) {
        jobs[i] = (job){fn, seconds, 0};
        if (pthread_create(&tid[i], NULL, run_job, &jobs[i])) return 1;
    }
    for (long i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        all += jobs[i].gflops;
    }
    printf("{\"isa\": \"%s\", \"threads\": %ld, \"gflops_1\": %.1f, \"gflops_all\": %.1f}\n", isa,
           threads, one, all);
    return 0;
}
