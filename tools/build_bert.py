#!/usr/bin/env python3
"""build_bert.py - builds a BERT-base encoder (HuggingFace BertModel without
the pooler) as an ONNX graph with onnx.helper, node for node as
torch.onnx.export writes it, with random but deterministic weights.

It owns the transformer model of bench/compare.py (and of any test that wants
one); models are cached under tests/models/cache/bert/<hash of this file>/.
It does not need torch.

Usage:
    build_bert.py [--out DIR] [--opset N] [--layers L] [--no-token-type-ids]
                  [--check [--onyx PATH]]

Without --out, the model goes to the cache and its path is printed. --check
runs it in onnxruntime and in onyx (`onyx run`) on a fixed input and prints
the max abs difference of last_hidden_state.

The graph (see transformers' modeling_bert.py):
- Inputs input_ids and attention_mask, int64 [batch, sequence] with symbolic
  dims "batch" and "sequence" (and token_type_ids likewise unless
  --no-token-type-ids, in which case the all-zero default is folded into a
  constant row as torch does with its buffer); output last_hidden_state
  float [batch, sequence, 768]. Benchmarks use sequence 128.
- Embeddings: Gather from the word, position and token-type tables;
  position ids are the exported buffer [1, 512] sliced to the sequence length
  (Shape -> Gather -> Unsqueeze -> Slice); Add, Add, LayerNorm (eps 1e-12).
- Extended attention mask computed in the graph: Unsqueeze(1), Unsqueeze(2),
  Cast to float, Sub from 1, Mul by -10000.
- Each of 12 layers: Q/K/V as MatMul with a [768, 768] initializer + Add bias,
  heads split by Reshape to a shape built from Shape/Gather/Unsqueeze/Concat,
  Transpose (K to [b, h, d, s] directly), MatMul, Div by sqrt(64), Add mask,
  Softmax(-1), MatMul, Transpose, Reshape, output MatMul + Add, residual Add,
  LayerNorm; FFN MatMul 768->3072 + Add, GELU as Div(sqrt 2) -> Erf -> Add 1
  -> Mul x -> Mul 0.5, MatMul 3072->768 + Add, residual Add, LayerNorm.
- LayerNorm: LayerNormalization(axis=-1) at opset >= 17 (what torch writes
  there); below 17 the decomposition torch writes at opsets 13-16:
  ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta.
- Weights: normal with std 0.02 (BERT's initializer_range) for embeddings and
  linear layers; biases and LayerNorm beta small (std 0.02), gamma near 1, so
  that every broadcast path is exercised with non-trivial values.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import build_models  # the cache and atomic save (tools/ is on the path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "tests", "models", "cache", "bert")

VOCAB, HIDDEN, HEADS, INTERMEDIATE, MAX_POS, TYPE_VOCAB = 30522, 768, 12, 3072, 512, 2
LAYERS, SEQ = 12, 128
LN_EPS = 1e-12
SEED = 110


class Builder:
    """Accumulates nodes and initializers; names follow torch's exporter
    ("/encoder/layer.0/attention/self/query/MatMul") and HF's parameters."""

    def __init__(self, opset, seed):
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.used = [], [], set()
        self.consts = {}

    def init(self, name, array):
        assert name not in self.used, name
        self.used.add(name)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def randn(self, shape, std=0.02, mean=0.0):
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std) + np.float32(mean)

    def weight(self, name, shape, std=0.02, mean=0.0):
        return self.init(name, self.randn(shape, std, mean))

    def const(self, value, dtype=np.float32):
        """A shared scalar or 1-D constant initializer (torch writes these as
        onnx::... initializers or Constant nodes; ORT and onyx treat both alike)."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self.consts:
            self.consts[key] = self.init(f"onnx::Const_{len(self.consts)}", arr)
        return self.consts[key]

    def node(self, op, inputs, scope, n_out=1, **attrs):
        base = f"{scope}/{op}"
        name, k = base, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # ------------------------------------------------------------------
    # Building blocks, as torch exports them

    def unsqueeze(self, x, axis, scope):
        return self.node("Unsqueeze", [x, self.const([axis], np.int64)], scope)

    def linear(self, x, cin, cout, prefix, scope):
        """nn.Linear: MatMul with the transposed weight, then Add bias."""
        w = self.weight(f"{prefix}.weight_T", (cin, cout))
        b = self.weight(f"{prefix}.bias", (cout,))
        y = self.node("MatMul", [x, w], scope)
        return self.node("Add", [b, y], scope)

    def layer_norm(self, x, prefix, scope):
        g = self.weight(f"{prefix}.weight", (HIDDEN,), mean=1.0)
        b = self.weight(f"{prefix}.bias", (HIDDEN,))
        if self.opset >= 17:
            return self.node("LayerNormalization", [x, g, b], scope, axis=-1, epsilon=LN_EPS)
        mean = self.node("ReduceMean", [x], scope, axes=[-1], keepdims=1)
        d = self.node("Sub", [x, mean], scope)
        sq = self.node("Pow", [d, self.const(2.0)], scope)
        var = self.node("ReduceMean", [sq], scope, axes=[-1], keepdims=1)
        ve = self.node("Add", [var, self.const(LN_EPS)], scope)
        sd = self.node("Sqrt", [ve], scope)
        n = self.node("Div", [d, sd], scope)
        y = self.node("Mul", [n, g], scope)
        return self.node("Add", [y, b], scope)

    def dim(self, x, i, scope):
        """Dimension i of x as a 1-D int64 tensor: Shape -> Gather -> Unsqueeze."""
        s = self.node("Shape", [x], scope)
        g = self.node("Gather", [s, self.const(i, np.int64)], scope, axis=0)
        return self.unsqueeze(g, 0, scope)

    def split_heads(self, x, scope, perm):
        """[b, s, 768] -> Reshape [b, s, 12, 64] -> Transpose(perm)."""
        b = self.dim(x, 0, scope)
        s = self.dim(x, 1, scope)
        shape = self.node("Concat", [b, s, self.const([HEADS], np.int64),
                                     self.const([HIDDEN // HEADS], np.int64)], scope, axis=0)
        r = self.node("Reshape", [x, shape], scope)
        return self.node("Transpose", [r], scope, perm=perm)


def encoder_layer(g, x, mask, i):
    p, sc = f"encoder.layer.{i}", f"/encoder/layer.{i}"
    a = f"{sc}/attention/self"
    q = g.linear(x, HIDDEN, HIDDEN, f"{p}.attention.self.query", f"{a}/query")
    k = g.linear(x, HIDDEN, HIDDEN, f"{p}.attention.self.key", f"{a}/key")
    v = g.linear(x, HIDDEN, HIDDEN, f"{p}.attention.self.value", f"{a}/value")
    qh = g.split_heads(q, a, [0, 2, 1, 3])
    kh = g.split_heads(k, a, [0, 2, 3, 1])  # key.transpose(-1, -2) merged in
    vh = g.split_heads(v, a, [0, 2, 1, 3])
    scores = g.node("MatMul", [qh, kh], a)
    scores = g.node("Div", [scores, g.const(float(np.sqrt(HIDDEN // HEADS)))], a)
    scores = g.node("Add", [scores, mask], a)
    probs = g.node("Softmax", [scores], a, axis=-1)
    ctx = g.node("MatMul", [probs, vh], a)
    ctx = g.node("Transpose", [ctx], a, perm=[0, 2, 1, 3])
    b, s = g.dim(ctx, 0, a), g.dim(ctx, 1, a)
    shape = g.node("Concat", [b, s, g.const([HIDDEN], np.int64)], a, axis=0)
    ctx = g.node("Reshape", [ctx, shape], a)
    o = f"{sc}/attention/output"
    h = g.linear(ctx, HIDDEN, HIDDEN, f"{p}.attention.output.dense", f"{o}/dense")
    h = g.node("Add", [h, x], o)
    h = g.layer_norm(h, f"{p}.attention.output.LayerNorm", f"{o}/LayerNorm")
    it = f"{sc}/intermediate"
    f = g.linear(h, HIDDEN, INTERMEDIATE, f"{p}.intermediate.dense", f"{it}/dense")
    # F.gelu (exact): x * 0.5 * (1 + erf(x / sqrt(2)))
    e = g.node("Div", [f, g.const(float(np.sqrt(2.0)))], f"{it}/intermediate_act_fn")
    e = g.node("Erf", [e], f"{it}/intermediate_act_fn")
    e = g.node("Add", [e, g.const(1.0)], f"{it}/intermediate_act_fn")
    e = g.node("Mul", [f, e], f"{it}/intermediate_act_fn")
    f = g.node("Mul", [e, g.const(0.5)], f"{it}/intermediate_act_fn")
    out = f"{sc}/output"
    y = g.linear(f, INTERMEDIATE, HIDDEN, f"{p}.output.dense", f"{out}/dense")
    y = g.node("Add", [y, h], out)
    return g.layer_norm(y, f"{p}.output.LayerNorm", f"{out}/LayerNorm")


def build(opset=17, layers=LAYERS, token_type_ids=True):
    """Returns the ModelProto (checked by onnx.checker)."""
    g = Builder(opset, SEED)
    dims = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims)]
    if token_type_ids:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, dims))
    inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dims))

    e = "/embeddings"
    word = g.weight("embeddings.word_embeddings.weight", (VOCAB, HIDDEN))
    pos = g.weight("embeddings.position_embeddings.weight", (MAX_POS, HIDDEN))
    typ = g.randn((TYPE_VOCAB, HIDDEN))
    x = g.node("Gather", [word, "input_ids"], f"{e}/word_embeddings")
    if token_type_ids:
        typ = g.init("embeddings.token_type_embeddings.weight", typ)
        t = g.node("Gather", [typ, "token_type_ids"], f"{e}/token_type_embeddings")
    else:
        # The exporter folds the all-zero buffered token types into a constant.
        t = g.init("embeddings.token_type_embeddings.row0", typ[0:1][None])
    x = g.node("Add", [x, t], e)
    ids = g.init("embeddings.position_ids", np.arange(MAX_POS, dtype=np.int64)[None])
    seq = g.dim("input_ids", 1, e)
    pids = g.node("Slice", [ids, g.const([0], np.int64), seq, g.const([1], np.int64),
                            g.const([1], np.int64)], e)
    pe = g.node("Gather", [pos, pids], f"{e}/position_embeddings")
    x = g.node("Add", [x, pe], e)
    x = g.layer_norm(x, "embeddings.LayerNorm", f"{e}/LayerNorm")

    # get_extended_attention_mask: mask[:, None, None, :], (1 - m) * -10000
    m = g.unsqueeze("attention_mask", 1, "")
    m = g.unsqueeze(m, 2, "")
    m = g.node("Cast", [m], "", to=TensorProto.FLOAT)
    m = g.node("Sub", [g.const(1.0), m], "")
    mask = g.node("Mul", [m, g.const(-10000.0)], "")

    for i in range(layers):
        x = encoder_layer(g, x, mask, i)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"],
                                    name="/Identity_last_hidden_state"))
    graph = helper.make_graph(
        g.nodes, "main_graph", inputs,
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "sequence", HIDDEN])],
        initializer=g.inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="pytorch",
                              producer_version=builder_hash(),
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = (f"BERT-base encoder ({layers} layers, hidden {HIDDEN}, {HEADS} heads, "
                        f"intermediate {INTERMEDIATE}), random weights (seed {SEED}), "
                        f"LayerNorm {'op' if opset >= 17 else 'decomposed'}")
    onnx.checker.check_model(model)
    return model


def builder_hash():
    return build_models.file_hash(__file__)


def model_filename(opset=17, layers=LAYERS, token_type_ids=True):
    name = "bert_base" if layers == LAYERS else f"bert_{layers}layer"
    return f"{name}_opset{opset}{'' if token_type_ids else '_notypes'}.onnx"


def model_path(opset=17, layers=LAYERS, token_type_ids=True, cache=CACHE):
    """Path of the cached model, building it first if needed
    (build_models.cached_model)."""
    return build_models.cached_model(cache, __file__,
                                     model_filename(opset, layers, token_type_ids),
                                     lambda: build(opset, layers, token_type_ids))


def test_inputs(path, batch=2, seq=SEQ, seed=1234):
    """A fixed feed for the model at `path`: token ids in [0, VOCAB), type ids
    0 then 1 (two segments), and masks with trailing padding on all but the
    first sequence, so the mask path matters."""
    rng = np.random.default_rng(seed)
    names = [i.name for i in onnx.load(path, load_external_data=False).graph.input]
    feeds = {"input_ids": rng.integers(0, VOCAB, (batch, seq), dtype=np.int64)}
    mask = np.ones((batch, seq), np.int64)
    for b in range(1, batch):
        mask[b, seq - (seq * b) // (2 * batch):] = 0
    feeds["attention_mask"] = mask
    if "token_type_ids" in names:
        types = np.zeros((batch, seq), np.int64)
        types[:, seq // 2:] = 1
        feeds["token_type_ids"] = types
    return feeds


def run_onnxruntime(path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(["last_hidden_state"], feeds)[0]


def run_onyx(onyx, path, feeds):
    with tempfile.TemporaryDirectory() as d:
        args = [onyx, "run", path, "-o", d]
        for name, arr in feeds.items():
            np.save(os.path.join(d, f"in_{name}.npy"), arr)
            args += ["-i", f"{name}={os.path.join(d, f'in_{name}.npy')}"]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"onyx run failed: {r.stderr.strip()}")
        return np.load(os.path.join(d, "last_hidden_state.npy"))


def check(path, onyx):
    feeds = test_inputs(path)
    t0 = time.perf_counter()
    ref = run_onnxruntime(path, feeds)
    t1 = time.perf_counter()
    got = run_onyx(onyx, path, feeds)
    t2 = time.perf_counter()
    if got.shape != ref.shape:
        return f"shape mismatch: onyx {got.shape}, onnxruntime {ref.shape}", False
    diff = float(np.abs(got.astype(np.float64) - ref).max())
    return (f"onnxruntime {1e3 * (t1 - t0):.0f} ms, onyx {1e3 * (t2 - t1):.0f} ms (load + run, "
            f"batch 2 x {SEQ}); output std {ref.std():.3f}; max abs diff {diff:.3g}"), diff < 1e-3


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the model into this folder instead of the cache")
    ap.add_argument("--opset", type=int, default=17,
                    help="17+: LayerNormalization op; 13-16: decomposed LayerNorm (default 17)")
    ap.add_argument("--layers", type=int, default=LAYERS, help=f"encoder layers ({LAYERS})")
    ap.add_argument("--no-token-type-ids", action="store_true",
                    help="no token_type_ids input (type 0 folded into a constant)")
    ap.add_argument("--check", action="store_true",
                    help="run in onnxruntime and onyx, print the max abs diff")
    ap.add_argument("--onyx", default=os.environ.get("ONYX", os.path.join(ROOT, "build", "onyx")),
                    help="onyx executable for --check (default $ONYX or build/onyx)")
    args = ap.parse_args(argv)
    if not 13 <= args.opset <= 22:
        ap.error("--opset must be in 13..22")
    if args.layers < 1:
        ap.error("--layers must be at least 1")
    types = not args.no_token_type_ids
    t0 = time.perf_counter()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, model_filename(args.opset, args.layers, types))
        build_models.save(build(args.opset, args.layers, types), path)
    else:
        path = model_path(args.opset, args.layers, types)
    print(f"{path} ({time.perf_counter() - t0:.1f} s)", flush=True)
    if args.check:
        line, ok = check(path, args.onyx)
        print("  " + line, flush=True)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
