/* file.h - read-only file mappings. The only place that knows about mmap. */
#ifndef ONYX_FILE_H
#define ONYX_FILE_H

#include "onyx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct onyx_mapping {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
} onyx_mapping;

/* Maps `path` read-only (private). On failure returns ONYX_ERR_IO with the
 * path and the OS reason in `err`. Release with onyx_file_unmap. */
onyx_status onyx_file_map(const char *path, onyx_mapping *out, onyx_error *err);
void onyx_file_unmap(onyx_mapping *m);

/* Gives back the physical pages lying wholly inside [p, p + n), keeping the
 * address range valid (the partial pages at either end stay). Reading them
 * again faults them back in: from the file for a private read-only file
 * mapping (so nothing is lost), as zeros for anonymous and heap memory (so
 * call it there only on bytes that will not be read again). For memory that
 * this process owns; a no-op where the OS does not support it. */
void onyx_pages_drop(const void *p, size_t n);

/* The OS page size (4096 when unknown). */
size_t onyx_page_size(void);

/* Maps n bytes (a multiple of the page size) of private, zero-filled,
 * read-write memory whose pages are given only when first touched; NULL on
 * failure. Release with onyx_pages_free(p, n). */
void *onyx_pages_alloc(size_t n);
void onyx_pages_free(void *p, size_t n);

/* Moves the physical pages of [src, src + n) to [dst, dst + n) without
 * copying them (page-aligned; dst inside memory from onyx_pages_alloc, src
 * inside one anonymous private mapping: heap or onyx_pages_alloc), leaving
 * src mapped and empty as after onyx_pages_drop. Whatever dst held is
 * replaced. Returns false, changing nothing, where the OS cannot (then the
 * caller just uses dst's own pages). */
bool onyx_pages_move(void *dst, void *src, size_t n);

/* Gives the pages lying wholly inside [p, p + n) of this process's own
 * writable anonymous memory (heap, onyx_pages_alloc) their physical pages
 * now, in one call, for memory about to be written whole: cheaper than a
 * fault per page (about 20% here). A no-op where the OS does not support it. */
void onyx_pages_populate(void *p, size_t n);

/* Reads a whole file into malloc'ed memory (the caller frees *out). */
onyx_status onyx_file_read(const char *path, uint8_t **out, size_t *size, onyx_error *err);

/* Bytes of physical memory on this machine (0 when unknown). */
size_t onyx_physical_memory(void);

/* Number of CPUs this process may run on (sched affinity), at least 1. */
int onyx_cpu_count(void);

#endif
