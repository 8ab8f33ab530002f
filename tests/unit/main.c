/* main.c - runs every registered unit test; exits non-zero on any failure.
 * An optional argument runs only the tests whose name contains it. */
#include "unit.h"

#include <string.h>

static unit_test *tests;

void unit_register(unit_test *t) {
    t->next = tests;
    tests = t;
}

int main(int argc, char **argv) {
    /* Registration order is reversed by the list; run in file order. */
    unit_test *rev = NULL;
    while (tests) {
        unit_test *n = tests->next;
        tests->next = rev;
        rev = tests;
        tests = n;
    }
    int passed = 0, failed = 0;
    for (unit_test *t = rev; t; t = t->next) {
        if (argc > 1 && !strstr(t->name, argv[1])) continue;
        int f = 0;
        t->fn(&f);
        if (f) {
            printf("FAIL %s\n", t->name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
