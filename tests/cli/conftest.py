"""Shared fixtures for the command-line tests: where the onyx binaries are,
and helpers to run them and to build/run models with onnx + onnxruntime."""
import os
import pathlib
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def onyx_binary():
    return os.environ.get("ONYX", str(ROOT / "build" / "onyx"))


def binaries():
    """The release binary, plus the ASan/UBSan one when ONYX_ASAN is set
    (hostile-input tests run under both)."""
    out = [onyx_binary()]
    if os.environ.get("ONYX_ASAN"):
        out.append(os.environ["ONYX_ASAN"])
    return out


def run_onyx(*args, binary=None, cwd=None):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    return subprocess.run(
        [binary or onyx_binary(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def check_ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def check_error(r, *fragments):
    """A failed run: non-zero exit, and exactly one line on stderr of the
    form 'onyx: error: ...' containing every fragment (case-insensitive).
    A signal (negative code) or a shell-style crash code is not a failure."""
    assert 1 <= r.returncode <= 125, f"exit {r.returncode}\nstderr:\n{r.stderr}"
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{r.stderr}"
    assert lines[0].startswith("onyx: error: "), lines[0]
    for f in fragments:
        assert f.lower() in lines[0].lower(), f"{f!r} not in {lines[0]!r}"
    return lines[0]


def save_model(model, path, check=True):
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ort_run(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


@pytest.fixture(params=binaries(), ids=lambda b: pathlib.Path(b).parent.name or "onyx")
def onyx_bin(request):
    return request.param
