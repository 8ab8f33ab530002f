/* selfexe.h - the payload that `onyx bundle` appends to an executable: its
 * on-disk format, finding it in the running executable, and mapping its
 * entries zero-copy. Does not own writing bundles or the command line
 * (src/cli/bundle.c) nor model loading (include/onyx.h).
 *
 * File layout (all integers little-endian; docs/bundle.md has the details):
 *
 *   [the executable, unchanged] [zero padding to ONYX_SELFEXE_ALIGN]
 *   [model 0] [padding] [model 1] [padding] ...      models start aligned
 *   [files, e.g. labels]  [manifest text]  [trailer: ONYX_SELFEXE_TRAILER bytes]
 *
 * Trailer: u32 version (1), u32 trailer size (64), u64 executable size,
 * u64 manifest offset, u64 manifest size, u64 file size, u64 reserved (0),
 * then 8 bytes "ONYXBNDL" that end the file.
 *
 * Manifest: UTF-8 text, one record per line, fields separated by one space:
 *   onyx-bundle 1
 *   model NAME OFFSET SIZE          a model (OFFSET a multiple of ONYX_SELFEXE_ALIGN)
 *   file NAME OFFSET SIZE           a file a setting refers to (labels)
 *   param MODEL KEY VALUE           a setting of MODEL; VALUE is the rest of the line
 * Offsets are absolute file offsets, inside [executable size, manifest offset).
 */
#ifndef ONYX_SELFEXE_H
#define ONYX_SELFEXE_H

#include "base/file.h"
#include "onyx.h"

#include <stddef.h>
#include <stdint.h>

#define ONYX_SELFEXE_ALIGN 65536 /* covers 4K, 16K and 64K pages: models mmap in place */
#define ONYX_SELFEXE_TRAILER 64
#define ONYX_SELFEXE_MAGIC "ONYXBNDL"
#define ONYX_SELFEXE_VERSION 1
#define ONYX_SELFEXE_MAX_MANIFEST ((uint64_t)16 << 20)
#define ONYX_SELFEXE_MAX_NAME 128

typedef enum onyx_selfexe_kind {
    ONYX_SELFEXE_MODEL = 0,
    ONYX_SELFEXE_FILE,
    ONYX_SELFEXE_KIND_COUNT
} onyx_selfexe_kind;

/* One stored item. `name` points into the manifest text. */
typedef struct onyx_selfexe_entry {
    onyx_selfexe_kind kind;
    const char *name;
    uint64_t offset, size;
} onyx_selfexe_entry;

/* One setting of a model (strings point into the manifest text). */
typedef struct onyx_selfexe_param {
    const char *model, *key, *value;
} onyx_selfexe_param;

/* An executable file opened for its payload. */
typedef struct onyx_selfexe {
    int fd;     /* read-only, close-on-exec */
    char *path; /* what was opened ("/proc/self/exe", ...) */
    uint64_t file_size;
    uint64_t exe_size;           /* bytes before the payload: the executable proper */
    int n_entries;               /* 0 when the file has no payload */
    onyx_selfexe_entry *entries; /* (n_entries) in manifest order */
    int n_params;
    onyx_selfexe_param *params; /* (n_params) in manifest order */
    char *text;                 /* the manifest, NUL-separated in place */
} onyx_selfexe;

/* Opens `path` (NULL: the running executable, through /proc/self/exe, else
 * the path it was started with) and reads its payload, if any. A file
 * without a trailer is not an error: it has exe_size == file_size and no
 * entries. A trailer that does not add up (truncated or tampered file) is
 * ONYX_ERR_INVALID_MODEL. On success the caller releases *out with
 * onyx_selfexe_close (on failure there is nothing to release). */
onyx_status onyx_selfexe_open(const char *path, onyx_selfexe *out, onyx_error *err);
void onyx_selfexe_close(onyx_selfexe *x);

/* The entry named `name` of that kind, or NULL. Borrowed from `x`. */
const onyx_selfexe_entry *onyx_selfexe_find(const onyx_selfexe *x, onyx_selfexe_kind kind,
                                            const char *name);
/* The first model entry, or NULL when there is none. */
const onyx_selfexe_entry *onyx_selfexe_first_model(const onyx_selfexe *x);
/* The value of setting `key` of model `model`, or NULL. Borrowed from `x`. */
const char *onyx_selfexe_param_get(const onyx_selfexe *x, const char *model, const char *key);

/* Maps entry `e` read-only, in place (no copy): the bytes are the
 * executable's own pages, shared with every process running it. The mapping
 * stays valid after onyx_selfexe_close; release it with onyx_file_unmap. */
onyx_status onyx_selfexe_map(const onyx_selfexe *x, const onyx_selfexe_entry *e, onyx_mapping *out,
                             onyx_error *err);
/* Reads entry `e` into malloc'ed memory with a NUL after the last byte
 * (*size excludes it); the caller frees *out. For small files (labels). */
onyx_status onyx_selfexe_read(const onyx_selfexe *x, const onyx_selfexe_entry *e, uint8_t **out,
                              size_t *size, onyx_error *err);

/* Encodes a trailer (see the layout above) into out[ONYX_SELFEXE_TRAILER]. */
void onyx_selfexe_trailer(uint8_t *out, uint64_t exe_size, uint64_t manifest_offset,
                          uint64_t manifest_size, uint64_t file_size);

/* Whether `s` is a valid entry or model name: 1 to ONYX_SELFEXE_MAX_NAME
 * characters of [A-Za-z0-9._-] (plus '/' for file names when `slash`), not
 * starting with '.'. */
int onyx_selfexe_valid_name(const char *s, int slash);

/* Writes the base names of the shared objects loaded into this process
 * (for `onyx --version`), space-separated, into buf (always NUL-terminated).
 * Returns 1 when every one of them belongs to the C library (libc, libm,
 * libpthread, libdl, librt, ld-linux, the vDSO), that is when the
 * third-party libraries were linked statically; 0 otherwise. */
int onyx_selfexe_shared_objects(char *buf, size_t cap);

#endif /* ONYX_SELFEXE_H */
