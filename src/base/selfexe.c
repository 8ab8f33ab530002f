/* selfexe.c - finds the payload appended to an executable by `onyx bundle`,
 * parses its manifest and maps its entries in place; lists the shared
 * objects of the process for `onyx --version`. See selfexe.h for the format.
 */
#define _GNU_SOURCE
#include "base/selfexe.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// Little-endian fields

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void onyx_selfexe_trailer(uint8_t *out, uint64_t exe_size, uint64_t manifest_offset,
                          uint64_t manifest_size, uint64_t file_size) {
    memset(out, 0, ONYX_SELFEXE_TRAILER);
    put_u32(out + 0, ONYX_SELFEXE_VERSION);
    put_u32(out + 4, ONYX_SELFEXE_TRAILER);
    put_u64(out + 8, exe_size);
    put_u64(out + 16, manifest_offset);
    put_u64(out + 24, manifest_size);
    put_u64(out + 32, file_size);
    memcpy(out + ONYX_SELFEXE_TRAILER - 8, ONYX_SELFEXE_MAGIC, 8);
}

// ----------------------------------------------------------------------------
// Names and numbers

int onyx_selfexe_valid_name(const char *s, int slash) {
    size_t n = strlen(s);
    if (n == 0 || n > ONYX_SELFEXE_MAX_NAME || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || (slash && c == '/' && s[i + 1] != '.');
        if (!ok) return 0;
    }
    return 1;
}

/* A decimal u64 without sign, leading zeros (other than "0") or overflow. */
static int parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!*s || (s[0] == '0' && s[1])) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

// ----------------------------------------------------------------------------
// Manifest

/* Splits `line` in place at the first `max - 1` spaces into fields[]; the
 * last field keeps the rest of the line. Returns the field count. */
static int split(char *line, char **fields, int max) {
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == ' ') {
            *p = 0;
            fields[n++] = p + 1;
        }
    }
    return n;
}

/* Parses x->text (NUL-terminated) into entries and params. Every offset is
 * checked to lie inside the payload; names must be valid and unique. */
static onyx_status parse_manifest(onyx_selfexe *x, uint64_t manifest_offset, onyx_error *err) {
    size_t lines = 1;
    for (const char *p = x->text; *p; p++)
        lines += *p == '\n';
    x->entries = calloc(lines, sizeof *x->entries);
    x->params = calloc(lines, sizeof *x->params);
    if (!x->entries || !x->params) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    char *line = x->text;
    int lineno = 0;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        char *f[4];
        int nf = split(line, f, 4);
        if (lineno == 1) {
            if (nf != 2 || strcmp(f[0], "onyx-bundle") != 0 || strcmp(f[1], "1") != 0)
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "the manifest does not start with 'onyx-bundle 1'");
        } else if (nf == 4 && (strcmp(f[0], "model") == 0 || strcmp(f[0], "file") == 0)) {
            onyx_selfexe_kind kind = f[0][0] == 'm' ? ONYX_SELFEXE_MODEL : ONYX_SELFEXE_FILE;
            uint64_t off, size;
            if (!onyx_selfexe_valid_name(f[1], kind == ONYX_SELFEXE_FILE) ||
                !parse_u64(f[2], &off) || !parse_u64(f[3], &size))
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "manifest line %d is malformed",
                                   lineno);
            if (off < x->exe_size || off > manifest_offset || size > manifest_offset - off)
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "manifest line %d: entry '%s' lies outside the payload", lineno,
                                   f[1]);
            if (kind == ONYX_SELFEXE_MODEL && (off % ONYX_SELFEXE_ALIGN || size == 0))
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "manifest line %d: model '%s' is empty or not aligned", lineno,
                                   f[1]);
            if (onyx_selfexe_find(x, kind, f[1]))
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "manifest line %d: '%s' appears twice", lineno, f[1]);
            x->entries[x->n_entries++] = (onyx_selfexe_entry){kind, f[1], off, size};
        } else if (nf == 4 && strcmp(f[0], "param") == 0) {
            if (!onyx_selfexe_find(x, ONYX_SELFEXE_MODEL, f[1]) ||
                !onyx_selfexe_valid_name(f[2], 0))
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "manifest line %d is malformed",
                                   lineno);
            x->params[x->n_params++] = (onyx_selfexe_param){f[1], f[2], f[3]};
        } else {
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "manifest line %d is malformed",
                               lineno);
        }
        line = nl ? nl + 1 : NULL;
    }
    if (lineno == 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the manifest is empty");
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Opening

/* Opens the running executable: /proc/self/exe, or when /proc is not mounted
 * (some sandboxes) the path the kernel was given at exec time. */
static int open_self(const char **used) {
    *used = "/proc/self/exe";
    int fd = open(*used, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return fd;
    const char *fn = (const char *)getauxval(AT_EXECFN);
    if (fn && strchr(fn, '/')) {
        *used = fn;
        fd = open(fn, O_RDONLY | O_CLOEXEC);
    }
    return fd;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

onyx_status onyx_selfexe_open(const char *path, onyx_selfexe *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    out->fd = -1;
    const char *used = path;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : open_self(&used);
    if (fd < 0) return onyx_errorf(err, ONYX_ERR_IO, "cannot open %s: %s", used, strerror(errno));
    out->fd = fd;
    onyx_status st = ONYX_OK;
    out->path = strdup(used);
    if (!out->path) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = onyx_errorf(err, ONYX_ERR_IO, "%s is not a regular file", used);
        goto fail;
    }
    out->file_size = out->exe_size = (uint64_t)sb.st_size;
    if (out->file_size < ONYX_SELFEXE_TRAILER) return ONYX_OK;

    uint8_t t[ONYX_SELFEXE_TRAILER];
    if (pread_all(fd, t, sizeof t, out->file_size - sizeof t) != 0) {
        st = onyx_errorf(err, ONYX_ERR_IO, "cannot read %s: %s", used, strerror(errno));
        goto fail;
    }
    if (memcmp(t + sizeof t - 8, ONYX_SELFEXE_MAGIC, 8) != 0) return ONYX_OK; /* no payload */

    uint32_t version = get_u32(t), tsize = get_u32(t + 4);
    uint64_t exe = get_u64(t + 8), moff = get_u64(t + 16), msize = get_u64(t + 24);
    uint64_t fsize = get_u64(t + 32);
    const uint64_t end = out->file_size - ONYX_SELFEXE_TRAILER;
    if (version != ONYX_SELFEXE_VERSION || tsize != ONYX_SELFEXE_TRAILER) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                         "%s: bundle format %u is not supported (this onyx reads format %d)", used,
                         (unsigned)version, ONYX_SELFEXE_VERSION);
        goto fail;
    }
    if (fsize != out->file_size || exe > moff || moff > end || msize != end - moff || msize == 0 ||
        msize > ONYX_SELFEXE_MAX_MANIFEST) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                         "%s: the bundled payload is damaged (file size %llu, trailer says "
                         "%llu): was the file truncated, stripped or appended to?",
                         used, (unsigned long long)out->file_size, (unsigned long long)fsize);
        goto fail;
    }
    out->exe_size = exe;
    out->text = malloc((size_t)msize + 1);
    if (!out->text) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if (pread_all(fd, out->text, (size_t)msize, moff) != 0) {
        st = onyx_errorf(err, ONYX_ERR_IO, "cannot read %s: %s", used, strerror(errno));
        goto fail;
    }
    out->text[msize] = 0;
    if (strlen(out->text) != msize) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s: the bundle manifest holds a NUL byte",
                         used);
        goto fail;
    }
    st = parse_manifest(out, moff, err);
    if (st) {
        onyx_error_prefix(err, "%s", used);
        goto fail;
    }
    return ONYX_OK;
fail:
    onyx_selfexe_close(out);
    return st;
}

void onyx_selfexe_close(onyx_selfexe *x) {
    if (x->fd >= 0) close(x->fd);
    free(x->entries);
    free(x->params);
    free(x->text);
    free(x->path);
    memset(x, 0, sizeof *x);
    x->fd = -1;
}

// ----------------------------------------------------------------------------
// Lookups and access

const onyx_selfexe_entry *onyx_selfexe_find(const onyx_selfexe *x, onyx_selfexe_kind kind,
                                            const char *name) {
    for (int i = 0; i < x->n_entries; i++)
        if (x->entries[i].kind == kind && strcmp(x->entries[i].name, name) == 0)
            return &x->entries[i];
    return NULL;
}

const onyx_selfexe_entry *onyx_selfexe_first_model(const onyx_selfexe *x) {
    for (int i = 0; i < x->n_entries; i++)
        if (x->entries[i].kind == ONYX_SELFEXE_MODEL) return &x->entries[i];
    return NULL;
}

const char *onyx_selfexe_param_get(const onyx_selfexe *x, const char *model, const char *key) {
    for (int i = 0; i < x->n_params; i++)
        if (strcmp(x->params[i].model, model) == 0 && strcmp(x->params[i].key, key) == 0)
            return x->params[i].value;
    return NULL;
}

onyx_status onyx_selfexe_map(const onyx_selfexe *x, const onyx_selfexe_entry *e, onyx_mapping *out,
                             onyx_error *err) {
    out->data = NULL;
    out->size = 0;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || e->offset % (uint64_t)page != 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "%s: entry '%s' is not page-aligned in the file", x->path, e->name);
    if (e->size == 0) return ONYX_OK;
    if (e->size > SIZE_MAX)
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "%s: entry '%s' is too large", x->path,
                           e->name);
    void *p = mmap(NULL, (size_t)e->size, PROT_READ, MAP_PRIVATE, x->fd, (off_t)e->offset);
    if (p == MAP_FAILED)
        return onyx_errorf(err, ONYX_ERR_IO, "cannot map '%s' from %s: %s", e->name, x->path,
                           strerror(errno));
    /* Loading reads every weight once: ask for read-ahead of the whole range
     * so a cold page cache is filled in large reads. Advisory only. */
    (void)madvise(p, (size_t)e->size, MADV_WILLNEED);
    out->data = p;
    out->size = (size_t)e->size;
    return ONYX_OK;
}

onyx_status onyx_selfexe_read(const onyx_selfexe *x, const onyx_selfexe_entry *e, uint8_t **out,
                              size_t *size, onyx_error *err) {
    *out = NULL;
    *size = 0;
    if (e->size >= SIZE_MAX)
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "%s: entry '%s' is too large", x->path,
                           e->name);
    uint8_t *buf = malloc((size_t)e->size + 1);
    if (!buf)
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", e->name);
    if (pread_all(x->fd, buf, (size_t)e->size, e->offset) != 0) {
        free(buf);
        return onyx_errorf(err, ONYX_ERR_IO, "cannot read '%s' from %s", e->name, x->path);
    }
    buf[e->size] = 0;
    *out = buf;
    *size = (size_t)e->size;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Shared objects in the process

typedef struct so_list {
    char *buf;
    size_t cap, len;
    int only_libc;
} so_list;

static int is_libc_part(const char *base) {
    static const char *const parts[] = {"libc.so",    "libm.so",    "libpthread.so",
                                        "libdl.so",   "librt.so",   "ld-linux",
                                        "linux-vdso", "linux-gate", "libmvec.so"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strncmp(base, parts[i], strlen(parts[i])) == 0) return 1;
    return 0;
}

static int add_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    so_list *l = data;
    const char *name = info->dlpi_name;
    if (!name || !*name) return 0; /* the executable itself */
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strncmp(base, "linux-vdso", 10) == 0 || strncmp(base, "linux-gate", 10) == 0) return 0;
    if (!is_libc_part(base)) l->only_libc = 0;
    int n = snprintf(l->buf + l->len, l->cap - l->len, "%s%s", l->len ? " " : "", base);
    if (n > 0) l->len += (size_t)n < l->cap - l->len ? (size_t)n : l->cap - l->len - 1;
    return 0;
}

int onyx_selfexe_shared_objects(char *buf, size_t cap) {
    if (!cap) return 0;
    buf[0] = 0;
    so_list l = {buf, cap, 0, 1};
    dl_iterate_phdr(add_object, &l);
    return l.only_libc;
}
