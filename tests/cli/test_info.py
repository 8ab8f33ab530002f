"""`onyx info`: text and --json descriptions of a model."""
import json

from onnx import TensorProto, helper

import models
from conftest import check_ok, run_onyx, save_model


def described_model():
    m = models.add_model(TensorProto.FLOAT, ("batch", 3))
    m.graph.name = 'add "quoted"\n\tgraph'
    helper.set_model_props(m, {"author": "onyx tests", "note": "line1\nline2 \u00e9 \\"})
    return m


def test_info_text(tmp_path):
    path = save_model(described_model(), tmp_path / "add.onnx")
    out = check_ok(run_onyx("info", path)).stdout
    assert "producer:   onyx-tests" in out
    assert "ir_version: 8" in out
    assert "ai.onnx 17" in out
    assert "nodes:      1" in out
    assert "float[batch,3]" in out
    assert "author = onyx tests" in out


def test_info_json(tmp_path, onyx_bin):
    path = save_model(described_model(), tmp_path / "add.onnx")
    doc = json.loads(check_ok(run_onyx("info", path, "--json", binary=onyx_bin)).stdout)
    assert doc["path"] == str(path)
    assert doc["producer"].startswith("onyx-tests")
    assert doc["ir_version"] == 8
    assert doc["opsets"] == {"ai.onnx": 17}
    assert doc["graph_name"] == 'add "quoted"\n\tgraph'
    assert doc["node_count"] == 1
    assert doc["inputs"] == [
        {"name": "a", "kind": "tensor", "dtype": "float", "shape": ["batch", 3]},
        {"name": "b", "kind": "tensor", "dtype": "float", "shape": ["batch", 3]},
    ]
    assert doc["outputs"] == [
        {"name": "c", "kind": "tensor", "dtype": "float", "shape": ["batch", 3]}]
    assert doc["metadata"] == {"author": "onyx tests", "note": "line1\nline2 \u00e9 \\"}


def test_info_json_sequence_and_unknown_shapes(tmp_path):
    path = save_model(models.split_to_sequence_model(), tmp_path / "seq.onnx")
    doc = json.loads(check_ok(run_onyx("info", "--json", path)).stdout)
    assert doc["inputs"] == [{"name": "x", "kind": "tensor", "dtype": "float", "shape": [6, 2]}]
    assert doc["outputs"] == [{"name": "seq", "kind": "sequence", "dtype": "float", "shape": None}]
    assert doc["graph_name"] == "g"
    path = save_model(models.identity_model(TensorProto.INT64, None), tmp_path / "id.onnx",
                      check=False)
    doc = json.loads(check_ok(run_onyx("info", path, "--json")).stdout)
    assert doc["inputs"][0]["shape"] is None
    assert doc["metadata"] == {}
