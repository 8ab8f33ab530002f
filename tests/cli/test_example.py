"""examples/classify.c (build/example): top-5 of the first output."""
import pathlib
import subprocess

import numpy as np
import pytest
from onnx import TensorProto

import models
from conftest import onyx_binary, save_model

EXAMPLE = pathlib.Path(onyx_binary()).parent / "example"


@pytest.mark.skipif(not EXAMPLE.exists(), reason="build/example not built")
def test_example_prints_argmax_and_top5(tmp_path):
    model = save_model(models.identity_model(TensorProto.FLOAT, ["N", 10]), tmp_path / "m.onnx")
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], "<f4")
    x.tofile(tmp_path / "x.f32")
    r = subprocess.run([str(EXAMPLE), str(model), str(tmp_path / "x.f32")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "argmax: 5"
    classes = [int(line.split()[2]) for line in lines[2:]]
    assert classes == list(np.argsort(-x, kind="stable")[:5])
    # A file of the wrong size is refused.
    (tmp_path / "short.f32").write_bytes(b"\0" * 12)
    r = subprocess.run([str(EXAMPLE), str(model), str(tmp_path / "short.f32")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "expected exactly 10" in r.stderr
