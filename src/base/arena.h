/* arena.h - bump allocator for objects that die together (a decoded model,
 * the IR of a loaded graph). Not for activations: those are planned by
 * src/core/plan.c. */
#ifndef ONYX_ARENA_H
#define ONYX_ARENA_H

#include <stddef.h>

typedef struct onyx_arena_chunk onyx_arena_chunk;

typedef struct onyx_arena {
    onyx_arena_chunk *head;
    size_t used;  /* bytes used in head */
    size_t total; /* bytes handed out, for statistics */
} onyx_arena;

void onyx_arena_init(onyx_arena *a);
/* Frees every chunk; the arena may be reused after. */
void onyx_arena_deinit(onyx_arena *a);
/* Returns `size` bytes aligned to 16 (64 when size >= 256), zeroed, or NULL
 * when out of memory or when size overflows. Freed by onyx_arena_deinit. */
void *onyx_arena_alloc(onyx_arena *a, size_t size);
/* n * size bytes with the multiplication overflow-checked; NULL on overflow. */
void *onyx_arena_calloc(onyx_arena *a, size_t n, size_t size);
/* Copies s[0..len) into the arena and appends a NUL. */
char *onyx_arena_strndup(onyx_arena *a, const char *s, size_t len);
char *onyx_arena_strdup(onyx_arena *a, const char *s);

/* Gives the C heap's free memory back to the OS (glibc's malloc_trim; a
 * no-op elsewhere, and under AddressSanitizer): after many blocks died at
 * once, e.g. the heap tensors of a run that recorded a memory plan, before
 * the plan's arena replaces them, so that both are not resident at once. */
void onyx_heap_trim(void);

#endif
