/* tree.c - tree ensembles of ai.onnx.ml: TreeEnsembleClassifier and
 * TreeEnsembleRegressor (opsets 1 and 3, nodes keyed by tree and node id)
 * and TreeEnsemble (opset 5, nodes and leaves by position, set membership).
 * All three are compiled at load into one flat node array, checked for
 * dangling references and cycles, and evaluated row by row in parallel.
 *
 * Scores follow onnxruntime, the runtime these models are exported for:
 * SUM/AVERAGE/MIN/MAX per target, base_values added after aggregation,
 * a single-target regressor only takes PROBIT, and a two-class classifier
 * whose weights name a single class (scikit-learn's binary export) scores
 * that class as the positive one (see classify_row). */
#include "ops/ml/ml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_LEQ, M_LT, M_GTE, M_GT, M_EQ, M_NEQ, M_MEMBER, M_LEAF, M_COUNT };
enum { AGG_AVERAGE, AGG_SUM, AGG_MIN, AGG_MAX };

typedef struct tnode {
    double value;         /* threshold */
    int32_t feature;
    uint8_t mode;         /* M_* */
    uint8_t missing_true; /* a NaN feature takes the true branch */
    int32_t t, f;         /* children; for a leaf: first weight and weight count */
    int32_t set, nset;    /* M_MEMBER: its members in sets[set .. set + nset) */
} tnode;

typedef struct tweight {
    int64_t target;
    double value;
} tweight;

typedef struct tree_model {
    tnode *nodes;        /* (n_nodes) */
    int64_t n_nodes;
    int32_t *roots;      /* (n_trees) */
    int64_t n_trees;
    tweight *weights;    /* (n_weights), grouped by leaf */
    int64_t n_weights;
    double *sets;        /* member values of M_MEMBER nodes */
    int64_t n_targets;   /* targets, or classes for the classifier */
    int64_t max_feature; /* -1 when no node reads a feature */
    const double *base;  /* (n_base) base_values */
    int64_t n_base;
    int agg;             /* AGG_* */
    onyx_ml_post post;
    /* classifier */
    onyx_ml_labels labels;
    bool binary;         /* two classes, weights for one class id only */
    bool all_positive;   /* no negative weight */
} tree_model;

// ----------------------------------------------------------------------------
// Structure checks shared by both encodings

/* Depth-first walk from every root: every child index must be in range and
 * no node may lead back to itself (a shared subtree is fine). */
static onyx_status check_acyclic(const tree_model *m, onyx_error *err) {
    int64_t n = m->n_nodes;
    uint8_t *color = calloc((size_t)(n ? n : 1), 1);  /* 0 new, 1 on path, 2 done */
    int32_t *stack = malloc(sizeof *stack * (size_t)(n ? n : 1));
    uint8_t *side = malloc((size_t)(n ? n : 1));      /* children visited so far */
    onyx_status st = ONYX_OK;
    if (!color || !stack || !side) {
        st = onyx_ml_oom(err);
        goto done;
    }
    for (int64_t r = 0; r < m->n_trees; r++) {
        int32_t root = m->roots[r];
        if (color[root]) continue;
        int64_t sp = 0;
        stack[sp] = root;
        side[sp++] = 0;
        color[root] = 1;
        while (sp > 0) {
            int32_t i = stack[sp - 1];
            const tnode *p = &m->nodes[i];
            if (p->mode == M_LEAF || side[sp - 1] == 2) {
                color[i] = 2;
                sp--;
                continue;
            }
            int32_t c = side[sp - 1]++ == 0 ? p->f : p->t;
            if (color[c] == 1) {
                st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "tree %lld has a cycle through node %d",
                                 (long long)r, (int)c);
                goto done;
            }
            if (color[c] == 0) {
                color[c] = 1;
                stack[sp] = c;
                side[sp++] = 0;
            }
        }
    }
done:
    free(color);
    free(stack);
    free(side);
    return st;
}

static void find_max_feature(tree_model *m) {
    m->max_feature = -1;
    for (int64_t i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].mode != M_LEAF && m->nodes[i].feature > m->max_feature)
            m->max_feature = m->nodes[i].feature;
}

// ----------------------------------------------------------------------------
// Opsets 1 and 3: nodes_* keyed by (tree id, node id), weights by the same

typedef struct node_key {
    int64_t tree, node;
    int64_t idx; /* position in the nodes_* attributes */
} node_key;

static int cmp_key(const void *pa, const void *pb) {
    const node_key *a = pa, *b = pb;
    if (a->tree != b->tree) return a->tree < b->tree ? -1 : 1;
    if (a->node != b->node) return a->node < b->node ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int64_t find_node(const node_key *keys, int64_t n, int64_t tree, int64_t node) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (keys[mid].tree < tree || (keys[mid].tree == tree && keys[mid].node < node))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && keys[lo].tree == tree && keys[lo].node == node) return keys[lo].idx;
    return -1;
}

static int parse_mode(const onyx_pb_string *s) {
    static const char *const names[M_COUNT] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE",
                                               "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
                                               "BRANCH_MEMBER", "LEAF"};
    for (int i = 0; i < M_COUNT; i++)
        if (i != M_MEMBER && strcmp(s->s, names[i]) == 0) return i;
    return -1;
}

/* The weights of the legacy encoding: <p>_treeids, <p>_nodeids, <p>_ids and
 * <p>_weights (or <p>_weights_as_tensor), p = "class" or "target". */
typedef struct legacy_weights {
    const int64_t *tree, *node, *id;
    double *w;
    int64_t n;
} legacy_weights;

static onyx_status read_weights(onyx_node *n, const char *p, legacy_weights *lw,
                                onyx_error *err) {
    char name[64], tname[64];
    int64_t nt, nn, ni, nw;
    snprintf(name, sizeof name, "%s_treeids", p);
    nt = onyx_attr_ints(n, name, &lw->tree);
    snprintf(name, sizeof name, "%s_nodeids", p);
    nn = onyx_attr_ints(n, name, &lw->node);
    snprintf(name, sizeof name, "%s_ids", p);
    ni = onyx_attr_ints(n, name, &lw->id);
    snprintf(name, sizeof name, "%s_weights", p);
    snprintf(tname, sizeof tname, "%s_weights_as_tensor", p);
    onyx_status st = onyx_ml_attr_f64s(n, name, tname, &lw->w, &nw, err);
    if (st) return st;
    lw->n = nt > 0 ? nt : 0;
    snprintf(name, sizeof name, "%s_nodeids", p);
    if ((st = onyx_ml_check_len(name, nn < 0 && !lw->n ? 0 : nn, lw->n, err))) return st;
    snprintf(name, sizeof name, "%s_ids", p);
    if ((st = onyx_ml_check_len(name, ni < 0 && !lw->n ? 0 : ni, lw->n, err))) return st;
    snprintf(name, sizeof name, "%s_weights", p);
    return onyx_ml_check_len(name, nw < 0 && !lw->n ? 0 : nw, lw->n, err);
}

static onyx_status build_legacy(onyx_node *n, tree_model *m, const char *wprefix,
                                onyx_error *err) {
    const int64_t *treeids, *nodeids, *featureids, *trueids, *falseids, *missing;
    const onyx_pb_string *modes;
    double *values;
    int64_t nv;
    int64_t nn = onyx_attr_ints(n, "nodes_treeids", &treeids);
    if (nn < 0) nn = 0;
    int64_t nmiss = onyx_attr_ints(n, "nodes_missing_value_tracks_true", &missing);
    onyx_status st;
    if ((st = onyx_ml_attr_f64s(n, "nodes_values", "nodes_values_as_tensor", &values, &nv, err)))
        return st;
    struct {
        const char *name;
        int64_t have;
    } lens[] = {
        {"nodes_nodeids", onyx_attr_ints(n, "nodes_nodeids", &nodeids)},
        {"nodes_featureids", onyx_attr_ints(n, "nodes_featureids", &featureids)},
        {"nodes_truenodeids", onyx_attr_ints(n, "nodes_truenodeids", &trueids)},
        {"nodes_falsenodeids", onyx_attr_ints(n, "nodes_falsenodeids", &falseids)},
        {"nodes_modes", onyx_ml_attr_strings(n, "nodes_modes", &modes)},
        {"nodes_values", nv},
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        if ((st = onyx_ml_check_len(lens[i].name, lens[i].have < 0 && !nn ? 0 : lens[i].have, nn,
                                    err)))
            return st;
    if (nmiss > 0 && nmiss != nn)
        return onyx_ml_check_len("nodes_missing_value_tracks_true", nmiss, nn, err);
    if (nn >= INT32_MAX) return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "too many tree nodes");
    legacy_weights lw;
    if ((st = read_weights(n, wprefix, &lw, err))) return st;
    if (lw.n >= INT32_MAX) return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "too many leaf weights");

    m->n_nodes = nn;
    m->nodes = onyx_node_alloc(n, sizeof *m->nodes * (size_t)(nn ? nn : 1));
    node_key *keys = malloc(sizeof *keys * (size_t)(nn ? nn : 1));
    int64_t *count = calloc((size_t)(nn ? nn : 1), sizeof *count);
    if (!m->nodes || !keys || !count) {
        st = onyx_ml_oom(err);
        goto done;
    }
    for (int64_t i = 0; i < nn; i++) keys[i] = (node_key){treeids[i], nodeids[i], i};
    qsort(keys, (size_t)nn, sizeof *keys, cmp_key);
    for (int64_t i = 1; i < nn; i++) {
        if (keys[i].tree == keys[i - 1].tree && keys[i].node == keys[i - 1].node) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "tree %lld has node %lld twice",
                             (long long)keys[i].tree, (long long)keys[i].node);
            goto done;
        }
    }
    /* Roots: the first listed node of each tree, trees in order of first
     * appearance (as onnxruntime reads them). */
    m->roots = onyx_node_alloc(n, sizeof *m->roots * (size_t)(nn ? nn : 1));
    if (!m->roots) {
        st = onyx_ml_oom(err);
        goto done;
    }
    for (int64_t i = 0; i < nn;) {
        int64_t j = i, first = keys[i].idx;
        while (j < nn && keys[j].tree == keys[i].tree) {
            if (keys[j].idx < first) first = keys[j].idx;
            j++;
        }
        count[first] = 1; /* marks roots; reset below */
        i = j;
    }
    for (int64_t i = 0; i < nn; i++) {
        if (count[i]) m->roots[m->n_trees++] = (int32_t)i;
        count[i] = 0;
    }
    for (int64_t i = 0; i < nn; i++) {
        tnode *p = &m->nodes[i];
        int mode = parse_mode(&modes[i]);
        if (mode < 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "nodes_modes[%lld]: unknown mode '%s'",
                             (long long)i, modes[i].s);
            goto done;
        }
        p->mode = (uint8_t)mode;
        p->value = values[i];
        p->missing_true = nmiss > 0 && missing[i] == 1;
        if (mode == M_LEAF) continue;
        if (featureids[i] < 0 || featureids[i] >= INT32_MAX) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "nodes_featureids[%lld] = %lld",
                             (long long)i, (long long)featureids[i]);
            goto done;
        }
        p->feature = (int32_t)featureids[i];
        int64_t t = find_node(keys, nn, treeids[i], trueids[i]);
        int64_t f = find_node(keys, nn, treeids[i], falseids[i]);
        if (t < 0 || f < 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                             "tree %lld node %lld: its %s branch, node %lld, does not exist",
                             (long long)treeids[i], (long long)nodeids[i], t < 0 ? "true" : "false",
                             (long long)(t < 0 ? trueids[i] : falseids[i]));
            goto done;
        }
        p->t = (int32_t)t;
        p->f = (int32_t)f;
    }
    /* Weights, grouped by leaf. Weights on interior nodes are ignored, as
     * onnxruntime does (old converters emitted some). */
    for (int64_t k = 0; k < lw.n; k++) {
        int64_t i = find_node(keys, nn, lw.tree[k], lw.node[k]);
        if (i < 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                             "%s weight %lld names tree %lld node %lld, which does not exist",
                             wprefix, (long long)k, (long long)lw.tree[k], (long long)lw.node[k]);
            goto done;
        }
        if (lw.id[k] < 0 || lw.id[k] >= m->n_targets) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s_ids[%lld] = %lld is not below %lld",
                             wprefix, (long long)k, (long long)lw.id[k], (long long)m->n_targets);
            goto done;
        }
        if (m->nodes[i].mode == M_LEAF) count[i]++;
    }
    m->weights = onyx_node_alloc(n, sizeof *m->weights * (size_t)(lw.n ? lw.n : 1));
    if (!m->weights) {
        st = onyx_ml_oom(err);
        goto done;
    }
    int64_t off = 0;
    for (int64_t i = 0; i < nn; i++) {
        if (m->nodes[i].mode != M_LEAF) continue;
        m->nodes[i].t = (int32_t)off;
        m->nodes[i].f = 0;
        off += count[i];
    }
    for (int64_t k = 0; k < lw.n; k++) {
        int64_t i = find_node(keys, nn, lw.tree[k], lw.node[k]);
        tnode *p = &m->nodes[i];
        if (p->mode != M_LEAF) continue;
        m->weights[p->t + p->f++] = (tweight){lw.id[k], lw.w[k]};
    }
    m->n_weights = off;
    m->all_positive = true;
    for (int64_t k = 0; k < lw.n; k++)
        if (lw.w[k] < 0) m->all_positive = false;
    /* the binary convention: two classes, weights for one class id only */
    m->binary = m->labels.n == 2 && lw.n > 0;
    for (int64_t k = 1; k < lw.n; k++)
        if (lw.id[k] != lw.id[0]) m->binary = false;
    if ((st = check_acyclic(m, err))) goto done;
    find_max_feature(m);
done:
    free(keys);
    free(count);
    return st;
}

static onyx_status init_legacy_common(onyx_node *n, tree_model **out, onyx_error *err) {
    tree_model *m = onyx_node_alloc(n, sizeof *m);
    if (!m) return onyx_ml_oom(err);
    onyx_status st = onyx_ml_post_parse(n, &m->post, err);
    if (st) return st;
    double *base;
    if ((st = onyx_ml_attr_f64s(n, "base_values", "base_values_as_tensor", &base, &m->n_base,
                                err)))
        return st;
    m->base = base;
    if (m->n_base < 0) m->n_base = 0;
    n->state = m;
    *out = m;
    return ONYX_OK;
}

onyx_status onyx_ml_init_tree_classifier(onyx_node *n, onyx_error *err) {
    tree_model *m;
    onyx_status st = init_legacy_common(n, &m, err);
    if (st) return st;
    if ((st = onyx_ml_labels_parse(n, "classlabels_int64s", "classlabels_strings", true,
                                   &m->labels, err)))
        return st;
    m->n_targets = m->labels.n;
    m->agg = AGG_SUM;
    return build_legacy(n, m, "class", err);
}

onyx_status onyx_ml_init_tree_regressor(onyx_node *n, onyx_error *err) {
    tree_model *m;
    onyx_status st = init_legacy_common(n, &m, err);
    if (st) return st;
    m->n_targets = onyx_attr_int(n, "n_targets", 1);
    if (m->n_targets <= 0 || m->n_targets > INT32_MAX)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute n_targets = %lld",
                           (long long)m->n_targets);
    static const char *const aggs[] = {"AVERAGE", "SUM", "MIN", "MAX"};
    const char *a = onyx_attr_string(n, "aggregate_function", "SUM");
    if ((m->agg = onyx_op_lookup(a, aggs, 4)) < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute aggregate_function: '%s' is not AVERAGE, SUM, MIN or MAX", a);
    return build_legacy(n, m, "target", err);
}

// ----------------------------------------------------------------------------
// Opset 5: TreeEnsemble

/* A required (or optional) INTS attribute of length `want` (-1: any). */
static onyx_status req_ints(onyx_node *n, const char *name, int64_t want, bool required,
                            const int64_t **out, int64_t *len, onyx_error *err) {
    int64_t k = onyx_attr_ints(n, name, out);
    if (k < 0 && !required) {
        *out = NULL;
        if (len) *len = 0;
        return ONYX_OK;
    }
    if (k < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute %s is required", name);
    if (want >= 0 && k != want) return onyx_ml_check_len(name, k, want, err);
    if (len) *len = k;
    return ONYX_OK;
}

static onyx_status req_tensor(onyx_node *n, const char *name, bool required, onyx_tensor *t,
                              bool *found, onyx_error *err) {
    onyx_status st = onyx_attr_tensor(n, name, t, found, err);
    if (st) return st;
    if (!*found && required)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute %s is required", name);
    return ONYX_OK;
}

onyx_status onyx_ml_init_tree_ensemble(onyx_node *n, onyx_error *err) {
    tree_model *m = onyx_node_alloc(n, sizeof *m);
    if (!m) return onyx_ml_oom(err);
    n->state = m;
    int64_t nn, nl, nr;
    const int64_t *feat, *tids, *fids, *tleaf, *fleaf, *miss, *targ, *roots;
    onyx_status st;
    if ((st = req_ints(n, "nodes_featureids", -1, true, &feat, &nn, err)) ||
        (st = req_ints(n, "nodes_truenodeids", nn, true, &tids, NULL, err)) ||
        (st = req_ints(n, "nodes_falsenodeids", nn, true, &fids, NULL, err)) ||
        (st = req_ints(n, "nodes_trueleafs", nn, true, &tleaf, NULL, err)) ||
        (st = req_ints(n, "nodes_falseleafs", nn, true, &fleaf, NULL, err)) ||
        (st = req_ints(n, "nodes_missing_value_tracks_true", nn, false, &miss, NULL, err)) ||
        (st = req_ints(n, "leaf_targetids", -1, true, &targ, &nl, err)) ||
        (st = req_ints(n, "tree_roots", -1, true, &roots, &nr, err)))
        return st;
    onyx_tensor t_splits, t_modes, t_weights, t_members;
    bool found, has_members;
    if ((st = req_tensor(n, "nodes_splits", true, &t_splits, &found, err)) ||
        (st = req_tensor(n, "nodes_modes", true, &t_modes, &found, err)) ||
        (st = req_tensor(n, "leaf_weights", true, &t_weights, &found, err)) ||
        (st = req_tensor(n, "membership_values", false, &t_members, &has_members, err)))
        return st;
    if ((st = onyx_ml_check_len("nodes_splits", onyx_tensor_count(&t_splits), nn, err)) ||
        (st = onyx_ml_check_len("nodes_modes", onyx_tensor_count(&t_modes), nn, err)) ||
        (st = onyx_ml_check_len("leaf_weights", onyx_tensor_count(&t_weights), nl, err)))
        return st;
    if (t_modes.dtype != ONYX_DTYPE_UINT8)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute nodes_modes must be uint8");
    if (nn + nl >= INT32_MAX) return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "too many tree nodes");
    m->n_targets = onyx_attr_int(n, "n_targets", 0);
    if (m->n_targets <= 0 || m->n_targets > INT32_MAX)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute n_targets must be positive");
    m->agg = (int)onyx_attr_int(n, "aggregate_function", AGG_SUM);
    int64_t post = onyx_attr_int(n, "post_transform", 0);
    if (m->agg < AGG_AVERAGE || m->agg > AGG_MAX)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute aggregate_function = %d", m->agg);
    if (post < 0 || post >= ONYX_ML_POST_COUNT)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute post_transform = %lld",
                           (long long)post);
    m->post = (onyx_ml_post)post;

    double *splits, *lw, *members = NULL;
    if ((st = onyx_ml_tensor_f64(n, &t_splits, &splits, err)) ||
        (st = onyx_ml_tensor_f64(n, &t_weights, &lw, err)))
        return st;
    int64_t n_members = has_members ? onyx_tensor_count(&t_members) : 0;
    if (n_members >= INT32_MAX)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "membership_values is too long");
    if (has_members && (st = onyx_ml_tensor_f64(n, &t_members, &members, err))) return st;

    /* nodes [0, nn) are the interior nodes, [nn, nn + nl) the leaves */
    m->n_nodes = nn + nl;
    m->nodes = onyx_node_alloc(n, sizeof *m->nodes * (size_t)(nn + nl ? nn + nl : 1));
    m->weights = onyx_node_alloc(n, sizeof *m->weights * (size_t)(nl ? nl : 1));
    m->roots = onyx_node_alloc(n, sizeof *m->roots * (size_t)(nr ? nr : 1));
    m->sets = members;
    if (!m->nodes || !m->weights || !m->roots) return onyx_ml_oom(err);
    int64_t next_member = 0;
    for (int64_t i = 0; i < nn; i++) {
        tnode *p = &m->nodes[i];
        uint8_t mode;
        memcpy(&mode, (const uint8_t *)t_modes.data + i, 1);
        if (mode > M_MEMBER)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "nodes_modes[%lld] = %d",
                               (long long)i, mode);
        if (feat[i] < 0 || feat[i] >= INT32_MAX)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "nodes_featureids[%lld] = %lld",
                               (long long)i, (long long)feat[i]);
        int64_t lim_t = tleaf[i] ? nl : nn, lim_f = fleaf[i] ? nl : nn;
        if (tids[i] < 0 || tids[i] >= lim_t || fids[i] < 0 || fids[i] >= lim_f)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "node %lld: a branch points outside the %s", (long long)i,
                               tleaf[i] || fleaf[i] ? "nodes or leaves" : "nodes");
        p->mode = mode;
        p->feature = (int32_t)feat[i];
        p->value = splits[i];
        p->missing_true = miss && miss[i] == 1;
        p->t = (int32_t)(tleaf[i] ? nn + tids[i] : tids[i]);
        p->f = (int32_t)(fleaf[i] ? nn + fids[i] : fids[i]);
        if (mode == M_MEMBER) {
            /* this node's members: the next values up to a NaN (or the end) */
            if (next_member >= n_members)
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                   "node %lld is BRANCH_MEMBER but membership_values has no "
                                   "set left for it",
                                   (long long)i);
            int64_t s = next_member;
            while (next_member < n_members && !isnan(members[next_member])) next_member++;
            p->set = (int32_t)s;
            p->nset = (int32_t)(next_member - s);
            next_member++; /* skip the NaN */
        }
    }
    for (int64_t k = 0; k < nl; k++) {
        if (targ[k] < 0 || targ[k] >= m->n_targets)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "leaf_targetids[%lld] = %lld",
                               (long long)k, (long long)targ[k]);
        tnode *p = &m->nodes[nn + k];
        p->mode = M_LEAF;
        p->t = (int32_t)k;
        p->f = 1;
        m->weights[k] = (tweight){targ[k], lw[k]};
    }
    m->n_weights = nl;
    for (int64_t r = 0; r < nr; r++) {
        int64_t i = roots[r];
        if (i < 0 || i >= nn)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "tree_roots[%lld] = %lld",
                               (long long)r, (long long)i);
        /* a one-leaf tree: both branches name the same leaf */
        if (tleaf[i] && fleaf[i] && tids[i] == fids[i]) i = nn + tids[i];
        m->roots[r] = (int32_t)i;
    }
    m->n_trees = nr;
    if ((st = check_acyclic(m, err))) return st;
    find_max_feature(m);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Evaluation

static bool is_member(const tree_model *m, const tnode *p, double v) {
    for (int32_t i = 0; i < p->nset; i++)
        if (m->sets[p->set + i] == v) return true;
    return false;
}

/* The leaf that row x reaches from node i. */
static const tnode *leaf_of(const tree_model *m, int32_t i, const double *x) {
    const tnode *p = &m->nodes[i];
    while (p->mode != M_LEAF) {
        double v = x[p->feature];
        bool go;
        switch (p->mode) {
        case M_LEQ: go = v <= p->value; break;
        case M_LT: go = v < p->value; break;
        case M_GTE: go = v >= p->value; break;
        case M_GT: go = v > p->value; break;
        case M_EQ: go = v == p->value; break;
        case M_NEQ: go = v != p->value; break;
        default: go = is_member(m, p, v); break;
        }
        if (!go && p->missing_true && isnan(v)) go = true;
        p = &m->nodes[go ? p->t : p->f];
    }
    return p;
}

/* Rounds to float when the scores are accumulated in single precision. */
static double rnd(bool f32, double v) { return f32 ? (double)(float)v : v; }

/* Aggregates every tree's leaf for row x into acc/has (n_targets each).
 * With float inputs the sums are rounded to float at every step, as
 * onnxruntime accumulates them: ties such as a random forest's 0.5 then
 * break the way scikit-learn's (exact) probabilities do. */
static void aggregate_row(const tree_model *m, bool f32, const double *x, double *acc,
                          double *has) {
    for (int64_t k = 0; k < m->n_targets; k++) acc[k] = has[k] = 0;
    for (int64_t r = 0; r < m->n_trees; r++) {
        const tnode *leaf = leaf_of(m, m->roots[r], x);
        const tweight *w = m->weights + leaf->t;
        for (int32_t i = 0; i < leaf->f; i++) {
            int64_t k = w[i].target;
            double v = rnd(f32, w[i].value);
            switch (m->agg) {
            case AGG_MIN:
                if (!has[k] || v < acc[k]) acc[k] = v;
                break;
            case AGG_MAX:
                if (!has[k] || v > acc[k]) acc[k] = v;
                break;
            default: acc[k] = rnd(f32, acc[k] + v); break;
            }
            has[k] = 1;
        }
    }
}

/* Regression: scores of one row, finished (average, base values, transform). */
static void regress_row(const tree_model *m, bool f32, double *acc) {
    int64_t t = m->n_targets;
    if (m->agg == AGG_AVERAGE && m->n_trees > 0)
        for (int64_t k = 0; k < t; k++) acc[k] = rnd(f32, acc[k] / (double)m->n_trees);
    if (m->n_base == t)
        for (int64_t k = 0; k < t; k++) acc[k] = rnd(f32, acc[k] + rnd(f32, m->base[k]));
    if (t > 1 || m->post == ONYX_ML_POST_PROBIT) onyx_ml_post_row(m->post, acc, t);
}

/* Classification: writes the class scores of one row to z and returns the
 * predicted class index. */
static int64_t classify_row(const tree_model *m, bool f32, double *acc, double *has, float *z) {
    int64_t L = m->n_targets;
    if (m->binary) {
        /* scikit-learn's binary export: one score s for the positive class
         * (a probability when every weight is positive, else a margin). */
        double s = 0;
        for (int64_t k = 0; k < L; k++) s += acc[k];
        if (m->n_base == 1) s = rnd(f32, s + rnd(f32, m->base[0]));
        else if (m->n_base == 2) s = rnd(f32, s + rnd(f32, m->base[1]));
        onyx_ml_binary_scores(m->post, m->all_positive, s, z);
        return (m->all_positive ? s > 0.5 : s > 0) ? 1 : 0;
    }
    for (int64_t k = 0; k < L && k < m->n_base; k++) {
        acc[k] = rnd(f32, acc[k] + rnd(f32, m->base[k]));
        has[k] = 1;
    }
    /* the best class among those that received a score */
    int64_t best = -1;
    for (int64_t k = 0; k < L; k++)
        if (has[k] && (best < 0 || acc[k] > acc[best])) best = k;
    onyx_ml_post_row(m->post, acc, L);
    for (int64_t k = 0; k < L; k++) z[k] = (float)acc[k];
    return best < 0 ? 0 : best;
}

typedef struct tree_job {
    const tree_model *m;
    bool f32;        /* accumulate in single precision (input not double) */
    const double *x; /* (N, C) */
    int64_t c;
    double *work;    /* per thread: 2 * n_targets */
    double *y;       /* regression: (N, T) */
    float *z;        /* classification: (N, L) */
    int64_t *label;  /* classification: (N) */
} tree_job;

static void tree_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const tree_job *j = ctx;
    const tree_model *m = j->m;
    int64_t t = m->n_targets;
    double *acc = j->work + 2 * t * (int64_t)thread, *has = acc + t;
    for (int64_t r = begin; r < end; r++) {
        aggregate_row(m, j->f32, j->x + r * j->c, acc, has);
        if (j->label) {
            j->label[r] = classify_row(m, j->f32, acc, has, j->z + r * t);
        } else {
            regress_row(m, j->f32, acc);
            memcpy(j->y + r * t, acc, sizeof *acc * (size_t)t);
        }
    }
}

/* Reads input 0, checks its features and runs the trees over every row:
 * fills job->y (regression, scratch) or job->z/label (classification). */
static onyx_status run_trees(const tree_model *m, onyx_exec *x, bool classify, float *z,
                             int64_t *label, int64_t rows, double **y) {
    const onyx_tensor *in = onyx_exec_input(x, 0);
    int64_t r, c;
    onyx_status st = onyx_ml_rows(x, in, &r, &c);
    if (st) return st;
    if (m->max_feature >= c)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "the trees read feature %lld, the input has %lld features",
                              (long long)m->max_feature, (long long)c);
    const double *xd;
    if ((st = onyx_ml_input_f64(x, in, &xd))) return st;
    int64_t t = m->n_targets, threads = onyx_exec_threads(x) > 0 ? onyx_exec_threads(x) : 1;
    int64_t cnt = onyx_dims_count(2, (int64_t[]){threads, 2 * t});
    size_t bytes = cnt < 0 ? SIZE_MAX : onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, cnt);
    double *work = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes);
    double *out = NULL;
    if (!classify) {
        cnt = onyx_dims_count(2, (int64_t[]){rows, t});
        bytes = cnt < 0 ? SIZE_MAX : onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, cnt ? cnt : 1);
        out = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes);
        *y = out;
    }
    if (!work || (!classify && !out))
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    tree_job j = {m, in->dtype != ONYX_DTYPE_DOUBLE, xd, c, work, out, z, label};
    int64_t cost = m->n_trees * 8 + 1;
    onyx_exec_parallel(x, rows, 1 + 4096 / cost, tree_task, &j);
    return onyx_exec_aborted(x) ? onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled") : ONYX_OK;
}

static onyx_status input_rows(onyx_exec *x, int64_t *rows) {
    const onyx_tensor *in = onyx_exec_input(x, 0);
    int64_t c;
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    return onyx_ml_rows(x, in, rows, &c);
}

onyx_status onyx_ml_run_tree_classifier(const onyx_node *n, onyx_exec *x) {
    const tree_model *m = n->state;
    int64_t rows;
    onyx_status st = input_rows(x, &rows);
    if (st) return st;
    onyx_tensor *z;
    int64_t *label = onyx_exec_scratch(x, sizeof *label * (size_t)(rows ? rows : 1));
    if (!label) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = onyx_exec_output(x, 1, ONYX_DTYPE_FLOAT, 2, (int64_t[]){rows, m->n_targets}, &z)))
        return st;
    if ((st = run_trees(m, x, true, z->data, label, rows, NULL))) return st;
    return onyx_ml_labels_write(x, 0, &m->labels, rows, label);
}

/* The regression of every row into output 0 (rows, targets) of type dt. */
static onyx_status regress(const onyx_node *n, onyx_exec *x, onyx_dtype dt) {
    const tree_model *m = n->state;
    int64_t rows;
    double *y;
    onyx_status st = input_rows(x, &rows);
    if (st) return st;
    if ((st = run_trees(m, x, false, NULL, NULL, rows, &y))) return st;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, dt, 2, (int64_t[]){rows, m->n_targets}, &out))) return st;
    if (onyx_convert(dt, out->data, ONYX_DTYPE_DOUBLE, y, rows * m->n_targets, false))
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output type %s", onyx_dtype_name(dt));
    return ONYX_OK;
}

onyx_status onyx_ml_run_tree_regressor(const onyx_node *n, onyx_exec *x) {
    return regress(n, x, ONYX_DTYPE_FLOAT);
}

onyx_status onyx_ml_run_tree_ensemble(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *in = onyx_exec_input(x, 0);
    return regress(n, x, in ? in->dtype : ONYX_DTYPE_FLOAT);
}
