/* file.c - POSIX mmap and whole-file reads; see file.h. */
#define _GNU_SOURCE
#include "base/file.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

onyx_status onyx_file_map(const char *path, onyx_mapping *out, onyx_error *err) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return onyx_errorf(err, ONYX_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return onyx_errorf(err, ONYX_ERR_IO, "cannot map %s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return onyx_errorf(err, ONYX_ERR_IO, "cannot map %s: %s", path, strerror(e));
        }
        out->data = p;
        out->size = (size_t)st.st_size;
    }
    close(fd);
    return ONYX_OK;
}

void onyx_file_unmap(onyx_mapping *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

void onyx_pages_drop(const void *p, size_t n) {
    long ps = sysconf(_SC_PAGESIZE);
    if (!p || ps <= 0) return;
    uintptr_t page = (uintptr_t)ps, lo = ((uintptr_t)p + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)p + n) / page * page;
    if (hi <= lo || (uintptr_t)p + n < (uintptr_t)p) return;
    /* Advice, not a requirement: a failure leaves the pages where they are. */
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

size_t onyx_page_size(void) {
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

void *onyx_pages_alloc(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void onyx_pages_free(void *p, size_t n) {
    if (p) munmap(p, n);
}

void onyx_pages_populate(void *p, size_t n) {
#if defined(__linux__)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels refuse it (EINVAL) */
#endif
    long ps = sysconf(_SC_PAGESIZE);
    if (!p || ps <= 0) return;
    uintptr_t page = (uintptr_t)ps, lo = ((uintptr_t)p + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)p + n) / page * page;
    if (hi <= lo || (uintptr_t)p + n < (uintptr_t)p) return;
    /* Advice: where refused, the pages come at first touch as usual. */
    (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
    (void)p, (void)n;
#endif
}

bool onyx_pages_move(void *dst, void *src, size_t n) {
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7; older kernels refuse it (EINVAL) */
#endif
    /* MREMAP_DONTUNMAP keeps src mapped (empty); FIXED puts the pages at
     * dst, replacing the pages there. One page-table move, no copy. */
    void *r = mremap(src, n, n, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst);
    return r != MAP_FAILED;
#else
    (void)dst, (void)src, (void)n;
    return false;
#endif
}

onyx_status onyx_file_read(const char *path, uint8_t **out, size_t *size, onyx_error *err) {
    *out = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return onyx_errorf(err, ONYX_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) goto oom;
    for (;;) {
        if (len == cap) {
            uint8_t *nb = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2) : NULL;
            if (!nb) goto oom;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return onyx_errorf(err, ONYX_ERR_IO, "cannot read %s", path);
    }
    fclose(f);
    *out = buf;
    *size = len;
    return ONYX_OK;
oom:
    free(buf);
    fclose(f);
    return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
}

size_t onyx_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return 0;
    return (size_t)pages * (size_t)size;
}

int onyx_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
