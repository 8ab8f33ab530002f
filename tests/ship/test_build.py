"""tests/ship/test_build.py - the shipped artifacts: onyx links no shared
library beyond glibc's, fits its size budget, says how it was built; `make
install` gives a prefix that a C program builds against with pkg-config
(shared and static libonyx). $ONYX is the absolute path of the onyx binary;
its directory is the make BUILD directory."""

import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parents[2]
ONYX = os.environ.get("ONYX", str(ROOT / "build" / "onyx"))
BUILD = pathlib.Path(ONYX).parent
GLIBC = ("linux-vdso.so", "linux-gate.so", "libc.so", "libm.so", "libpthread.so", "libdl.so",
         "librt.so", "ld-linux", "libmvec.so")
BUDGET_MB = 6


def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def shared_libs(path):
    """Base names of the shared objects `ldd` resolves for `path`."""
    out = run(["ldd", path]).stdout
    return [pathlib.Path(line.split()[0]).name for line in out.splitlines() if line.strip()]


def sanitized():
    return "asan" in run([ONYX, "--version"]).stdout


def test_links_only_glibc():
    libs = shared_libs(ONYX)
    assert libs, "ldd printed nothing"
    extra = [lib for lib in libs if not lib.startswith(GLIBC)]
    if sanitized():  # ASan/UBSan runtimes are shared libraries of their own
        extra = [lib for lib in extra if not re.match(r"lib(asan|ubsan|stdc\+\+|gcc_s)", lib)]
    assert extra == [], f"onyx needs shared libraries beyond glibc: {extra}"


def test_version_says_how_it_was_built():
    out = run([ONYX, "--version"]).stdout
    lines = out.splitlines()
    assert lines[0].startswith("onyx ") and "commit" in lines[0]
    build = [line for line in lines if line.startswith("build: ")]
    assert build, out
    assert re.search(r"(gcc|clang) \d+", build[0]) and "-O" in build[0]
    assert "third-party libraries static" in build[0]
    assert any(line.startswith("cpu: ") for line in lines)


def test_stripped_size_within_budget(tmp_path):
    if sanitized():
        pytest.skip("the budget is for release builds, not ASan/UBSan ones")
    stripped = tmp_path / "onyx"
    run(["strip", "-o", stripped, ONYX])
    size = stripped.stat().st_size
    print(f"onyx: {size / 2**20:.2f} MB stripped")
    assert size < BUDGET_MB * 2**20
    # The build leaves the same stripped copy next to the binary.
    assert (BUILD / "onyx.stripped").exists()


def classifier(path):
    """x [N,3,4,4] -> logits [N,10] = mean over H,W then a 3x10 matrix."""
    w = np.random.RandomState(4).randn(3, 10).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["logits"])],
        "cls",
        [helper.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TP.FLOAT, ["N", 10])],
        [numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
         numpy_helper.from_array(w, "w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def check_classify(exe, model, x_path, x, env):
    r = run([exe, model, x_path], env=env)
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0][0]
    lines = r.stdout.splitlines()
    assert lines[0] == f"argmax: {int(np.argmax(want))}"
    assert [int(line.split()[2]) for line in lines[2:7]] == list(np.argsort(-want)[:5])


@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="pkg-config is not installed")
def test_install_and_build_against_it(tmp_path):
    prefix = tmp_path / "prefix"
    run(["make", "-C", ROOT, f"BUILD={BUILD}", f"PREFIX={prefix}", "install"])
    for f in ["bin/onyx", "lib/libonyx.a", "lib/libonyx.so", "include/onyx.h",
              "lib/pkgconfig/onyx.pc"]:
        assert (prefix / f).is_file(), f
    assert os.access(prefix / "bin/onyx", os.X_OK)
    assert run([prefix / "bin/onyx", "--version"]).stdout.startswith("onyx ")
    # The installed onyx is stripped: no symbol table.
    assert "no symbols" in subprocess.run(["nm", str(prefix / "bin/onyx")], capture_output=True,
                                          text=True).stderr

    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig"))
    cflags = run(["pkg-config", "--cflags", "onyx"], env=env).stdout.split()
    libs = run(["pkg-config", "--libs", "onyx"], env=env).stdout.split()
    static_libs = run(["pkg-config", "--static", "--libs", "onyx"], env=env).stdout.split()
    assert f"-I{prefix}/include" in cflags and "-lonyx" in libs and "-ljpeg" in static_libs
    version = run(["pkg-config", "--modversion", "onyx"], env=env).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)

    model = classifier(tmp_path / "cls.onnx")
    x = np.random.RandomState(0).rand(1, 3, 4, 4).astype(np.float32)
    x.astype("<f4").tofile(tmp_path / "x.f32")
    src = ROOT / "examples" / "classify.c"
    cc = os.environ.get("CC", "cc")

    # Shared libonyx, found through LD_LIBRARY_PATH.
    shared = tmp_path / "classify_shared"
    run([cc, "-std=c11", "-o", shared, src, *cflags, *libs])
    run_env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(prefix / "lib")}
    ldd = run(["ldd", shared], env=run_env).stdout
    assert f"{prefix}/lib/libonyx.so" in ldd
    check_classify(shared, model, tmp_path / "x.f32", x, run_env)

    # Static libonyx: the archive plus its private dependencies.
    static = tmp_path / "classify_static"
    static_flags = [f if f != "-lonyx" else "-l:libonyx.a" for f in static_libs]
    run([cc, "-std=c11", "-o", static, src, *cflags, *static_flags])
    assert "libonyx" not in run(["ldd", static]).stdout
    check_classify(static, model, tmp_path / "x.f32", x, {"PATH": "/usr/bin:/bin"})
