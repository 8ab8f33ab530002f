/* file.h - read-only file mappings. The only place that knows about mmap. */
#ifndef ONYX_FILE_H
#define ONYX_FILE_H

#include "onyx.h"

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

/* Reads a whole file into malloc'ed memory (the caller frees *out). */
onyx_status onyx_file_read(const char *path, uint8_t **out, size_t *size, onyx_error *err);

/* Bytes of physical memory on this machine (0 when unknown). */
size_t onyx_physical_memory(void);

/* Number of CPUs this process may run on (sched affinity), at least 1. */
int onyx_cpu_count(void);

#endif
