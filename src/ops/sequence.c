/* sequence.c - sequence and optional operators: SequenceConstruct/Empty/At/
 * Insert/Erase/Length/Map, SplitToSequence, ConcatFromSequence, Optional,
 * OptionalHasElement, OptionalGetElement. Sequences are onyx_values of kind
 * SEQUENCE whose items are heap-owned tensors; every op builds a fresh
 * sequence (inputs are borrowed and never changed).
 * Does not own: value memory rules (core/tensor.c), If/Loop/Scan (control.c).
 */
#include "core/graph.h" /* declared body output types, for empty SequenceMap results */
#include "core/op.h"
#include "ops/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Helpers

/* Output i as a deep copy of v: a tensor into planned memory, anything else
 * as a heap value (no longer optional when `unwrap`). */
static onyx_status put_copy(onyx_exec *x, int i, const onyx_value *v, bool unwrap) {
    onyx_status st;
    if (v->kind == ONYX_KIND_TENSOR) {
        onyx_tensor *t;
        if ((st = onyx_exec_output(x, i, v->tensor.dtype, v->tensor.ndim, v->tensor.dims, &t)))
            return st;
        return onyx_op_copy_data(x, t, &v->tensor);
    }
    onyx_value c;
    if ((st = onyx_value_copy(&c, v))) return onyx_exec_fail(x, st, "out of memory");
    if (unwrap) c.is_optional = false;
    return onyx_op_put_value(x, i, &c);
}

/* Makes v an empty sequence of element type et with room for cap items.
 * Items are counted in v->n_items as they are filled, so clearing v on a
 * failure frees exactly what was built. */
static onyx_status seq_begin(onyx_exec *x, onyx_value *v, onyx_dtype et, int64_t cap) {
    memset(v, 0, sizeof *v);
    v->kind = ONYX_KIND_SEQUENCE;
    v->elem_type = et;
    if (cap > 0) {
        if ((uint64_t)cap > SIZE_MAX / sizeof(onyx_value))
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "sequence of %lld items is too long",
                                  (long long)cap);
        v->items = calloc((size_t)cap, sizeof(onyx_value));
        if (!v->items) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return ONYX_OK;
}

/* Appends a deep copy of item to the sequence being built in v. */
static onyx_status seq_push_copy(onyx_exec *x, onyx_value *v, const onyx_value *item) {
    onyx_status st = onyx_value_copy(&v->items[v->n_items], item);
    if (st) return onyx_exec_fail(x, st, "out of memory copying a sequence item");
    v->items[v->n_items].is_optional = false;
    v->n_items++;
    return ONYX_OK;
}

/* Input i as a sequence, or a failure naming the input. */
static onyx_status input_seq(onyx_exec *x, int i, const onyx_value **out) {
    const onyx_value *v = onyx_exec_input_value(x, i);
    if (!v || v->kind != ONYX_KIND_SEQUENCE)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input %d must be a sequence", i);
    *out = v;
    return ONYX_OK;
}

/* Reads the optional position input i (a one-element integer tensor) into
 * *pos normalized to [0, n) (or [0, n] when insert); absent gives def. */
static onyx_status read_position(onyx_exec *x, int i, int64_t n, bool insert, int64_t def,
                                 int64_t *pos) {
    const onyx_value *v = onyx_exec_input_value(x, i);
    if (!v) {
        *pos = def;
        return ONYX_OK;
    }
    if (v->kind != ONYX_KIND_TENSOR || onyx_tensor_count(&v->tensor) != 1 ||
        (v->tensor.dtype != ONYX_DTYPE_INT32 && v->tensor.dtype != ONYX_DTYPE_INT64))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "position must be a one-element int32 or int64 tensor");
    int64_t p = onyx_tensor_get_i64(&v->tensor, 0);
    int64_t hi = insert ? n : n - 1;
    if (p < -n || p > hi)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "position %lld is out of range for a sequence of %lld", (long long)p,
                              (long long)n);
    *pos = p < 0 ? p + n : p;
    return ONYX_OK;
}

/* Output i as a bool scalar. */
static onyx_status put_bool(onyx_exec *x, int i, bool b) {
    onyx_tensor *t;
    onyx_status st = onyx_exec_output(x, i, ONYX_DTYPE_BOOL, 0, NULL, &t);
    if (st) return st;
    *(uint8_t *)t->data = b;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// SequenceConstruct, SequenceEmpty, SequenceLength, SequenceAt

static onyx_status construct_run(const onyx_node *n, onyx_exec *x) {
    onyx_value seq;
    onyx_status st = ONYX_OK;
    const onyx_tensor *first = onyx_exec_input(x, 0);
    if (!first) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input 0 must be a tensor");
    if ((st = seq_begin(x, &seq, first->dtype, n->n_in))) goto fail;
    for (int i = 0; i < n->n_in; i++) {
        const onyx_value *v = onyx_exec_input_value(x, i);
        if (!v || v->kind != ONYX_KIND_TENSOR || v->tensor.dtype != first->dtype) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "input %d must be a tensor of type %s like input 0", i,
                                onyx_dtype_name(first->dtype));
            goto fail;
        }
        if ((st = seq_push_copy(x, &seq, v))) goto fail;
    }
    return onyx_op_put_value(x, 0, &seq);
fail:
    onyx_value_clear(&seq);
    return st;
}

typedef struct empty_state {
    onyx_dtype dtype;
} empty_state;

static onyx_status empty_init(onyx_node *n, onyx_error *err) {
    int64_t dt = onyx_attr_int(n, "dtype", ONYX_DTYPE_FLOAT);
    if (dt > INT32_MAX || dt < 0 || !onyx_dtype_is_valid((int32_t)dt) ||
        dt == ONYX_DTYPE_UNDEFINED)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute dtype %lld is not a tensor type",
                           (long long)dt);
    empty_state *s = onyx_node_alloc(n, sizeof *s);
    if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->dtype = (onyx_dtype)dt;
    n->state = s;
    return ONYX_OK;
}

static onyx_status empty_run(const onyx_node *n, onyx_exec *x) {
    const empty_state *s = n->state;
    onyx_value seq;
    onyx_status st = seq_begin(x, &seq, s->dtype, 0);
    if (st) return st;
    return onyx_op_put_value(x, 0, &seq);
}

static onyx_status length_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *seq = NULL;
    onyx_status st = input_seq(x, 0, &seq);
    if (st) return st;
    onyx_tensor *t;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_INT64, 0, NULL, &t))) return st;
    *(int64_t *)t->data = seq->n_items;
    return ONYX_OK;
}

static onyx_status at_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *seq = NULL;
    int64_t pos;
    onyx_status st = input_seq(x, 0, &seq);
    if (st) return st;
    if (!onyx_exec_input_value(x, 1))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "position is required");
    if ((st = read_position(x, 1, seq->n_items, false, 0, &pos))) return st;
    return put_copy(x, 0, &seq->items[pos], false);
}

// ----------------------------------------------------------------------------
// SequenceInsert, SequenceErase

static onyx_status insert_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *seq = NULL;
    onyx_status st = input_seq(x, 0, &seq);
    if (st) return st;
    const onyx_value *item = onyx_exec_input_value(x, 1);
    if (!item || item->kind != ONYX_KIND_TENSOR)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input 1 must be a tensor");
    onyx_dtype et = seq->elem_type;
    if (et == ONYX_DTYPE_UNDEFINED && seq->n_items) et = seq->items[0].tensor.dtype;
    if (et != ONYX_DTYPE_UNDEFINED && item->tensor.dtype != et)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "cannot insert a %s tensor into a sequence of %s",
                              onyx_dtype_name(item->tensor.dtype), onyx_dtype_name(et));
    int64_t pos;
    if ((st = read_position(x, 2, seq->n_items, true, seq->n_items, &pos))) return st;
    if (seq->n_items == INT64_MAX)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "sequence is too long");
    onyx_value out;
    if ((st = seq_begin(x, &out, item->tensor.dtype, seq->n_items + 1))) goto fail;
    for (int64_t i = 0; i <= seq->n_items; i++) {
        const onyx_value *src = i < pos ? &seq->items[i] : i == pos ? item : &seq->items[i - 1];
        if ((st = seq_push_copy(x, &out, src))) goto fail;
    }
    return onyx_op_put_value(x, 0, &out);
fail:
    onyx_value_clear(&out);
    return st;
}

static onyx_status erase_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *seq = NULL;
    onyx_status st = input_seq(x, 0, &seq);
    if (st) return st;
    if (seq->n_items == 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "cannot erase from an empty sequence");
    int64_t pos;
    if ((st = read_position(x, 1, seq->n_items, false, seq->n_items - 1, &pos))) return st;
    onyx_value out;
    if ((st = seq_begin(x, &out, seq->elem_type, seq->n_items - 1))) goto fail;
    for (int64_t i = 0; i < seq->n_items; i++)
        if (i != pos && (st = seq_push_copy(x, &out, &seq->items[i]))) goto fail;
    return onyx_op_put_value(x, 0, &out);
fail:
    onyx_value_clear(&out);
    return st;
}

// ----------------------------------------------------------------------------
// SplitToSequence, ConcatFromSequence

typedef struct split_state {
    int64_t axis;
    int keepdims;
} split_state;

static onyx_status split_init(onyx_node *n, onyx_error *err) {
    split_state *s = onyx_node_alloc(n, sizeof *s);
    if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->axis = onyx_attr_int(n, "axis", 0);
    s->keepdims = onyx_attr_int(n, "keepdims", 1) != 0;
    n->state = s;
    return ONYX_OK;
}

static onyx_status split_run(const onyx_node *n, onyx_exec *x) {
    const split_state *s = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be a tensor");
    int r = in->ndim, axis;
    if (!onyx_op_norm_axis(s->axis, r, &axis))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                              (long long)s->axis, r);
    int64_t len = in->dims[axis];

    /* Chunk sizes: from the split input (scalar: equal chunks, the last
     * one possibly shorter; 1-D: explicit sizes), else chunks of one. */
    const onyx_tensor *sp = onyx_exec_input(x, 1);
    int64_t n_chunks, chunk = 1;
    bool squeeze = false, listed = false;
    if (sp && sp->ndim == 0) {
        chunk = onyx_tensor_get_i64(sp, 0);
        if (chunk <= 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "split %lld must be positive",
                                  (long long)chunk);
        n_chunks = len / chunk + (len % chunk != 0);
    } else if (sp && sp->ndim == 1) {
        listed = true;
        n_chunks = sp->dims[0];
        int64_t sum = 0;
        for (int64_t i = 0; i < n_chunks; i++) {
            int64_t c = onyx_tensor_get_i64(sp, i);
            if (c < 0 || c > len - sum)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "split sizes must be >= 0 and sum to %lld", (long long)len);
            sum += c;
        }
        if (sum != len)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "split sizes sum to %lld, the axis has %lld", (long long)sum,
                                  (long long)len);
    } else if (sp) {
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "split must be a scalar or 1-D");
    } else {
        n_chunks = len;
        squeeze = !s->keepdims;
    }

    size_t es = onyx_dtype_size(in->dtype);
    int64_t outer = onyx_op_prod(in->dims, 0, axis), inner = onyx_op_prod(in->dims, axis + 1, r);
    onyx_value seq;
    onyx_status st = seq_begin(x, &seq, in->dtype, n_chunks);
    if (st) goto fail;
    for (int64_t c = 0, off = 0; c < n_chunks; c++) {
        int64_t size = listed ? onyx_tensor_get_i64(sp, c) : (chunk < len - off ? chunk : len - off);
        int64_t dims[ONYX_MAX_DIMS];
        memcpy(dims, in->dims, sizeof dims);
        dims[axis] = size;
        onyx_value *item = &seq.items[seq.n_items];
        if (onyx_tensor_alloc(&item->tensor, in->dtype, r, dims)) {
            st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
            goto fail;
        }
        item->kind = ONYX_KIND_TENSOR;
        seq.n_items++;
        int64_t row = size * inner;
        for (int64_t o = 0; o < outer && row; o++) {
            const char *src = (const char *)in->data + (size_t)((o * len + off) * inner) * es;
            char *dst = (char *)item->tensor.data + (size_t)(o * row) * es;
            if (!onyx_op_copy_elems(dst, src, row, in->dtype)) {
                st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory copying strings");
                goto fail;
            }
        }
        if (squeeze) {
            memmove(item->tensor.dims + axis, item->tensor.dims + axis + 1,
                    (size_t)(r - axis - 1) * sizeof dims[0]);
            item->tensor.ndim = r - 1;
        }
        off += size;
    }
    return onyx_op_put_value(x, 0, &seq);
fail:
    onyx_value_clear(&seq);
    return st;
}

typedef struct concat_state {
    int64_t axis;
    int new_axis;
} concat_state;

static onyx_status concat_init(onyx_node *n, onyx_error *err) {
    const onyx_pb_attr *a = onyx_attr_find(n, "axis");
    if (!a || a->type != ONYX_PB_ATTR_INT)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute axis is required");
    concat_state *s = onyx_node_alloc(n, sizeof *s);
    if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->axis = a->i;
    s->new_axis = onyx_attr_int(n, "new_axis", 0) != 0;
    n->state = s;
    return ONYX_OK;
}

static onyx_status concat_run(const onyx_node *n, onyx_exec *x) {
    const concat_state *s = n->state;
    const onyx_value *seq = NULL;
    onyx_status st = input_seq(x, 0, &seq);
    if (st) return st;
    if (seq->n_items == 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "the sequence is empty");
    const onyx_tensor *t0 = &seq->items[0].tensor;
    int r = t0->ndim, ro = r + s->new_axis;
    if (ro > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output rank %d is over %d", ro,
                              ONYX_MAX_DIMS);
    int axis;
    if (!onyx_op_norm_axis(s->axis, ro, &axis))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                              (long long)s->axis, ro);

    /* Every item viewed at the output rank: (outer, a_k, inner). */
    int64_t dims[ONYX_MAX_DIMS], total = 0;
    for (int i = 0, j = 0; i < ro; i++) dims[i] = s->new_axis && i == axis ? 1 : t0->dims[j++];
    for (int64_t k = 0; k < seq->n_items; k++) {
        const onyx_value *v = &seq->items[k];
        const onyx_tensor *t = &v->tensor;
        bool ok = v->kind == ONYX_KIND_TENSOR && t->dtype == t0->dtype && t->ndim == r;
        for (int i = 0, j = 0; ok && i < ro; i++) {
            if (s->new_axis && i == axis) continue;
            ok = i == axis || t->dims[j] == dims[i];
            j++;
        }
        if (!ok)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "item %lld differs from item 0 in type or shape", (long long)k);
        int64_t a = s->new_axis ? 1 : t->dims[axis];
        if (a > INT64_MAX - total)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "the result is too large");
        total += a;
    }
    dims[axis] = total;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, t0->dtype, ro, dims, &out))) return st;
    size_t es = onyx_dtype_size(t0->dtype);
    int64_t outer = onyx_op_prod(dims, 0, axis), inner = onyx_op_prod(dims, axis + 1, ro);
    int64_t off = 0;
    for (int64_t k = 0; k < seq->n_items; k++) {
        const onyx_tensor *t = &seq->items[k].tensor;
        int64_t a = s->new_axis ? 1 : t->dims[axis], row = a * inner;
        for (int64_t o = 0; o < outer && row; o++) {
            char *dst = (char *)out->data + (size_t)((o * total + off) * inner) * es;
            const char *src = (const char *)t->data + (size_t)(o * row) * es;
            if (!onyx_op_copy_elems(dst, src, row, t->dtype))
                return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory copying strings");
        }
        off += a;
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// SequenceMap: body(sample_i of each input) for i in [0, len(input 0)).
// Sequence inputs give their i-th item, tensor inputs are passed whole.

static onyx_status map_init(onyx_node *n, onyx_error *err) {
    const onyx_graph *body = onyx_attr_graph(n, "body");
    if (!body) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute body is required");
    if (onyx_graph_num_inputs(body) != n->n_in)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the body takes %d inputs, the node has %d",
                           onyx_graph_num_inputs(body), n->n_in);
    if (onyx_graph_num_outputs(body) < n->n_out)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the body gives %d outputs, the node has %d",
                           onyx_graph_num_outputs(body), n->n_out);
    return ONYX_OK;
}

/* The declared element type of body output j (for an empty result). */
static onyx_dtype declared_dtype(const onyx_graph *g, int j) {
    return g->slots[g->outputs[j]].dtype;
}

static onyx_status map_run(const onyx_node *n, onyx_exec *x) {
    const onyx_graph *body = onyx_attr_graph(n, "body");
    int ni = n->n_in, no = onyx_graph_num_outputs(body);
    const onyx_value *seq0 = NULL;
    onyx_status st = input_seq(x, 0, &seq0);
    if (st) return st;
    int64_t len = seq0->n_items;
    const onyx_value **in = calloc((size_t)ni + 1, sizeof *in);
    const onyx_value **sample = calloc((size_t)ni + 1, sizeof *sample);
    onyx_value *res = onyx_op_values_new(no);  /* one sequence per output */
    onyx_value *outs = onyx_op_values_new(no); /* one run's outputs */
    if (!in || !sample || !res || !outs) {
        st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < ni; i++) {
        const onyx_value *v = onyx_exec_input_value(x, i);
        if (!v) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input %d is missing", i);
            goto done;
        }
        if (v->kind == ONYX_KIND_SEQUENCE && v->n_items != len) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "input %d has %lld items, input 0 has %lld", i,
                                (long long)v->n_items, (long long)len);
            goto done;
        }
        in[i] = v;
    }
    for (int j = 0; j < no; j++)
        if ((st = seq_begin(x, &res[j], declared_dtype(body, j), len))) goto done;
    for (int64_t k = 0; k < len; k++) {
        if (onyx_exec_aborted(x)) {
            st = onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled at item %lld", (long long)k);
            goto done;
        }
        for (int i = 0; i < ni; i++)
            sample[i] = in[i]->kind == ONYX_KIND_SEQUENCE ? &in[i]->items[k] : in[i];
        if ((st = onyx_exec_run_graph(x, body, ni, sample, outs))) goto done;
        for (int j = 0; j < no; j++) {
            if (outs[j].kind != ONYX_KIND_TENSOR) {
                st = onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "body output %d is not a tensor", j);
                goto done;
            }
            if (res[j].n_items == 0) res[j].elem_type = outs[j].tensor.dtype;
            res[j].items[res[j].n_items] = outs[j];
            res[j].items[res[j].n_items].is_optional = false;
            memset(&outs[j], 0, sizeof outs[j]);
            res[j].n_items++;
        }
    }
    for (int j = 0; j < n->n_out; j++)
        if ((st = onyx_op_put_value(x, j, &res[j]))) goto done;
done:
    onyx_op_values_free(res, no);
    onyx_op_values_free(outs, no);
    free(sample);
    free(in);
    return st;
}

// ----------------------------------------------------------------------------
// Optional, OptionalHasElement, OptionalGetElement

static onyx_status optional_init(onyx_node *n, onyx_error *err) {
    if (n->n_in == 0 || n->in[0] < 0) {
        const onyx_pb_attr *a = onyx_attr_find(n, "type");
        if (!a || a->type != ONYX_PB_ATTR_TYPE_PROTO || !a->tp)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "attribute type is required when there is no input");
        if (a->tp->kind != ONYX_PB_TYPE_TENSOR && a->tp->kind != ONYX_PB_TYPE_SEQUENCE)
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                               "attribute type must be a tensor or sequence type");
    }
    return ONYX_OK;
}

static onyx_status optional_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *in = onyx_exec_input_value(x, 0);
    onyx_value v = {0};
    if (in) {
        if (in->kind != ONYX_KIND_TENSOR && in->kind != ONYX_KIND_SEQUENCE)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "input must be a tensor or a sequence");
        onyx_status st = onyx_value_copy(&v, in);
        if (st) return onyx_exec_fail(x, st, "out of memory");
    } else {
        const onyx_pb_attr *a = onyx_attr_find(n, "type");
        if (a && a->tp && a->tp->kind == ONYX_PB_TYPE_SEQUENCE && a->tp->elem &&
            onyx_dtype_is_valid(a->tp->elem->elem_type))
            v.elem_type = (onyx_dtype)a->tp->elem->elem_type;
    }
    v.is_optional = true;
    return onyx_op_put_value(x, 0, &v);
}

static onyx_status has_element_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *in = onyx_exec_input_value(x, 0);
    return put_bool(x, 0, in && in->kind != ONYX_KIND_NONE);
}

static onyx_status get_element_run(const onyx_node *n, onyx_exec *x) {
    const onyx_value *in = onyx_exec_input_value(x, 0);
    if (!in || in->kind == ONYX_KIND_NONE)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "the optional input is empty");
    return put_copy(x, 0, in, true);
}

// ----------------------------------------------------------------------------
// Registry

#define ROW(op, v, mi, xi, mo, xo, init, run) {"", op, v, mi, xi, mo, xo, 0, init, run, 0}

const onyx_op_schema onyx_ops_sequence[] = {
    ROW("SequenceConstruct", 11, 1, -1, 1, 1, NULL, construct_run),
    ROW("SequenceEmpty", 11, 0, 0, 1, 1, empty_init, empty_run),
    ROW("SequenceAt", 11, 2, 2, 1, 1, NULL, at_run),
    ROW("SequenceInsert", 11, 2, 3, 1, 1, NULL, insert_run),
    ROW("SequenceErase", 11, 1, 2, 1, 1, NULL, erase_run),
    ROW("SequenceLength", 11, 1, 1, 1, 1, NULL, length_run),
    ROW("SequenceMap", 17, 1, -1, 1, -1, map_init, map_run),
    ROW("SplitToSequence", 11, 1, 2, 1, 1, split_init, split_run),
    ROW("SplitToSequence", 24, 1, 2, 1, 1, split_init, split_run),
    ROW("ConcatFromSequence", 11, 1, 1, 1, 1, concat_init, concat_run),
    ROW("Optional", 15, 0, 1, 1, 1, optional_init, optional_run),
    ROW("OptionalHasElement", 15, 1, 1, 1, 1, NULL, has_element_run),
    ROW("OptionalHasElement", 18, 0, 1, 1, 1, NULL, has_element_run),
    ROW("OptionalGetElement", 15, 1, 1, 1, 1, NULL, get_element_run),
    ROW("OptionalGetElement", 18, 1, 1, 1, 1, NULL, get_element_run),
    {0},
};
