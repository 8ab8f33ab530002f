/* rng.c - MT19937 and numpy's legacy RandomState distributions (see
 * rng.h). The algorithms follow numpy's documented legacy behaviour so that
 * seeded streams match np.random.RandomState exactly. */
#include "ops/rng.h"

#include <math.h>
#include <time.h>

void onyx_mt_seed(onyx_mt19937 *m, uint32_t seed) {
    m->key[0] = seed;
    for (int i = 1; i < 624; i++)
        m->key[i] = 1812433253u * (m->key[i - 1] ^ (m->key[i - 1] >> 30)) + (uint32_t)i;
    m->pos = 624;
    m->has_gauss = false;
    m->gauss = 0.0;
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t onyx_mt_entropy_seed(const void *salt) {
    struct timespec ts = {0, 0};
    timespec_get(&ts, TIME_UTC);
    uint64_t z = splitmix64((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    z = splitmix64(z ^ (uint64_t)(uintptr_t)salt);
    return (uint32_t)(z ^ (z >> 32));
}

uint32_t onyx_mt_next(onyx_mt19937 *m) {
    if (m->pos >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (m->key[i] & 0x80000000u) | (m->key[(i + 1) % 624] & 0x7fffffffu);
            m->key[i] = m->key[(i + 397) % 624] ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0);
        }
        m->pos = 0;
    }
    uint32_t y = m->key[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

double onyx_mt_double(onyx_mt19937 *m) {
    uint32_t a = onyx_mt_next(m) >> 5, b = onyx_mt_next(m) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

double onyx_mt_gauss(onyx_mt19937 *m) {
    if (m->has_gauss) {
        m->has_gauss = false;
        return m->gauss;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * onyx_mt_double(m) - 1.0;
        x2 = 2.0 * onyx_mt_double(m) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    m->gauss = f * x1;
    m->has_gauss = true;
    return f * x2;
}

/* Binomial(n, p) by inversion, numpy's legacy path when
 * n * min(p, 1 - p) <= 30. The bound is truncated to an integer, and p == 0
 * still consumes a draw (the legacy code has no shortcut). */
static int64_t binomial_inversion(onyx_mt19937 *m, int64_t n, double p) {
    double q = 1.0 - p, qn = exp((double)n * log(q)), np = (double)n * p;
    int64_t bound = (int64_t)fmin((double)n, np + 10.0 * sqrt(np * q + 1));
    int64_t x = 0;
    double px = qn, u = onyx_mt_double(m);
    while (u > px) {
        x++;
        if (x > bound) {
            x = 0;
            px = qn;
            u = onyx_mt_double(m);
        } else {
            u -= px;
            px = ((double)(n - x + 1) * p * px) / ((double)x * q);
        }
    }
    return x;
}

int onyx_mt_bernoulli(onyx_mt19937 *m, double p) {
    if (p <= 0.5) return (int)binomial_inversion(m, 1, p);
    return (int)(1 - binomial_inversion(m, 1, 1.0 - p));
}
