"""The deployment manifests in deploy/: they parse, their ports and probes
agree, and `onyx serve` accepts their arguments and answers their probes."""

import glob
import os

import pytest

from conftest import ROOT, free_port, make_lin

yaml = pytest.importorskip("yaml")


def containers():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc["kind"] == "ServingRuntime":
                    out += [(path, doc, c) for c in doc["spec"]["containers"]]
                elif doc["kind"] == "Deployment":
                    out += [(path, doc, c) for c in doc["spec"]["template"]["spec"]["containers"]]
    return out


def flag(args, name):
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def test_manifests_are_consistent():
    found = containers()
    assert {os.path.basename(p) for p, _, _ in found} == {"servingruntime.yaml", "onyx.yaml"}
    for path, doc, c in found:
        port = int(flag(c["args"], "--port"))
        named = {p.get("name"): p["containerPort"] for p in c["ports"]}
        assert port in named.values(), path
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = c[probe]["httpGet"]
            pport = named.get(get["port"], get["port"])
            assert pport == port, (path, probe)
            assert get["path"] in ("/v2/health/ready", "/v2/health/live"), (path, probe)
        if doc["kind"] == "ServingRuntime":
            assert doc["spec"]["annotations"]["prometheus.kserve.io/port"] == str(port)
            assert doc["spec"]["annotations"]["prometheus.kserve.io/path"] == "/metrics"
            assert flag(c["args"], "--model-repository") == "/mnt/models"
    with open(os.path.join(ROOT, "deploy", "kserve", "inferenceservice.yaml")) as f:
        isvc = yaml.safe_load(f)
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "kserve-onyx"
    assert isvc["spec"]["predictor"]["model"]["protocolVersion"] == "v2"


@pytest.mark.parametrize("which", ["servingruntime.yaml", "onyx.yaml"])
def test_server_accepts_manifest_args(which, start_server, tmp_path):
    path, doc, c = [x for x in containers() if os.path.basename(x[0]) == which][0]
    repo = tmp_path / "repo"
    os.makedirs(repo / "lin" / "1")
    make_lin(str(repo / "lin" / "1" / "model.onnx"))
    port = free_port()
    args = []
    for a in c["args"][1:]:  # drop "serve"
        if a.startswith("--model-repository="):
            a = f"--model-repository={repo}"
        elif a.startswith("--port="):
            a = f"--port={port}"
        elif a.startswith("--host="):
            continue  # the fixture listens on 127.0.0.1 only
        args.append(a)
    s = start_server(*args)
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        st, _, _ = s.request("GET", c[probe]["httpGet"]["path"])
        assert st == 200
    st, _, body = s.request("GET", "/metrics")
    assert st == 200 and b"onyx_models_loaded 1" in body
