"""2-D float MaxPool (src/ops/pool.c) through `onyx run` against onnxruntime,
with the AVX2 kernels and with their generic twins (ONYX_KERNELS=generic):
the 3-wide stride-2 window of ResNet and SqueezeNet on its row kernel
(`rows->max3s2`: window rows and columns in one pass) at the widths around
its 8-output blocks, padded edges, ceil mode and border rows with fewer
window rows; other windows on the row-max-then-columns walk."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from conftest import check_ok, ort_run, run_onyx, save_model

# (channels, H, W, kernel, strides, pads [top, left, bottom, right], ceil_mode)
CASES = [
    (4, 111, 111, (3, 3), (2, 2), (0, 0, 0, 0), 1),   # SqueezeNet
    (3, 112, 112, (3, 3), (2, 2), (1, 1, 1, 1), 0),   # ResNet
    (2, 9, 9, (3, 3), (2, 2), (0, 0, 1, 1), 0),       # fewer than 8 outputs
    (2, 17, 17, (3, 3), (2, 2), (0, 0, 0, 0), 0),     # exactly 8
    (2, 19, 19, (3, 3), (2, 2), (0, 0, 0, 0), 0),     # 9: one block, one shifted
    (3, 20, 37, (3, 3), (2, 2), (1, 1, 1, 1), 1),     # ceil, odd width
    (2, 16, 40, (3, 3), (1, 2), (1, 0, 1, 2), 0),     # stride 1 down, 2 across
    (2, 13, 29, (2, 3), (2, 2), (0, 1, 1, 0), 1),     # two-row window
    (2, 30, 30, (2, 2), (2, 2), (0, 0, 0, 0), 0),     # other windows
    (2, 15, 21, (5, 5), (2, 2), (2, 2, 2, 2), 0),
    (2, 14, 14, (3, 3), (1, 1), (1, 1, 1, 1), 0),
]


@pytest.mark.parametrize("kernels", ["default", "generic"])
@pytest.mark.parametrize("c,h,w,kernel,strides,pads,ceil", CASES)
def test_maxpool_matches_onnxruntime(tmp_path, monkeypatch, kernels, c, h, w, kernel, strides,
                                     pads, ceil):
    if kernels == "generic":
        monkeypatch.setenv("ONYX_KERNELS", "generic")
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=list(kernel),
                            strides=list(strides), pads=list(pads), ceil_mode=ceil)
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, c, None, None])])
    path = save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
                      tmp_path / "m.onnx")
    x = np.random.default_rng(h * w + c).standard_normal((2, c, h, w)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    check_ok(run_onyx("run", path, "-i", f"x={tmp_path / 'x.npy'}", "-o", tmp_path / "out"))
    got, want = np.load(tmp_path / "out" / "y.npy"), ort_run(path, {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
