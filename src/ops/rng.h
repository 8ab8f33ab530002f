/* rng.h - the random number generator of the random operators: MT19937
 * with numpy's legacy RandomState draws (random_sample, the polar gauss,
 * binomial by inversion), so that seeded ops reproduce the ONNX reference
 * (np.random.RandomState(seed)) bit for bit. Not here: the ops themselves
 * (random.c, Dropout in shape.c). */
#ifndef ONYX_RNG_H
#define ONYX_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct onyx_mt19937 {
    uint32_t key[624];
    int pos;
    bool has_gauss; /* the polar method makes two normals at a time */
    double gauss;
} onyx_mt19937;

/* numpy's RandomState(seed) for an integer seed (init_genrand). */
void onyx_mt_seed(onyx_mt19937 *m, uint32_t seed);
/* A seed from the clock and `salt` (e.g. an address), for ops without a
 * seed attribute: different on every call. */
uint32_t onyx_mt_entropy_seed(const void *salt);
uint32_t onyx_mt_next(onyx_mt19937 *m);
/* RandomState.random_sample(): 53 random bits in [0, 1). */
double onyx_mt_double(onyx_mt19937 *m);
/* RandomState.standard_normal() (legacy polar Box-Muller). */
double onyx_mt_gauss(onyx_mt19937 *m);
/* RandomState.binomial(1, p) for p in [0, 1] (legacy inversion). */
int onyx_mt_bernoulli(onyx_mt19937 *m, double p);

#endif
