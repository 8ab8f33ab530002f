"""Fixtures for the `onyx serve` tests: the models (built with onnx.helper,
scikit-learn + skl2onnx), images, and a helper that starts the server binary
on a free loopback port, waits for /v2/health/ready and stops it.

Everything talks to 127.0.0.1 only; every wait and loop is bounded."""

import http.client
import io
import json
import os
import signal
import subprocess
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONYX = os.environ.get("ONYX", os.path.join(ROOT, "build", "onyx"))


def _save(model, path, opset=17):
    model.opset_import[0].version = opset
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


# ----------------------------------------------------------------------------
# Models


def make_lin(path, seed=0):
    """x [N,4] -> softmax(x @ W) [N,3]: small and fast."""
    w = np.random.RandomState(seed).randn(4, 3).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]),
         helper.make_node("Softmax", ["m"], ["y"], axis=-1)],
        "lin",
        [helper.make_tensor_value_info("x", TP.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TP.FLOAT, ["N", 3])],
        [numpy_helper.from_array(w, "W")])
    return _save(helper.make_model(g), path)


def make_cnn(path, size=32, classes=10):
    """A small image classifier: image [N,3,S,S] -> probs [N,classes]."""
    rs = np.random.RandomState(1)
    w1 = (rs.randn(8, 3, 3, 3) * 0.3).astype(np.float32)
    b1 = (rs.randn(8) * 0.1).astype(np.float32)
    w2 = (rs.randn(16, 8, 3, 3) * 0.2).astype(np.float32)
    fc = (rs.randn(classes, 16) * 0.5).astype(np.float32)
    fb = (rs.randn(classes) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
         helper.make_node("Relu", ["c2"], ["r2"]),
         helper.make_node("GlobalAveragePool", ["r2"], ["gp"]),
         helper.make_node("Flatten", ["gp"], ["f"]),
         helper.make_node("Gemm", ["f", "fc", "fb"], ["logits"], transB=1),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)],
        "cnn",
        [helper.make_tensor_value_info("image", TP.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("probs", TP.FLOAT, ["N", classes])],
        [numpy_helper.from_array(a, n) for a, n in
         [(w1, "w1"), (b1, "b1"), (w2, "w2"), (fc, "fc"), (fb, "fb")]])
    return _save(helper.make_model(g), path)


# KServe datatype -> (ONNX type, numpy type)
DTYPES = {
    "BOOL": (TP.BOOL, np.bool_), "UINT8": (TP.UINT8, np.uint8), "UINT16": (TP.UINT16, np.uint16),
    "UINT32": (TP.UINT32, np.uint32), "UINT64": (TP.UINT64, np.uint64),
    "INT8": (TP.INT8, np.int8), "INT16": (TP.INT16, np.int16), "INT32": (TP.INT32, np.int32),
    "INT64": (TP.INT64, np.int64), "FP16": (TP.FLOAT16, np.float16),
    "FP32": (TP.FLOAT, np.float32), "FP64": (TP.DOUBLE, np.float64),
    "BYTES": (TP.STRING, np.object_),
}


def make_types(path):
    """One Identity per datatype: in_<DT> [N,2] -> out_<DT>."""
    nodes, ins, outs = [], [], []
    for dt, (onnx_t, _) in DTYPES.items():
        nodes.append(helper.make_node("Identity", [f"in_{dt}"], [f"out_{dt}"]))
        ins.append(helper.make_tensor_value_info(f"in_{dt}", onnx_t, ["N", 2]))
        outs.append(helper.make_tensor_value_info(f"out_{dt}", onnx_t, ["N", 2]))
    return _save(helper.make_model(helper.make_graph(nodes, "types", ins, outs)), path)


def make_slow(path, n=12, size=256):
    """x [N,size] -> n chained MatMul+Tanh with size x size weights: slow on purpose."""
    rs = np.random.RandomState(2)
    nodes, inits, cur = [], [], "x"
    for i in range(n):
        w = (rs.randn(size, size) / np.sqrt(size)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]))
        cur = f"t{i}"
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    g = helper.make_graph(nodes, "slow",
                          [helper.make_tensor_value_info("x", TP.FLOAT, ["N", size])],
                          [helper.make_tensor_value_info("y", TP.FLOAT, ["N", size])], inits)
    return _save(helper.make_model(g), path)


def make_sklearn(path, zipmap=True):
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x.astype(np.float32), y)
    options = None if zipmap else {id(clf): {"zipmap": False}}
    onx = to_onnx(clf, x[:1].astype(np.float32), options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        "lin": make_lin(str(d / "lin.onnx")),
        "cnn": make_cnn(str(d / "cnn.onnx")),
        "types": make_types(str(d / "types.onnx")),
        "slow": make_slow(str(d / "slow.onnx")),
        "iris": make_sklearn(str(d / "iris.onnx"), zipmap=True),
        "iris_tensor": make_sklearn(str(d / "iris_tensor.onnx"), zipmap=False),
    }


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ort_run(path, feeds):
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


# ----------------------------------------------------------------------------
# Images


def image_bytes(fmt="JPEG", size=(48, 40), seed=0):
    from PIL import Image
    rs = np.random.RandomState(seed)
    arr = (rs.rand(size[1], size[0], 3) * 255).astype(np.uint8)
    arr[::4] = 255 - arr[::4]
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format=fmt)
    return b.getvalue()


def preprocess(data, size=32):
    """Pillow + numpy reference of onyx's default image preprocessing:
    convert('RGB'), resize to size x size bicubic, /255, ImageNet mean/std, NCHW."""
    from PIL import Image
    im = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size), Image.BICUBIC)
    x = np.asarray(im).astype(np.float32) / np.float32(255)
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


# ----------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, args, log_path, env=None):
        self.log_path = str(log_path)
        self.log = open(self.log_path, "wb")
        args = list(args)
        # A server whose log does not say the port (--log-level warn) gets a fixed one.
        fixed = args[args.index("--port") + 1] if "--port" in args else None
        cmd = [ONYX, "serve", "--host", "127.0.0.1"] + ([] if fixed else ["--port", "0"]) + args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env=env or os.environ.copy())
        self.port = int(fixed) if fixed else None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"onyx serve exited {self.proc.returncode}:\n{self.logs()}")
            for line in self.logs().splitlines():
                if '"listening on' in line:
                    self.port = json.loads(line)["port"]
            time.sleep(0.02)
        if self.port is None:
            self.kill()
            raise RuntimeError("onyx serve did not start listening:\n" + self.logs())
        self.url = f"127.0.0.1:{self.port}"
        while time.time() < deadline:
            try:
                st, _, _ = self.request("GET", "/v2/health/ready")
                if st == 200:
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"onyx serve exited:\n{self.logs()}")
            time.sleep(0.02)
        raise RuntimeError("onyx serve did not become ready:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def json(self, method, path, doc=None, timeout=30):
        body = None if doc is None else (doc if isinstance(doc, (bytes, str)) else json.dumps(doc))
        st, h, data = self.request(method, path, body,
                                   {"Content-Type": "application/json"}, timeout)
        return st, (json.loads(data) if data else None)

    def metrics(self):
        st, _, data = self.request("GET", "/metrics")
        assert st == 200
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        return self.proc.returncode

    def sanitizer_reports(self):
        return [l for l in self.logs().splitlines()
                if "Sanitizer" in l or "runtime error:" in l]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_server(tmp_path):
    """start_server(args...) -> Server; every server is stopped at the end."""
    started = []

    def start(*args, env=None):
        s = Server(args, tmp_path / f"server{len(started)}.log", env)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()
    for s in started:
        assert s.sanitizer_reports() == [], s.logs()


@pytest.fixture(scope="module")
def files_server(models, tmp_path_factory):
    """One server for the read-mostly tests: every model file served directly."""
    log = tmp_path_factory.mktemp("log") / "server.log"
    s = Server([models[k] for k in ("lin", "cnn", "types", "iris", "iris_tensor")], log)
    yield s
    assert s.stop() == 0, s.logs()
    assert s.sanitizer_reports() == [], s.logs()
