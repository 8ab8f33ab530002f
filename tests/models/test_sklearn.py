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
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType, StringTensorType  # noqa: E402
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
}

REGRESSORS = {
    "rf_diabetes": lambda: _fit(RandomForestRegressor(n_estimators=10, max_depth=6,
                                                      random_state=0), "diabetes"),
    "hgb_diabetes_nan": lambda: _fit(HistGradientBoostingRegressor(max_iter=20, random_state=0),
                                     "diabetes", nans=True),
    "pipeline_mixed_linear": lambda: _mixed_case(LinearRegression(), "value"),
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
