/* model.c - the public model and session API (include/onyx.h): loading
 * (mmap, decode, build), describing inputs/outputs, and binding inputs for a
 * run. Graph building is graph.c's; running is exec.c's. */
#include "core/exec.h"
#include "core/subbatch.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void onyx_options_init(onyx_options *o) {
    memset(o, 0, sizeof *o);
    o->optimize = 1;
}

// ----------------------------------------------------------------------------
// External data

onyx_status onyx_model_external(void *model, const char *location, const uint8_t **data,
                                size_t *size, onyx_error *err) {
    onyx_model *m = model;
    for (int i = 0; i < m->n_externals; i++) {
        if (strcmp(m->external_names[i], location) == 0) {
            *data = m->externals[i].data;
            *size = m->externals[i].size;
            return ONYX_OK;
        }
    }
    if (!m->dir)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "external data '%s' cannot be resolved for a model loaded from memory",
                           location);
    if (location[0] == '/' || strstr(location, ".."))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "external data location '%s' must be a relative path inside the model "
                           "directory",
                           location);
    size_t ld = strlen(m->dir), ll = strlen(location);
    char *path = malloc(ld + ll + 2);
    onyx_mapping *ext = realloc(m->externals, ((size_t)m->n_externals + 1) * sizeof *ext);
    if (ext) m->externals = ext;
    char **names = realloc(m->external_names, ((size_t)m->n_externals + 1) * sizeof *names);
    if (names) m->external_names = names;
    char *name = malloc(ll + 1);
    if (!path || !ext || !names || !name) {
        free(path);
        free(name);
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(path, m->dir, ld);
    path[ld] = '/';
    memcpy(path + ld + 1, location, ll + 1);
    memcpy(name, location, ll + 1);
    onyx_mapping map;
    onyx_status st = onyx_file_map(path, &map, err);
    free(path);
    if (st) {
        free(name);
        return st;
    }
    m->externals[m->n_externals] = map;
    m->external_names[m->n_externals] = name;
    m->n_externals++;
    *data = map.data;
    *size = map.size;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Recycling pages during the load
//
// A float weight misaligned in the file, or folded with a BatchNormalization,
// is copied to the heap at build time and packed at init, after which no
// run reads the copy. Fresh pages cost the kernel a fault, a clear and a
// charge each (about 0.6 ms per MB here, most of a large model's load), so
// the copy's pages are not given back to the OS but kept here, and the next
// packed block is built from them (onyx_pages_move: a page-table move, no
// copy). What is left when the load ends is given back.

typedef struct page_range {
    uintptr_t p;
    size_t n;
} page_range;

struct onyx_page_pool {
    page_range *free;    /* given, not yet taken */
    int n_free, cap_free;
    uintptr_t *given;    /* the start of every range ever given: none twice */
    int n_given, cap_given;
    page_range *regions; /* onyx_pages_alloc mappings, freed with the model */
    int n_regions, cap_regions;
    const onyx_graph **swept; /* graphs whose unused constants went already */
    int n_swept, cap_swept;
    bool closed;         /* the load is over: gifts are dropped */
};

/* Room for one more element in a growable array; false when out of memory. */
static bool grow(void **arr, int n, int *cap, size_t elem) {
    if (n < *cap) return true;
    int nc = *cap ? *cap * 2 : 16;
    void *a = realloc(*arr, (size_t)nc * elem);
    if (!a) return false;
    *arr = a;
    *cap = nc;
    return true;
}

/* Hands the whole pages inside [p, p + n), memory no run reads again (as
 * for onyx_pages_drop), to the pool; drops them when the pool cannot keep
 * them. */
static void pool_give(onyx_page_pool *pp, const void *p, size_t n) {
    const uintptr_t ps = onyx_page_size(), a = (uintptr_t)p;
    const uintptr_t lo = (a + ps - 1) / ps * ps, hi = (a + n) / ps * ps;
    if (hi <= lo || a + n < a) return;
    for (int i = 0; pp && i < pp->n_given; i++)
        if (pp->given[i] == lo) return; /* in the pool, or already taken */
    if (!pp || pp->closed || !grow((void **)&pp->given, pp->n_given, &pp->cap_given,
                                   sizeof *pp->given) ||
        !grow((void **)&pp->free, pp->n_free, &pp->cap_free, sizeof *pp->free)) {
        onyx_pages_drop(p, n);
        return;
    }
    pp->given[pp->n_given++] = lo;
    pp->free[pp->n_free++] = (page_range){lo, hi - lo};
}

/* Ends recycling: the pages still in the pool go back to the OS. */
static void pool_close(onyx_page_pool *pp) {
    if (!pp || pp->closed) return;
    for (int i = 0; i < pp->n_free; i++) onyx_pages_drop((const void *)pp->free[i].p, pp->free[i].n);
    pp->n_free = 0;
    pp->closed = true;
}

static void pool_free(onyx_page_pool *pp) {
    if (!pp) return;
    for (int i = 0; i < pp->n_regions; i++)
        onyx_pages_free((void *)pp->regions[i].p, pp->regions[i].n);
    free(pp->free);
    free(pp->given);
    free(pp->regions);
    free(pp->swept);
    free(pp);
}

void *onyx_node_alloc_packed(onyx_node *n, size_t size) {
    onyx_page_pool *pp = n->model ? n->model->pages : NULL;
    const size_t ps = onyx_page_size();
    /* Small blocks, and all once the load is over, come from the arena. */
    if (!pp || pp->closed || size < 16 * ps || size > SIZE_MAX - ps)
        return onyx_node_alloc(n, size);
    const size_t len = (size + ps - 1) / ps * ps;
    if (!grow((void **)&pp->regions, pp->n_regions, &pp->cap_regions, sizeof *pp->regions))
        return NULL;
    uint8_t *p = onyx_pages_alloc(len);
    if (!p) return NULL;
    pp->regions[pp->n_regions++] = (page_range){(uintptr_t)p, len};
    uint8_t *d = p;
    size_t left = len;
    while (left && pp->n_free) {
        page_range *r = &pp->free[pp->n_free - 1];
        size_t k = r->n < left ? r->n : left;
        if (!onyx_pages_move(d, (void *)r->p, k)) {
            /* Not movable (an old kernel): give it back as before. */
            onyx_pages_drop((const void *)r->p, r->n);
            pp->n_free--;
            continue;
        }
        r->p += k;
        r->n -= k;
        if (!r->n) pp->n_free--;
        d += k;
        left -= k;
    }
    /* The rest is fresh: all of it is about to be written. */
    if (left) onyx_pages_populate(d, left);
    return p;
}

// ----------------------------------------------------------------------------
// Releasing constants that no run will read

/* Whether [p, p + n) lies inside the model file's mapping or a mapped
 * external data file: memory whose dropped pages come back from the file. */
static bool in_mapping(const onyx_model *m, const void *p, size_t n) {
    for (int i = -1; i < m->n_externals; i++) {
        const onyx_mapping *mp = i < 0 ? &m->map : &m->externals[i];
        uintptr_t a = (uintptr_t)p, lo = (uintptr_t)mp->data;
        if (mp->data && a >= lo && n <= mp->size && a - lo <= mp->size - n) return true;
    }
    return false;
}

/* Gives back the memory of constant v, keeping its address: pages of the
 * model file come back from the file if read again; an owned copy's would
 * read as zeros, so that is done only when `unused` says nothing reads it.
 * Memory borrowed from the caller (onyx_model_load_memory) is left alone. */
static void release_value(const onyx_model *m, const onyx_value *v, bool unused) {
    if (!v || v->kind != ONYX_KIND_TENSOR || v->tensor.dtype == ONYX_DTYPE_STRING) return;
    const onyx_tensor *t = &v->tensor;
    int64_t count = onyx_tensor_count(t);
    size_t bytes = onyx_dtype_bytes(t->dtype, count);
    if (!t->data || count <= 0 || bytes == SIZE_MAX) return;
    if (in_mapping(m, t->data, bytes)) onyx_pages_drop(t->data, bytes);
    else if (unused && t->heap) pool_give(m->pages, t->data, bytes);
}

static bool is_io(const onyx_graph *g, int slot) {
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == slot) return true;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == slot) return true;
    return false;
}

/* Whether any node of g other than input `except_in` of node `except`
 * reads slot s (subgraph captures included, through g->implicit). */
static bool read_elsewhere(const onyx_graph *g, int s, const onyx_node *except, int except_in) {
    for (int j = 0; j < g->n_nodes; j++) {
        const onyx_node *nd = &g->nodes[j];
        if (!nd->op) continue;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] == s && !(nd == except && k == except_in)) return true;
        for (const int *p = g->implicit ? g->implicit[j] : NULL; p && *p >= 0; p++)
            if (*p == s) return true;
    }
    return false;
}

void onyx_model_release_unused(const onyx_model *m, const onyx_graph *g) {
    if (!g) return;
    /* Readers per slot in one pass: the graph's inputs and outputs count. */
    int *uses = calloc((size_t)g->n_slots + 1, sizeof *uses);
    if (uses) {
        for (int i = 0; i < g->n_inputs; i++) uses[g->inputs[i]]++;
        for (int i = 0; i < g->n_outputs; i++) uses[g->outputs[i]]++;
        for (int j = 0; j < g->n_nodes; j++) {
            const onyx_node *nd = &g->nodes[j];
            if (!nd->op) continue;
            for (int k = 0; k < nd->n_in; k++)
                if (nd->in[k] >= 0) uses[nd->in[k]]++;
            for (const int *p = g->implicit ? g->implicit[j] : NULL; p && *p >= 0; p++) uses[*p]++;
        }
        for (int s = 0; s < g->n_slots; s++)
            if (g->slots[s].constant && !uses[s]) release_value(m, g->slots[s].constant, true);
        free(uses);
    }
    for (int j = 0; j < g->n_nodes; j++) {
        const onyx_node *nd = &g->nodes[j];
        for (int a = 0; nd->subgraphs && a < nd->n_attrs; a++)
            onyx_model_release_unused(m, nd->subgraphs[a]);
    }
}

/* memcmp of file bytes with a copy, a block at a time, giving back each
 * block's file pages once compared so that the file is never resident
 * beside the copy. */
static bool same_as_file(const uint8_t *file, const void *copy, size_t n) {
    enum { BLOCK = 1 << 20 };
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t len = n - off < BLOCK ? n - off : BLOCK;
        bool same = memcmp(file + off, (const uint8_t *)copy + off, len) == 0;
        onyx_pages_drop(file + off, len);
        if (!same) return false;
    }
    return true;
}

void onyx_model_unalign_bytewise(onyx_model *m, const onyx_graph *g) {
    if (!m->map.data || m->bytes != m->map.data) return;
    const onyx_pb_graph *pg = m->pb->graph;
    /* Per slot: readers, and whether every read is a bytewise input 0. */
    int *readers = calloc((size_t)g->n_slots + 1, sizeof *readers);
    bool *bytewise = malloc(((size_t)g->n_slots + 1) * sizeof *bytewise);
    if (!readers || !bytewise) goto done;
    for (int s = 0; s < g->n_slots; s++) bytewise[s] = true;
    for (int j = 0; j < g->n_nodes; j++) {
        const onyx_node *nd = &g->nodes[j];
        for (int k = 0; k < nd->n_in; k++) {
            int s = nd->in[k];
            if (s < 0) continue;
            readers[s]++;
            if (k != 0 || !(nd->op->flags & ONYX_OP_BYTEWISE_IN0)) bytewise[s] = false;
        }
        for (const int *p = g->implicit[j]; p && *p >= 0; p++) bytewise[*p] = false;
    }
    for (int s = 0; s < g->n_slots; s++) {
        const onyx_slot *sl = &g->slots[s];
        if (!sl->constant || !readers[s] || !bytewise[s] || is_io(g, s) ||
            sl->constant->kind != ONYX_KIND_TENSOR || !sl->constant->tensor.heap)
            continue;
        onyx_value *v = NULL; /* the model's own, writable pointer to it */
        for (int i = 0; !v && i < m->n_constants; i++)
            if (m->constants[i] == sl->constant) v = m->constants[i];
        if (!v) continue;
        onyx_tensor *t = &v->tensor;
        if (t->dtype == ONYX_DTYPE_STRING || t->dtype == ONYX_DTYPE_BOOL ||
            t->dtype == ONYX_DTYPE_INT4 || t->dtype == ONYX_DTYPE_UINT4 ||
            t->dtype == ONYX_DTYPE_FLOAT4E2M1)
            continue; /* their copies are not the file's bytes */
        size_t bytes = onyx_tensor_nbytes(t);
        if (bytes < ONYX_PB_VIEW_MIN_BYTES) continue; /* stays a copy, as at load */
        const onyx_pb_tensor *pb = NULL;
        for (int i = 0; !pb && i < pg->n_initializers; i++)
            if (strcmp(pg->initializers[i].name, sl->name) == 0) pb = &pg->initializers[i];
        if (!pb || !pb->raw_mapped || !pb->has_raw || pb->data_location != 0 ||
            pb->data_type != (int32_t)t->dtype || pb->raw_size != bytes ||
            !same_as_file(pb->raw, t->data, bytes))
            continue;
        free(t->heap);
        t->heap = NULL;
        t->data = (void *)(uintptr_t)pb->raw;
    }
done:
    free(readers);
    free(bytewise);
}

void onyx_node_release_constant(onyx_node *n, int i, bool reread) {
    const onyx_graph *g = n->graph;
    if (!g || !n->model || i < 0 || i >= n->n_in || n->in[i] < 0) return;
    int s = n->in[i];
    if (!g->slots[s].constant || is_io(g, s) || read_elsewhere(g, s, n, i)) return;
    release_value(n->model, g->slots[s].constant, !reread);
    /* Graph passes ran before the first init: the constants they replaced
     * (weights folded with a BatchNormalization) go now rather than at the
     * end of the load, which lowers its peak. Once per graph: init rewires
     * nothing, so a second sweep would find nothing new (and each walks the
     * whole graph). */
    onyx_page_pool *pp = n->model->pages;
    for (int k = 0; pp && k < pp->n_swept; k++)
        if (pp->swept[k] == g) return;
    if (pp && grow((void **)&pp->swept, pp->n_swept, &pp->cap_swept, sizeof *pp->swept))
        pp->swept[pp->n_swept++] = g;
    onyx_model_release_unused(n->model, g);
}

// ----------------------------------------------------------------------------
// Loading

static onyx_status load(onyx_model *m, onyx_error *err) {
    onyx_status st = m->map.data && m->bytes == m->map.data
                         ? onyx_pb_decode_model_mapped(m->bytes, m->size, &m->arena, &m->pb, err)
                         : onyx_pb_decode_model(m->bytes, m->size, &m->arena, &m->pb, err);
    if (st) return st;
    if (!m->pb->graph) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the model has no graph");
    st = onyx_graph_build(m, err);
    /* Before anything frees a constant whose pages the pool holds. */
    pool_close(m->pages);
    if (st) return st;
    m->batch_separable = onyx_subbatch_analyze(m->graph, &m->batch_has_conv);
    onyx_model_release_unused(m, m->graph);
    return ONYX_OK;
}

static onyx_status finish_load(onyx_model *m, onyx_model **out, onyx_error *err) {
    onyx_status st = load(m, err);
    if (st) {
        onyx_model_free(m);
        return st;
    }
    *out = m;
    return ONYX_OK;
}

static onyx_model *model_new(const onyx_options *opts) {
    onyx_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (opts)
        m->opts = *opts;
    else
        onyx_options_init(&m->opts);
    onyx_arena_init(&m->arena);
    /* Without it (out of memory) the load just takes fresh pages. */
    m->pages = calloc(1, sizeof *m->pages);
    return m;
}

onyx_status onyx_model_load_file(const char *path, const onyx_options *opts, onyx_model **out,
                                 onyx_error *err) {
    *out = NULL;
    onyx_model *m = model_new(opts);
    if (!m) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = onyx_file_map(path, &m->map, err);
    if (st) {
        onyx_model_free(m);
        return st;
    }
    m->bytes = m->map.data;
    m->size = m->map.size;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 1;
    m->dir = malloc(dl + 1);
    if (!m->dir) {
        onyx_model_free(m);
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(m->dir, slash ? path : ".", dl);
    m->dir[dl] = 0;
    if (slash == path) m->dir[0] = '/', m->dir[1] = 0;
    if (m->size == 0) {
        onyx_model_free(m);
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s: the file is empty", path);
    }
    st = finish_load(m, out, err);
    if (st) onyx_error_prefix(err, "%s", path);
    return st;
}

onyx_status onyx_model_load_memory(const void *data, size_t size, const char *dir,
                                   const onyx_options *opts, onyx_model **out, onyx_error *err) {
    *out = NULL;
    if (!data || !size) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the model is empty");
    onyx_model *m = model_new(opts);
    if (!m) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    m->bytes = data;
    m->size = size;
    if (dir) {
        size_t dl = strlen(dir);
        m->dir = malloc(dl + 1);
        if (!m->dir) {
            onyx_model_free(m);
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        }
        memcpy(m->dir, dir, dl + 1);
    }
    return finish_load(m, out, err);
}

void onyx_model_free(onyx_model *m) {
    if (!m) return;
    pool_close(m->pages);
    onyx_model_release_graph(m);
    onyx_arena_deinit(&m->arena);
    pool_free(m->pages);
    for (int i = 0; i < m->n_externals; i++) {
        onyx_file_unmap(&m->externals[i]);
        free(m->external_names[i]);
    }
    free(m->externals);
    free(m->external_names);
    onyx_file_unmap(&m->map);
    free(m->dir);
    free(m);
}

// ----------------------------------------------------------------------------
// Description

int onyx_model_num_inputs(const onyx_model *m) { return m->graph->n_required; }
int onyx_model_num_outputs(const onyx_model *m) { return m->graph->n_outputs; }

static void slot_info(const onyx_slot *sl, onyx_io_info *out) {
    memset(out, 0, sizeof *out);
    out->name = sl->name;
    out->kind = sl->kind;
    out->dtype = sl->dtype;
    out->key_dtype = sl->key_dtype;
    out->elem_kind = sl->elem_kind;
    out->optional = sl->optional;
    out->ndim = sl->ndim;
    for (int i = 0; i < sl->ndim && i < ONYX_MAX_DIMS; i++) {
        out->dims[i] = sl->dims[i];
        out->dim_names[i] = sl->dim_names[i];
    }
}

/* The i-th input that the caller must bind (inputs with an initializer are
 * defaults, listed after the required ones in the graph's own order). */
static int required_input(const onyx_graph *g, int i) {
    for (int k = 0; k < g->n_inputs; k++) {
        if (g->slots[g->inputs[k]].constant) continue;
        if (i-- == 0) return g->inputs[k];
    }
    return -1;
}

onyx_status onyx_model_input(const onyx_model *m, int i, onyx_io_info *out) {
    int s = i >= 0 ? required_input(m->graph, i) : -1;
    if (s < 0) return ONYX_ERR_INVALID_ARGUMENT;
    slot_info(&m->graph->slots[s], out);
    return ONYX_OK;
}

onyx_status onyx_model_output(const onyx_model *m, int i, onyx_io_info *out) {
    if (i < 0 || i >= m->graph->n_outputs) return ONYX_ERR_INVALID_ARGUMENT;
    slot_info(&m->graph->slots[m->graph->outputs[i]], out);
    return ONYX_OK;
}

static const char *nonempty(const char *s) { return s && s[0] ? s : NULL; }
const char *onyx_model_producer(const onyx_model *m) { return nonempty(m->pb->producer_name); }
const char *onyx_model_producer_version(const onyx_model *m) {
    return nonempty(m->pb->producer_version);
}
int onyx_model_num_opsets(const onyx_model *m) { return m->pb->n_opsets; }
void onyx_model_opset_at(const onyx_model *m, int i, const char **domain, int64_t *version) {
    *domain = NULL;
    *version = -1;
    if (i < 0 || i >= m->pb->n_opsets) return;
    *domain = m->pb->opsets[i].domain;
    *version = m->pb->opsets[i].version;
}
const char *onyx_model_graph_name(const onyx_model *m) { return nonempty(m->graph->name); }
int64_t onyx_model_ir_version(const onyx_model *m) { return m->pb->ir_version; }
int onyx_model_num_metadata(const onyx_model *m) { return m->pb->n_metadata; }
int onyx_model_num_nodes(const onyx_model *m) { return m->graph->n_nodes; }

int64_t onyx_model_opset(const onyx_model *m, const char *domain) {
    if (strcmp(domain, "ai.onnx") == 0) domain = "";
    for (int i = 0; i < m->pb->n_opsets; i++)
        if (strcmp(m->pb->opsets[i].domain, domain) == 0) return m->pb->opsets[i].version;
    return -1;
}

void onyx_model_metadata(const onyx_model *m, int i, const char **key, const char **value) {
    *key = *value = NULL;
    if (i < 0 || i >= m->pb->n_metadata) return;
    *key = m->pb->metadata[i].key;
    *value = m->pb->metadata[i].value;
}

// ----------------------------------------------------------------------------
// Sessions

onyx_status onyx_session_new(const onyx_model *m, const onyx_options *opts, onyx_session **out,
                             onyx_error *err) {
    *out = NULL;
    const onyx_options *o = opts ? opts : &m->opts;
    onyx_session *s = calloc(1, sizeof *s);
    if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->model = m;
    s->memory_limit = o->memory_limit;
    s->physical_memory = onyx_physical_memory();
    int threads = o->threads > 0 ? o->threads : onyx_cpu_count();
    int n = m->graph->n_slots;
    s->own = calloc((size_t)n + 1, sizeof *s->own);
    s->cur = calloc((size_t)n + 1, sizeof *s->cur);
    s->views = calloc((size_t)m->graph->n_outputs + 1, sizeof *s->views);
    s->pool = onyx_pool_new(threads);
    s->sub_batch = o->sub_batch;
    s->sb_in = calloc((size_t)m->graph->n_inputs + 1, sizeof *s->sb_in);
    s->sb_out = calloc((size_t)m->graph->n_outputs + 1, sizeof *s->sb_out);
    s->sb_cap = calloc((size_t)m->graph->n_outputs + 1, sizeof *s->sb_cap);
    if (!s->own || !s->cur || !s->views || !s->pool || !s->sb_in || !s->sb_out || !s->sb_cap ||
        onyx_plan_init(&s->plan, n)) {
        onyx_session_free(s);
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    }
    *out = s;
    return ONYX_OK;
}

/* Drops the values of the previous run (outputs included). */
static void session_clear(onyx_session *s) {
    const onyx_graph *g = s->model->graph;
    for (int i = 0; i < g->n_slots; i++) {
        onyx_value_clear(&s->own[i]);
        s->cur[i] = NULL;
    }
}

void onyx_session_free(onyx_session *s) {
    if (!s) return;
    onyx_exec_free_lanes(s);
    if (s->own) session_clear(s);
    free(s->own);
    free(s->cur);
    free(s->views);
    for (int j = 0; s->sb_out && j < s->model->graph->n_outputs; j++) free(s->sb_out[j]);
    free(s->sb_out);
    free(s->sb_cap);
    free(s->sb_in);
    onyx_plan_deinit(&s->plan);
    onyx_pool_free(s->pool);
    free(s->scratch);
    free(s);
}

void onyx_session_abort(onyx_session *s) { atomic_store(&s->abort, 1); }

void onyx_session_set_profiler(onyx_session *s, onyx_profile_fn fn, void *user) {
    s->profile = fn;
    s->profile_user = user;
}

/* Checks an input against its declared type; the message says what differs. */
static onyx_status check_input(const onyx_slot *sl, const onyx_value *v, onyx_error *err) {
    if (v->kind == ONYX_KIND_NONE && sl->optional) return ONYX_OK;
    if (sl->kind == ONYX_KIND_TENSOR && v->kind != ONYX_KIND_TENSOR)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' must be a tensor", sl->name);
    if (v->kind != ONYX_KIND_TENSOR) return ONYX_OK;
    const onyx_tensor *t = &v->tensor;
    if (!onyx_dtype_size(t->dtype) || t->ndim < 0 || t->ndim > ONYX_MAX_DIMS ||
        onyx_tensor_count(t) < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' is not a valid tensor",
                           sl->name);
    if (onyx_tensor_count(t) > 0 && !t->data)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' has no data", sl->name);
    if (sl->dtype != ONYX_DTYPE_UNDEFINED && t->dtype != sl->dtype)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' must be %s, got %s",
                           sl->name, onyx_dtype_name(sl->dtype), onyx_dtype_name(t->dtype));
    bool bad = sl->ndim >= 0 && sl->ndim != t->ndim;
    for (int i = 0; !bad && sl->ndim >= 0 && i < sl->ndim; i++)
        bad = sl->dims[i] >= 0 && sl->dims[i] != t->dims[i];
    if (bad) {
        char want[160], got[160];
        onyx_dims_text(want, sizeof want, sl->ndim, sl->dims);
        onyx_dims_text(got, sizeof got, t->ndim, t->dims);
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "input '%s' must have shape %s (-1: any), got %s", sl->name, want, got);
    }
    return ONYX_OK;
}

static int find_input(const onyx_graph *g, const char *name) {
    for (int i = 0; i < g->n_inputs; i++)
        if (strcmp(g->slots[g->inputs[i]].name, name) == 0) return g->inputs[i];
    return -1;
}

static int find_output(const onyx_graph *g, const char *name) {
    for (int i = 0; i < g->n_outputs; i++)
        if (strcmp(g->slots[g->outputs[i]].name, name) == 0) return g->outputs[i];
    return -1;
}

onyx_status onyx_session_run(onyx_session *s, int n_inputs, const char *const *names,
                             const onyx_value *const *inputs, int n_outputs,
                             const char *const *output_names, const onyx_value **outputs,
                             onyx_error *err) {
    const onyx_graph *g = s->model->graph;
    atomic_store(&s->abort, 0);
    session_clear(s);
    onyx_status st;
    for (int i = 0; i < n_inputs; i++) {
        int sl = find_input(g, names[i]);
        if (sl < 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "the model has no input named '%s'",
                             names[i]);
            goto fail;
        }
        if (s->cur[sl]) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' is given twice", names[i]);
            goto fail;
        }
        if (!inputs[i]) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' is NULL", names[i]);
            goto fail;
        }
        if ((st = check_input(&g->slots[sl], inputs[i], err))) goto fail;
        s->cur[sl] = inputs[i];
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int sl = g->inputs[i];
        if (!s->cur[sl] && !g->slots[sl].constant) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' is missing",
                             g->slots[sl].name);
            goto fail;
        }
    }
    if (!output_names && n_outputs != g->n_outputs) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "the model has %d outputs, %d requested",
                         g->n_outputs, n_outputs);
        goto fail;
    }
    int *want = calloc((size_t)n_outputs + 1, sizeof *want);
    if (!want) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    for (int j = 0; j < n_outputs; j++) {
        want[j] = output_names ? find_output(g, output_names[j]) : g->outputs[j];
        if (want[j] < 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "the model has no output named '%s'",
                             output_names[j]);
            free(want);
            goto fail;
        }
    }
    st = onyx_exec_run_session(s, err);
    for (int j = 0; j < n_outputs; j++) outputs[j] = st ? NULL : s->cur[want[j]];
    free(want);
    if (st) goto fail;
    for (int j = 0; j < n_outputs; j++) {
        if (!outputs[j]) {
            st = onyx_errorf(err, ONYX_ERR_RUNTIME, "output %d was not computed", j);
            goto fail;
        }
    }
    return ONYX_OK;
fail:
    session_clear(s);
    return st;
}

onyx_status onyx_session_run_tensors(onyx_session *s, int n_inputs, const char *const *names,
                                     const onyx_tensor_view *inputs, int n_outputs,
                                     const char *const *output_names, onyx_tensor_view *outputs,
                                     onyx_error *err) {
    onyx_value *in = calloc((size_t)n_inputs + 1, sizeof *in);
    const onyx_value **inp = calloc((size_t)n_inputs + 1, sizeof *inp);
    const onyx_value **out = calloc((size_t)n_outputs + 1, sizeof *out);
    onyx_status st;
    if (!in || !inp || !out) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_inputs; i++) {
        /* Borrowed views: heap stays NULL so nothing is freed. */
        if (inputs[i].ndim < 0 || inputs[i].ndim > ONYX_MAX_DIMS) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "input '%s' has rank %d", names[i],
                             inputs[i].ndim);
            goto done;
        }
        in[i].kind = ONYX_KIND_TENSOR;
        in[i].tensor.dtype = inputs[i].dtype;
        onyx_tensor_set_shape(&in[i].tensor, inputs[i].ndim, inputs[i].dims);
        in[i].tensor.data = inputs[i].data;
        inp[i] = &in[i];
    }
    st = onyx_session_run(s, n_inputs, names, inp, n_outputs, output_names, out, err);
    for (int j = 0; !st && j < n_outputs; j++) {
        if (out[j]->kind != ONYX_KIND_TENSOR) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                             "output %d is not a tensor: use onyx_session_run", j);
            break;
        }
        onyx_tensor_to_view(&out[j]->tensor, &outputs[j]);
    }
done:
    free(in);
    free(inp);
    free(out);
    return st;
}
