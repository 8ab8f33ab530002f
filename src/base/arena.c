/* arena.c - chunked bump allocator; see arena.h. */
#include "base/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#endif

struct onyx_arena_chunk {
    onyx_arena_chunk *next;
    size_t size;
    _Alignas(64) unsigned char data[];
};

enum { ARENA_CHUNK = 64 * 1024 };

void onyx_arena_init(onyx_arena *a) { memset(a, 0, sizeof *a); }

void onyx_arena_deinit(onyx_arena *a) {
    onyx_arena_chunk *c = a->head;
    while (c) {
        onyx_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    memset(a, 0, sizeof *a);
}

void *onyx_arena_alloc(onyx_arena *a, size_t size) {
    size_t align = size >= 256 ? 64 : 16;
    if (size > SIZE_MAX / 2) return NULL;
    if (size == 0) size = 1;
    size_t off = a->head ? (a->used + align - 1) & ~(align - 1) : 0;
    if (!a->head || off + size > a->head->size) {
        size_t cap = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        bool big = a->head && size > ARENA_CHUNK / 4;
        /* calloc: a big chunk comes zeroed from the OS without a pass over
         * it (packed weights are then written once, not twice). */
        onyx_arena_chunk *c = big ? calloc(1, sizeof *c + cap) : malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->size = cap;
        if (big) {
            /* A big block gets its own chunk behind the head, so the head's
             * free tail stays usable for small allocations. */
            c->next = a->head->next;
            a->head->next = c;
            a->total += size;
            return c->data;
        }
        c->next = a->head;
        a->head = c;
        off = 0;
    }
    a->used = off + size;
    a->total += size;
    void *p = a->head->data + off;
    memset(p, 0, size);
    return p;
}

void *onyx_arena_calloc(onyx_arena *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / 2 / size) return NULL;
    return onyx_arena_alloc(a, n * size);
}

char *onyx_arena_strndup(onyx_arena *a, const char *s, size_t len) {
    char *p = onyx_arena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *onyx_arena_strdup(onyx_arena *a, const char *s) { return onyx_arena_strndup(a, s, strlen(s)); }

void onyx_heap_trim(void) {
    /* Only with glibc's own allocator: under AddressSanitizer malloc is the
     * sanitizer's, and glibc's malloc_trim walks arenas that were never set
     * up (it crashed a sanitizer build's server worker). */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    malloc_trim(0);
#endif
}
