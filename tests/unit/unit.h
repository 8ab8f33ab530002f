/* unit.h - a minimal unit-test harness: tests register themselves with
 * UNIT_TEST(name) { ... } and fail through CHECK/CHECK_NEAR; main.c runs them
 * all and prints the closing "N passed, N failed" line. */
#ifndef ONYX_UNIT_H
#define ONYX_UNIT_H

#include <math.h>
#include <stdio.h>

typedef struct unit_test {
    const char *name;
    void (*fn)(int *failed);
    struct unit_test *next;
} unit_test;

void unit_register(unit_test *t);

#define UNIT_TEST(name)                                                           \
    static void name(int *unit_failed_);                                          \
    static unit_test name##_rec = {#name, name, 0};                               \
    __attribute__((constructor)) static void name##_reg(void) { unit_register(&name##_rec); } \
    static void name(int *unit_failed_)

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            *unit_failed_ = 1;                                                          \
        }                                                                               \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                 \
    do {                                                                                      \
        double a_ = (double)(a), b_ = (double)(b);                                            \
        if (!(fabs(a_ - b_) <= (tol)) && !(isnan(a_) && isnan(b_))) {                         \
            fprintf(stderr, "  %s:%d: %s = %.9g, %s = %.9g (tol %g)\n", __FILE__, __LINE__,  \
                    #a, a_, #b, b_, (double)(tol));                                           \
            *unit_failed_ = 1;                                                                \
        }                                                                                     \
    } while (0)

#endif
