"""Helpers and fixtures for the model-level tests: the onyx binary, the CNN
models built by tools/build_models.py (cached), their test inputs, and
onnxruntime's logits for them (computed once per session).

Test files import the fixtures from here by name. There is deliberately no
conftest.py in tests/models: tests/cli's test files do `from conftest import`,
which would pick up the wrong module when both folders are collected."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import build_models  # noqa: E402  (tools/ is not a package)


def onyx_binary():
    """$ONYX, or build/onyx. A missing binary skips the onyx tests only when
    ONYX is unset (a local run before `make`); named explicitly, it fails."""
    path = os.environ.get("ONYX")
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail(f"ONYX={path} is not an executable")
        return path
    path = ROOT / "build" / "onyx"
    if not os.access(path, os.X_OK):
        pytest.skip("build/onyx not built (run make, or set ONYX)")
    return str(path)


def run_onyx(binary, *args, timeout=300, env=None):
    """Runs onyx; returns the CompletedProcess (text output)."""
    full = dict(os.environ)
    full.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    full.update(env or {})
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, env=full,
                          timeout=timeout)


@pytest.fixture(scope="session")
def onyx_bin():
    return onyx_binary()


@pytest.fixture(scope="session")
def model_file():
    """model_file(name, opset=17, fold_bn=False) -> path of the cached model."""
    return lambda name, opset=17, fold_bn=False: build_models.model_path(name, opset, fold_bn)


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """images(batch) -> (array, path of its .npy): the deterministic test input."""
    folder = tmp_path_factory.mktemp("inputs")
    cache = {}

    def get(batch):
        if batch not in cache:
            x = build_models.test_input(batch)
            path = folder / f"input_b{batch}.npy"
            np.save(path, x)
            cache[batch] = (x, path)
        return cache[batch]
    return get


@pytest.fixture(scope="session")
def ort_logits(images):
    """ort_logits(model_path, batch) -> onnxruntime's logits (CPU EP, all graph
    optimizations), computed once per model and batch."""
    import onnxruntime as ort
    sessions, results = {}, {}

    def get(path, batch):
        key = (str(path), batch)
        if key not in results:
            if str(path) not in sessions:
                so = ort.SessionOptions()
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                sessions[str(path)] = ort.InferenceSession(str(path), so,
                                                           providers=["CPUExecutionProvider"])
            (y,) = sessions[str(path)].run(["logits"], {"input": images(batch)[0]})
            results[key] = y
        return results[key]
    return get
