"""scikit-learn models exported with skl2onnx, run through `onyx run`, checked
against scikit-learn itself (predict / predict_proba) and against onnxruntime.

Every classifier is exported twice: with skl2onnx's default ZipMap output (a
sequence of maps, written by onyx as JSON) and with options zipmap=False (a
[N, classes] tensor). The checks: the same labels as scikit-learn and
onnxruntime, probabilities within 1e-5 of both; regressors within 1e-5
relative. The models are small (a few trees, a few iterations) and trained on
the datasets scikit-learn ships (iris, digits, breast_cancer, diabetes), so
the whole file runs in well under a minute.
"""
import json
import warnings

import numpy as np
import onnx
import pytest

from model_helpers import onyx_bin, run_onyx  # noqa: F401 (fixture)

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris  # noqa: E402
from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,  # noqa: E402
                              HistGradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.feature_extraction import DictVectorizer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import Binarizer, Normalizer, OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.svm import SVC, SVR, LinearSVC  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from skl2onnx.common.data_types import (DictionaryType, FloatTensorType,  # noqa: E402
                                        StringTensorType)
from threadpoolctl import threadpool_limits  # noqa: E402 (a scikit-learn dependency)

PROBA_TOL = 1e-5   # absolute, on probabilities
REG_RTOL = 1e-5    # relative, on regression outputs
N_TEST = 40        # held-out rows fed to the models

# onnxruntime evaluates SVM kernels in float32: on the cubic kernel its
# probabilities are themselves 1.4e-5 away from scikit-learn's (onyx, in
# double like libsvm, stays within 2e-6), so it is compared more loosely.
ORT_TOL = {"svc_poly_iris": 1e-4}

# skl2onnx 1.20 hands Python bools to integer-list attributes for
# HistGradientBoosting leaves, which protobuf >= 6 rejects; convert them.
import skl2onnx.common._container as _container  # noqa: E402

_make_node = _container.make_node


def _ints_not_bools(v):
    if isinstance(v, (list, tuple)) and any(isinstance(e, (bool, np.bool_)) for e in v):
        return [int(e) for e in v]
    return v


_container.make_node = lambda *a, **kw: _make_node(*a, **{k: _ints_not_bools(v)
                                                          for k, v in kw.items()})


# ----------------------------------------------------------------------------
# Data and models


def _split(X, y, seed=0):
    """A fixed shuffle: N_TEST held-out rows, the rest for training."""
    idx = np.random.default_rng(seed).permutation(len(X))
    test, train = idx[:N_TEST], idx[N_TEST:]
    return X[train], y[train], X[test]


def _data(name):
    loader = {"iris": load_iris, "digits": load_digits, "bc": load_breast_cancer,
              "diabetes": load_diabetes}[name]
    X, y = loader(return_X_y=True)
    return _split(X.astype(np.float32), y)


def _with_nans(X, seed, frac=0.08):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < frac] = np.nan
    return X


def _mixed():
    """diabetes as a table of 8 numeric columns and 2 text columns (sex and
    an age band), with the target split at its median into 'high'/'low'."""
    X, y = load_diabetes(return_X_y=True)
    num = np.delete(X, [0, 1], axis=1).astype(np.float32)
    sex = np.where(X[:, 1] > 0, "F", "M")
    age = np.select([X[:, 0] < -0.03, X[:, 0] < 0.03], ["young", "middle"], "old")
    cat = np.stack([sex, age], axis=1)
    label = np.where(y > np.median(y), "high", "low")
    idx = np.random.default_rng(3).permutation(len(X))
    test, train = idx[:N_TEST], idx[N_TEST:]
    return num, cat, y, label, train, test


def _mixed_pipeline(final):
    cols = ColumnTransformer([("num", StandardScaler(), list(range(8))),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), [8, 9])])
    return Pipeline([("prep", cols), ("model", final)])


def _mixed_case(final, target):
    """(model, sklearn input, onnx inputs, initial_types) for the mixed table."""
    num, cat, y, label, train, test = _mixed()
    table = np.concatenate([num.astype(object), cat.astype(object)], axis=1)
    model = _mixed_pipeline(final).fit(table[train], (label if target == "label" else y)[train])
    types = [("num", FloatTensorType([None, 8])), ("cat", StringTensorType([None, 2]))]
    return model, table[test], {"num": num[test], "cat": cat[test]}, types


CLASSIFIERS = {
    # name: () -> (fitted model, X for sklearn, {input: array} for onnx or None)
    "logreg_iris": lambda: _fit(LogisticRegression(max_iter=500), "iris"),
    "logreg_bc": lambda: _fit(make_pipeline(StandardScaler(), LogisticRegression()), "bc"),
    "rf_iris": lambda: _fit(RandomForestClassifier(n_estimators=10, max_depth=5,
                                                   random_state=0), "iris"),
    "rf_iris_strings": lambda: _fit(RandomForestClassifier(n_estimators=5, max_depth=4,
                                                           random_state=0), "iris", names=True),
    "rf_bc": lambda: _fit(RandomForestClassifier(n_estimators=10, max_depth=6,
                                                 random_state=0), "bc"),
    "gb_iris": lambda: _fit(GradientBoostingClassifier(n_estimators=15, max_depth=3,
                                                       random_state=0), "iris"),
    "gb_bc": lambda: _fit(GradientBoostingClassifier(n_estimators=15, max_depth=3,
                                                     random_state=0), "bc"),
    "hgb_digits": lambda: _fit(HistGradientBoostingClassifier(max_iter=10, random_state=0),
                               "digits"),
    "hgb_bc_nan": lambda: _fit(HistGradientBoostingClassifier(max_iter=15, random_state=0),
                               "bc", nans=True),
    "svc_iris": lambda: _fit(SVC(probability=True, random_state=0), "iris"),
    "svc_poly_iris": lambda: _fit(SVC(kernel="poly", degree=3, probability=True,
                                      random_state=0), "iris"),
    "svc_bc": lambda: _fit(make_pipeline(StandardScaler(), SVC(probability=True,
                                                               random_state=0)), "bc"),
    "knn_iris": lambda: _fit(KNeighborsClassifier(n_neighbors=5), "iris"),
    "mlp_digits": lambda: _fit(make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(32,), max_iter=60, random_state=0)), "digits"),
    "mlp_bc": lambda: _fit(make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(16,), max_iter=60, random_state=0)), "bc"),
    "pipeline_mixed": lambda: _mixed_case(LogisticRegression(), "label"),
    # Imputer, Normalizer and Binarizer in front of a classifier
    "pipeline_impute_digits": lambda: _fit(make_pipeline(
        SimpleImputer(strategy="median"), Normalizer(), Binarizer(threshold=0.1),
        LogisticRegression(max_iter=300)), "digits", nans=True),
}

# Classifiers without predict_proba: the second output is decision_function.
DECISIONS = {
    "linsvc_bc": lambda: _fit(LinearSVC(max_iter=300), "bc"),
    "linsvc_digits": lambda: _fit(LinearSVC(max_iter=300), "digits"),
}

REGRESSORS = {
    "rf_diabetes": lambda: _fit(RandomForestRegressor(n_estimators=10, max_depth=6,
                                                      random_state=0), "diabetes"),
    "hgb_diabetes_nan": lambda: _fit(HistGradientBoostingRegressor(max_iter=20, random_state=0),
                                     "diabetes", nans=True),
    "pipeline_mixed_linear": lambda: _mixed_case(LinearRegression(), "value"),
    "svr_diabetes": lambda: _fit(SVR(C=50.0), "diabetes"),
}


def _fit(model, dataset, names=False, nans=False):
    X, y, Xt = _data(dataset)
    if nans:
        X, Xt = _with_nans(X, 1), _with_nans(Xt, 2)
    if names:
        y = np.asarray(load_iris().target_names)[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn 1.9 deprecates SVC(probability=True) (removal in 1.11)
        warnings.simplefilter("ignore", FutureWarning)
        model.fit(X, y)
    return model, Xt, {"X": Xt}, None


_cache = {}


def _case(table, name):
    """Trains a case once per session: (model, sklearn X, onnx feeds, types)."""
    if name not in _cache:
        _cache[name] = table[name]()
    return _cache[name]


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """scikit-learn on one thread: OpenMP's spinning workers make
    HistGradientBoosting 40x slower to train and predict on a loaded machine."""
    with threadpool_limits(1):
        yield


def _export(model, feeds, types, zipmap):
    """The ONNX model; zipmap=None for a regressor (no such option)."""
    options = None
    if zipmap is False:
        final = model.steps[-1][1] if isinstance(model, Pipeline) else model
        options = {id(final): {"zipmap": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if types:
            return to_onnx(model, initial_types=types, options=options)
        return to_onnx(model, feeds["X"][:1], options=options)


# ----------------------------------------------------------------------------
# Running onyx and onnxruntime


def _onyx_outputs(onyx_bin, onx, feeds, tmp_path):
    """Runs the model with `onyx run`; returns {output name: array or JSON}."""
    model = tmp_path / "model.onnx"
    onnx.save(onx, model)
    args = ["run", model, "-o", tmp_path / "out"]
    for name, arr in feeds.items():
        np.save(tmp_path / f"{name}.npy", arr)
        args += ["-i", f"{name}={tmp_path / name}.npy"]
    res = run_onyx(onyx_bin, *args)
    assert res.returncode == 0, res.stderr
    out = {}
    for o in onx.graph.output:
        npy, js = tmp_path / "out" / f"{o.name}.npy", tmp_path / "out" / f"{o.name}.json"
        out[o.name] = np.load(npy) if npy.exists() else json.loads(js.read_text())
    return out


def _ort_outputs(onx, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in onx.graph.output]
    return dict(zip(names, sess.run(None, feeds)))


def _zipmap_to_array(maps, classes):
    """A ZipMap result (list of {key: p}, keys as JSON strings or not) as an
    [N, classes] array in class order."""
    rows = []
    for m in maps:
        m = {str(k): v for k, v in m.items()}
        assert sorted(m) == sorted(str(c) for c in classes)
        rows.append([m[str(c)] for c in classes])
    return np.array(rows, dtype=np.float64)


# ----------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "tensor"])
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier(name, zipmap, onyx_bin, tmp_path):
    model, X, feeds, types = _case(CLASSIFIERS, name)
    onx = _export(model, feeds, types, zipmap)
    label_name, proba_name = (o.name for o in onx.graph.output)
    got = _onyx_outputs(onyx_bin, onx, feeds, tmp_path)
    want = _ort_outputs(onx, feeds)
    classes = model.classes_

    expected_labels = model.predict(X)
    np.testing.assert_array_equal(got[label_name].ravel(), expected_labels)
    np.testing.assert_array_equal(got[label_name].ravel(), np.asarray(want[label_name]).ravel())

    if zipmap:
        assert isinstance(got[proba_name], list) and len(got[proba_name]) == len(X)
        proba = _zipmap_to_array(got[proba_name], classes)
        ort_proba = _zipmap_to_array(want[proba_name], classes)
    else:
        proba = got[proba_name]
        assert proba.dtype == np.float32 and proba.shape == (len(X), len(classes))
        ort_proba = want[proba_name]
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_TOL)
    np.testing.assert_allclose(proba, ort_proba, rtol=0, atol=ORT_TOL.get(name, PROBA_TOL))


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_regressor(name, onyx_bin, tmp_path):
    model, X, feeds, types = _case(REGRESSORS, name)
    onx = _export(model, feeds, types, zipmap=None)
    (out_name,) = (o.name for o in onx.graph.output)
    got = _onyx_outputs(onyx_bin, onx, feeds, tmp_path)[out_name]
    want = _ort_outputs(onx, feeds)[out_name]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.ravel(), model.predict(X), rtol=REG_RTOL)
    np.testing.assert_allclose(got, want, rtol=REG_RTOL)


@pytest.mark.parametrize("name", list(DECISIONS))
def test_decision_function(name, onyx_bin, tmp_path):
    model, X, feeds, types = _case(DECISIONS, name)
    onx = _export(model, feeds, types, zipmap=None)
    label_name, score_name = (o.name for o in onx.graph.output)
    got = _onyx_outputs(onyx_bin, onx, feeds, tmp_path)
    want = _ort_outputs(onx, feeds)
    np.testing.assert_array_equal(got[label_name], model.predict(X))
    np.testing.assert_array_equal(got[label_name], want[label_name])
    scores = got[score_name]
    np.testing.assert_allclose(scores.reshape(model.decision_function(X).shape),
                               model.decision_function(X), rtol=REG_RTOL, atol=1e-4)
    np.testing.assert_allclose(scores, want[score_name], rtol=REG_RTOL, atol=1e-4)


def _map_pb(path, d):
    """Writes dict d (string keys, float values) as a MapProto."""
    mp = onnx.MapProto(name="input", key_type=onnx.TensorProto.STRING,
                       string_keys=[k.encode() for k in d])
    mp.values.CopyFrom(onnx.numpy_helper.from_list([np.array(v, np.float32)
                                                    for v in d.values()]))
    path.write_bytes(mp.SerializeToString())


def test_dict_vectorizer_pipeline(onyx_bin, tmp_path):
    """DictVectorizer + LogisticRegression: the input is one map per sample."""
    X, y = load_iris(return_X_y=True)
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    rows = [{k: float(v) for k, v in zip(names, r) if v > 1.0} for r in X]  # sparse dicts
    model = make_pipeline(DictVectorizer(sparse=False), LogisticRegression(max_iter=500))
    model.fit(rows, y)
    final = model.steps[-1][1]
    types = [("input", DictionaryType(StringTensorType([1]), FloatTensorType([1])))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = to_onnx(model, initial_types=types, options={id(final): {"zipmap": False}})
    onnx.save(onx, tmp_path / "model.onnx")
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    for i in (0, 60, 149):
        _map_pb(tmp_path / "m.pb", rows[i])
        res = run_onyx(onyx_bin, "run", tmp_path / "model.onnx", "-i", tmp_path / "m.pb",
                       "-o", tmp_path / f"out{i}")
        assert res.returncode == 0, res.stderr
        label = np.load(tmp_path / f"out{i}" / "label.npy")
        proba = np.load(tmp_path / f"out{i}" / "probabilities.npy")
        ort_label, ort_proba = sess.run(None, {"input": rows[i]})
        np.testing.assert_array_equal(label, model.predict([rows[i]]))
        np.testing.assert_array_equal(label, ort_label)
        np.testing.assert_allclose(proba, model.predict_proba([rows[i]]), rtol=0, atol=PROBA_TOL)
        np.testing.assert_allclose(proba, ort_proba, rtol=0, atol=PROBA_TOL)


def test_missing_values_reach_the_trees():
    """The NaN cases must exercise nodes_missing_value_tracks_true: some test
    rows hold NaNs and the exported trees route some NaNs to the true side."""
    for table, name in [(CLASSIFIERS, "hgb_bc_nan"), (REGRESSORS, "hgb_diabetes_nan")]:
        model, X, feeds, types = _case(table, name)
        assert np.isnan(X).any()
        onx = _export(model, feeds, types, zipmap=None)
        tree = next(n for n in onx.graph.node if n.op_type.startswith("TreeEnsemble"))
        tracks = next(a for a in tree.attribute if a.name == "nodes_missing_value_tracks_true")
        assert 0 < sum(tracks.ints) < len(tracks.ints)


# ----------------------------------------------------------------------------
# Single ai.onnx.ml nodes against onnxruntime: the attributes and edge cases
# scikit-learn's exports do not reach (other post-transforms, aggregations,
# branch modes, SVM variants, string/int encoders, maps).

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper  # noqa: E402

_NP_TO_TP = {np.dtype(np.float32): TP.FLOAT, np.dtype(np.float64): TP.DOUBLE,
             np.dtype(np.int64): TP.INT64, np.dtype(np.int32): TP.INT32}


def _tensor_type(a):
    return TP.STRING if a.dtype.kind in "UO" else _NP_TO_TP[a.dtype]


def _node_model(op, inputs, n_out, ml_opset=3, **attrs):
    """A one-node ai.onnx.ml model; `inputs` maps names to arrays or dicts."""
    vis = []
    for name, v in inputs.items():
        if isinstance(v, dict):
            kt = TP.STRING if isinstance(next(iter(v)), str) else TP.INT64
            vt = TP.STRING if isinstance(next(iter(v.values())), str) else TP.FLOAT
            vis.append(helper.make_value_info(name, helper.make_map_type_proto(
                kt, helper.make_tensor_type_proto(vt, []))))
        else:
            vis.append(helper.make_tensor_value_info(name, _tensor_type(v), None))
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, list(inputs), outs, domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], "g", vis, [helper.make_value_info(o, onnx.TypeProto())
                                            for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("ai.onnx.ml", ml_opset)])
    m.ir_version = 8
    return m


def _save_input(path, v):
    if not isinstance(v, dict):
        np.save(path.with_suffix(".npy"), v)
        return path.with_suffix(".npy")
    keys = list(v)
    if isinstance(keys[0], str):
        mp = onnx.MapProto(key_type=TP.STRING, string_keys=[k.encode() for k in keys])
    else:
        mp = onnx.MapProto(key_type=TP.INT64, keys=keys)
    mp.values.CopyFrom(onnx.numpy_helper.from_list([np.array(x) if isinstance(x, str)
                                                    else np.array(x, np.float32)
                                                    for x in v.values()]))
    path.with_suffix(".pb").write_bytes(mp.SerializeToString())
    return path.with_suffix(".pb")


def _check_node(onyx_bin, tmp_path, op, inputs, n_out=1, ml_opset=3, ort_float=False, **attrs):
    """Runs the node in onyx and onnxruntime and compares every output.
    ort_float: onnxruntime implements the op for float inputs only, so it
    gets the (integer) inputs as float32 and onyx the integers themselves."""
    m = _node_model(op, inputs, n_out, ml_opset, **attrs)
    onnx.save(m, tmp_path / "node.onnx")
    args = ["run", tmp_path / "node.onnx", "-o", tmp_path / "out"]
    for name, v in inputs.items():
        args += ["-i", f"{name}={_save_input(tmp_path / name, v)}"]
    res = run_onyx(onyx_bin, *args)
    assert res.returncode == 0, res.stderr
    feeds = dict(inputs)
    if ort_float:
        feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
        m = _node_model(op, feeds, n_out, ml_opset, **attrs)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    for i, w in enumerate(want):
        npy, js = tmp_path / "out" / f"y{i}.npy", tmp_path / "out" / f"y{i}.json"
        if isinstance(w, list):  # ZipMap
            got = json.loads(js.read_text())
            assert len(got) == len(w)
            for g, d in zip(got, w):
                assert g == pytest.approx({str(k): v for k, v in d.items()}, abs=1e-6)
            continue
        got = np.load(npy)
        assert got.shape == w.shape, (op, i)
        if w.dtype.kind in "UO":
            np.testing.assert_array_equal(got.astype(str), w.astype(str))
        elif w.dtype.kind == "f":
            assert got.dtype == w.dtype or ort_float
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, w)


_RNG = np.random.default_rng(7)
_X = _RNG.normal(size=(6, 3)).astype(np.float32)
_X[2, 1] = np.nan


@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"])
def test_node_linear_classifier(post, onyx_bin, tmp_path):
    coef = _RNG.normal(size=9).tolist()
    x = np.nan_to_num(_X)
    _check_node(onyx_bin, tmp_path, "LinearClassifier", {"x": x}, 2, coefficients=coef,
                intercepts=[0.1, 0.0, -0.2], classlabels_strings=["a", "b", "c"],
                post_transform=post)
    # one coefficient row for two classes: [1 - s, s] and the label from s > 0
    _check_node(onyx_bin, tmp_path, "LinearClassifier", {"x": x.astype(np.float64)}, 2,
                coefficients=coef[:3], intercepts=[0.05], classlabels_ints=[4, 9],
                post_transform=post if post in ("NONE", "LOGISTIC") else "NONE")


@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC"])
def test_node_linear_regressor(post, onyx_bin, tmp_path):
    x = (np.nan_to_num(_X) * 4).astype(np.int64)
    _check_node(onyx_bin, tmp_path, "LinearRegressor", {"x": x}, ort_float=True,
                coefficients=[0.5, -1, 2, 1, 1, 1], intercepts=[0.5, -0.5], targets=2,
                post_transform=post)
    _check_node(onyx_bin, tmp_path, "LinearRegressor", {"x": x}, ort_float=True,
                coefficients=[0.5, -1, 2])


_SV = _RNG.normal(size=(5, 3)).astype(np.float32)


@pytest.mark.parametrize("kernel", ["LINEAR", "POLY", "RBF", "SIGMOID"])
def test_node_svm(kernel, onyx_bin, tmp_path):
    x = np.nan_to_num(_X)
    common = dict(kernel_type=kernel, kernel_params=[0.3, 0.5, 2.0],
                  support_vectors=_SV.ravel().tolist())
    # three classes without probabilities: the 3 one-vs-one decision values
    _check_node(onyx_bin, tmp_path, "SVMClassifier", {"x": x}, 2, classlabels_ints=[1, 2, 3],
                vectors_per_class=[2, 2, 1], coefficients=_RNG.normal(size=10).tolist(),
                rho=[0.1, -0.2, 0.3], **common)
    # two classes with probabilities
    _check_node(onyx_bin, tmp_path, "SVMClassifier", {"x": x}, 2, classlabels_strings=["n", "p"],
                vectors_per_class=[3, 2], coefficients=_RNG.normal(size=5).tolist(), rho=[0.2],
                prob_a=[-1.5], prob_b=[0.1], **common)
    _check_node(onyx_bin, tmp_path, "SVMRegressor", {"x": x}, n_supports=5,
                coefficients=_RNG.normal(size=5).tolist(), rho=[0.4], **common)
    _check_node(onyx_bin, tmp_path, "SVMRegressor", {"x": x}, n_supports=5, one_class=1,
                coefficients=_RNG.normal(size=5).tolist(), rho=[-0.1], **common)


def test_node_svm_linear_mode(onyx_bin, tmp_path):
    """liblinear models: no support vectors, a coefficient row per class."""
    x = np.nan_to_num(_X)
    _check_node(onyx_bin, tmp_path, "SVMClassifier", {"x": x}, 2, classlabels_ints=[0, 1, 2],
                coefficients=_RNG.normal(size=9).tolist(), rho=[0.3], post_transform="SOFTMAX",
                kernel_params=[0.0, 0.0, 0.0])
    _check_node(onyx_bin, tmp_path, "SVMRegressor", {"x": x}, coefficients=[0.1, 0.2, -0.3],
                rho=[0.5], kernel_params=[0.0, 0.0, 0.0])


def _legacy_tree(prefix, ids, modes):
    """Two trees over 3 features; every leaf votes for the given ids."""
    nodes = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 0, 2, 0, 0],
        nodes_values=[0.1, -0.3, 0, 0, 0, 0.0, 0, 0],
        nodes_modes=[modes[0], modes[1], "LEAF", "LEAF", "LEAF", modes[2], "LEAF", "LEAF"],
        nodes_truenodeids=[1, 3, 0, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 4, 0, 0, 0, 2, 0, 0],
        nodes_missing_value_tracks_true=[0, 1, 0, 0, 0, 1, 0, 0],
    )
    leaves = [(0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]
    w = {f"{prefix}_treeids": [], f"{prefix}_nodeids": [], f"{prefix}_ids": [],
         f"{prefix}_weights": []}
    for k, (t, n) in enumerate(leaves):
        for j, i in enumerate(ids):
            w[f"{prefix}_treeids"].append(t)
            w[f"{prefix}_nodeids"].append(n)
            w[f"{prefix}_ids"].append(i)
            w[f"{prefix}_weights"].append(round(0.3 * k - 0.5 + 0.2 * j, 3))
    return {**nodes, **w}


@pytest.mark.parametrize("modes", [("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE"),
                                   ("BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")])
@pytest.mark.parametrize("agg", ["SUM", "AVERAGE", "MIN", "MAX"])
def test_node_tree_regressor(agg, modes, onyx_bin, tmp_path):
    _check_node(onyx_bin, tmp_path, "TreeEnsembleRegressor", {"x": _X}, n_targets=2,
                aggregate_function=agg, base_values=[1.0, -1.0], post_transform="SOFTMAX",
                **_legacy_tree("target", [0, 1], modes))
    _check_node(onyx_bin, tmp_path, "TreeEnsembleRegressor", {"x": _X.astype(np.float64)},
                n_targets=1, aggregate_function=agg, **_legacy_tree("target", [0], modes))


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
def test_node_tree_classifier(post, onyx_bin, tmp_path):
    modes = ("BRANCH_LEQ", "BRANCH_LEQ", "BRANCH_LT")
    _check_node(onyx_bin, tmp_path, "TreeEnsembleClassifier", {"x": _X}, 2, post_transform=post,
                classlabels_strings=["x", "y", "z"], base_values=[0.1, 0.2, 0.3],
                **_legacy_tree("class", [0, 1, 2], modes))
    # the binary convention, with negative weights (a margin) and with positive ones
    for ids, base in (([0], [0.25]), ([0], None)):
        attrs = _legacy_tree("class", ids, modes)
        if base is None:
            attrs["class_weights"] = [abs(w) for w in attrs["class_weights"]]
        else:
            attrs["base_values"] = base
        _check_node(onyx_bin, tmp_path, "TreeEnsembleClassifier", {"x": _X}, 2,
                    post_transform=post if post != "SOFTMAX" else "NONE",
                    classlabels_int64s=[3, 8], **attrs)


def test_node_normalizer_scaler_binarizer_imputer(onyx_bin, tmp_path):
    xi = np.array([[1, -2, 3], [0, 0, 0], [-4, 1, 1]], np.int64)
    for norm in ("MAX", "L1", "L2"):
        _check_node(onyx_bin, tmp_path, "Normalizer", {"x": xi}, norm=norm)
        _check_node(onyx_bin, tmp_path, "Normalizer", {"x": np.nan_to_num(_X)}, norm=norm)
    _check_node(onyx_bin, tmp_path, "Scaler", {"x": xi}, offset=[1.0, 0.0, 1.0],
                scale=[2.0, 3.0, 0.5])
    _check_node(onyx_bin, tmp_path, "Binarizer", {"x": np.nan_to_num(_X)}, threshold=0.2)
    _check_node(onyx_bin, tmp_path, "Binarizer", {"x": xi.astype(np.int32)}, threshold=0.5,
                ort_float=True)
    _check_node(onyx_bin, tmp_path, "Imputer", {"x": _X}, imputed_value_floats=[7.0, 8.0, 9.0],
                replaced_value_float=float("nan"))
    _check_node(onyx_bin, tmp_path, "Imputer", {"x": xi}, imputed_value_int64s=[42],
                replaced_value_int64=0)


def test_node_encoders(onyx_bin, tmp_path):
    s = np.array([["a", "b"], ["zz", "c"]])
    _check_node(onyx_bin, tmp_path, "OneHotEncoder", {"x": s}, cats_strings=["c", "a", "b"])
    _check_node(onyx_bin, tmp_path, "OneHotEncoder", {"x": np.array([[1.7, 2.2], [3, -1]])},
                cats_int64s=[1, 2, 3])
    _check_node(onyx_bin, tmp_path, "ArrayFeatureExtractor",
                {"x": s, "i": np.array([1, 0, 1], np.int64)})
    _check_node(onyx_bin, tmp_path, "ArrayFeatureExtractor",
                {"x": np.arange(5, dtype=np.float32), "i": np.array([[0], [3]], np.int64)})
    _check_node(onyx_bin, tmp_path, "FeatureVectorizer",
                {"a": np.array([[1, 2, 3], [4, 5, 6]], np.int64),
                 "b": np.array([[7], [8]], np.int64)}, inputdimensions=[2, 3])
    _check_node(onyx_bin, tmp_path, "CategoryMapper", {"x": np.array(["b", "q", "a"])},
                cats_strings=["a", "b"], cats_int64s=[10, 20], default_int64=-5)
    _check_node(onyx_bin, tmp_path, "CategoryMapper", {"x": np.array([20, 7], np.int64)},
                cats_strings=["a", "b"], cats_int64s=[10, 20], default_string="none")
    _check_node(onyx_bin, tmp_path, "LabelEncoder", {"x": np.array(["b", "q", "a"])},
                ml_opset=1, classes_strings=["a", "b"], default_int64=-7)
    _check_node(onyx_bin, tmp_path, "LabelEncoder", {"x": np.array([1, 5, -1], np.int64)},
                ml_opset=1, classes_strings=["a", "b"], default_string="?")
    _check_node(onyx_bin, tmp_path, "LabelEncoder",
                {"x": np.array([0.5, -1.0, 2.0], np.float32)}, ml_opset=2,
                keys_floats=[0.5, 2.0], values_strings=["half", "two"])
    # opset 4: a NaN key matches any NaN
    _check_node(onyx_bin, tmp_path, "LabelEncoder",
                {"x": np.array([0.5, np.nan, 2.0], np.float32)}, ml_opset=4,
                keys_floats=[0.5, float("nan")], values_strings=["half", "nan"])
    _check_node(onyx_bin, tmp_path, "LabelEncoder", {"x": np.array([3, 4, 5], np.int64)},
                ml_opset=4, keys_tensor=helper.make_tensor("k", TP.INT64, [2], [3, 5]),
                values_tensor=helper.make_tensor("v", TP.DOUBLE, [2], [0.25, 0.75]),
                default_tensor=helper.make_tensor("d", TP.DOUBLE, [1], [9.0]))


def test_node_maps(onyx_bin, tmp_path):
    m = {3: 1.5, 1: -2.75, 0: 0.125}
    for attrs in (dict(), dict(cast_to="TO_INT64"), dict(cast_to="TO_STRING"),
                  dict(map_form="SPARSE", max_map=6), dict(map_form="SPARSE", max_map=2)):
        _check_node(onyx_bin, tmp_path, "CastMap", {"m": m}, **attrs)
    _check_node(onyx_bin, tmp_path, "DictVectorizer", {"m": m}, int64_vocabulary=[1, 2, 3])
    _check_node(onyx_bin, tmp_path, "DictVectorizer", {"m": {"b": 2.0, "zz": 1.0}},
                string_vocabulary=["a", "b"])
    _check_node(onyx_bin, tmp_path, "ZipMap", {"x": np.nan_to_num(_X)},
                classlabels_strings=["p", "q", "r"])
    _check_node(onyx_bin, tmp_path, "ZipMap", {"x": np.nan_to_num(_X)},
                classlabels_int64s=[5, 6, 7])


def _bad_tree(**change):
    attrs = _legacy_tree("target", [0], ("BRANCH_LEQ", "BRANCH_LEQ", "BRANCH_LEQ"))
    attrs.update(change)
    return attrs


@pytest.mark.parametrize("op, attrs, message", [
    ("TreeEnsembleRegressor", _bad_tree(nodes_truenodeids=[1, 0, 0, 0, 0, 1, 0, 0]), "cycle"),
    ("TreeEnsembleRegressor", _bad_tree(nodes_falsenodeids=[2, 9, 0, 0, 0, 2, 0, 0]),
     "does not exist"),
    ("TreeEnsembleRegressor", _bad_tree(nodes_featureids=[0, 7, 0, 0, 0, 2, 0, 0]),
     "feature 7"),
    ("TreeEnsembleRegressor", _bad_tree(target_ids=[0, 0, 3, 0, 0]), "target_ids"),
    ("TreeEnsembleRegressor", _bad_tree(nodes_modes=["BRANCH_LEQ"] * 8), "cycle"),
    ("TreeEnsembleRegressor", _bad_tree(nodes_nodeids=[0, 1, 1, 3, 4, 0, 1, 2]), "twice"),
    ("TreeEnsembleRegressor", _bad_tree(nodes_values=[0.5]), "nodes_values"),
    ("TreeEnsemble", dict(nodes_featureids=[0], nodes_truenodeids=[0], nodes_falsenodeids=[5],
                          nodes_trueleafs=[1], nodes_falseleafs=[1], leaf_targetids=[0],
                          leaf_weights=helper.make_tensor("w", TP.FLOAT, [1], [1.0]),
                          nodes_splits=helper.make_tensor("s", TP.FLOAT, [1], [0.0]),
                          nodes_modes=helper.make_tensor("m", TP.UINT8, [1], [0]),
                          tree_roots=[0], n_targets=1), "outside"),
    ("TreeEnsemble", dict(nodes_featureids=[0], nodes_truenodeids=[0], nodes_falsenodeids=[0],
                          nodes_trueleafs=[1], nodes_falseleafs=[1], leaf_targetids=[0],
                          leaf_weights=helper.make_tensor("w", TP.FLOAT, [1], [1.0]),
                          nodes_splits=helper.make_tensor("s", TP.FLOAT, [1], [0.0]),
                          nodes_modes=helper.make_tensor("m", TP.UINT8, [1], [6]),
                          tree_roots=[0], n_targets=1), "membership_values"),
    ("SVMClassifier", dict(classlabels_ints=[0, 1], vectors_per_class=[2, 2],
                           support_vectors=[1.0] * 9, coefficients=[1.0] * 4, rho=[0.0]),
     "support_vectors"),
    ("SVMClassifier", dict(classlabels_ints=[0, 1, 2], vectors_per_class=[1, 1, 1],
                           support_vectors=[1.0] * 9, coefficients=[1.0] * 6, rho=[0.0]), "rho"),
    ("LinearClassifier", dict(coefficients=[1.0] * 5, classlabels_ints=[0, 1]), "coefficients"),
])
def test_node_rejects_malformed(op, attrs, message, onyx_bin, tmp_path):
    """Inconsistent attributes fail cleanly with one line naming the cause."""
    m = _node_model(op, {"x": np.nan_to_num(_X)}, 1, 5 if op == "TreeEnsemble" else 3, **attrs)
    onnx.save(m, tmp_path / "bad.onnx")
    np.save(tmp_path / "x.npy", np.nan_to_num(_X))
    res = run_onyx(onyx_bin, "run", tmp_path / "bad.onnx", "-i", tmp_path / "x.npy",
                   "-o", tmp_path / "out")
    assert res.returncode == 1, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
