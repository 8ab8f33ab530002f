"""test_page.py - the demo page of `onyx serve` (web/, docs/demo.md) in headless
Chromium driven by selenium: `onyx serve --model-repository models` on a free
loopback port, the page at "/", and every prediction it shows checked against
the command line on the same input (`onyx predict` on the uploaded file,
`onyx run` on the tensor the page sent or the form's values).

Owns: the end-to-end check of the page. Does not own: the protocol (tests/server)
or the models' quality (tools/train_demo_models.py reports it).

Skipped, with the reason, only when Chromium or its driver is not installed
(Debian packages chromium, chromium-driver; tools/setup-deps.sh installs them)
or selenium is missing from the venv (tests/requirements.txt).
Set ONYX_DEMO_SCREENSHOT=PATH to save a screenshot of the page after the
drawing test (docs/screenshot.png is made that way).
"""

import base64
import json
import os
import pathlib
import queue
import re
import shutil
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ONYX = os.environ.get("ONYX", str(ROOT / "build" / "onyx"))
MODELS = ROOT / "models"
DIGITS = MODELS / "digits"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium "
                "chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (tests/requirements.txt)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

WAIT_S = 20  # every wait below is bounded by this


# ----------------------------------------------------------------------------
# The server and the browser


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


@pytest.fixture(scope="module")
def server():
    """onyx serve on a port the kernel picks (--port 0), read back from the
    JSON `listening` log line; stopped with SIGTERM."""
    proc = subprocess.Popen(
        [ONYX, "serve", "--model-repository", str(MODELS), "--host", "127.0.0.1", "--port", "0",
         "--threads", "2", "--log-format", "json", "--no-access-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()
    port, log = None, []
    deadline = time.monotonic() + WAIT_S
    try:
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            log.append(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg", "").startswith("listening"):
                port = rec.get("port") or int(rec["msg"].rsplit(":", 1)[1])
        assert port, "onyx serve did not start:\n" + "".join(log)
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if _get(base + "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1200,1500", "--force-device-scale-factor=1",
              "--disable-background-networking", "--no-first-run"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(WAIT_S)
    yield d
    d.quit()


@pytest.fixture()
def page(server, browser):
    """The page, loaded fresh, with its model list rendered."""
    status, ctype, body = _get(server + "/")
    assert status == 200 and ctype.startswith("text/html") and b"/ui/app.js" in body, (
        "onyx serve does not answer / with the page (src/server/server.c must serve "
        "onyx_ui_find(path), src/server/ui_assets.h)")
    browser.get(server + "/")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#models .model")) == 3,
             "the three demo models listed")
    return browser


def wait_for(cond, what):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def result_seq(d):
    return int(d.find_element(By.ID, "result").get_attribute("data-seq") or 0)


def wait_result(d, before):
    """Waits for a new result after `before`; returns the status ("done")."""
    wait_for(lambda: result_seq(d) > before, "a result")
    res = d.find_element(By.ID, "result")
    status = res.get_attribute("data-status")
    assert status == "done", res.text
    return status


def shown_label(d):
    return d.find_element(By.ID, "result-label").text


def shown_bars(d):
    """[(label, score)] as the page shows them, highest first."""
    bars = d.find_elements(By.CSS_SELECTOR, "#result-bars .bar")
    return [(b.get_attribute("data-label"), float(b.get_attribute("data-score"))) for b in bars]


def select_model(d, name):
    d.find_element(By.CSS_SELECTOR, f'#model-tabs [data-model="{name}"]').click()
    wait_for(lambda: d.find_element(By.CSS_SELECTOR, f'#model-tabs [data-model="{name}"]')
             .get_attribute("aria-selected") == "true", f"model {name} selected")


def save_screenshot(d, path):
    """The whole page (beyond the window), once the metrics table shows the
    requests made."""
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, '#metrics-table tr[data-model="digits"]'),
             "metrics rows")
    size = d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def severe_console(d):
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


# ----------------------------------------------------------------------------
# The command line as the oracle


def digits_cli_args():
    """The digits model's preprocessing parameters from its config.pbtxt, as
    `onyx predict` options (so the test follows the config)."""
    text = (DIGITS / "config.pbtxt").read_text()
    params = dict(re.findall(r'key:\s*"([^"]+)"\s*value:\s*\{\s*string_value:\s*"([^"]*)"', text))
    args = ["--labels", str(DIGITS / params["labels"])]
    for key, opt in (("preprocessing", "--preprocess"), ("mean", "--mean"), ("std", "--std"),
                     ("filter", "--filter")):
        if key in params:
            args += [opt, params[key]]
    return args


def onyx_predict(image):
    out = subprocess.run([ONYX, "predict", str(DIGITS / "1" / "model.onnx"), str(image),
                          "--json", "--all", "--top", "10"] + digits_cli_args(),
                         capture_output=True, text=True, timeout=60, check=True)
    top = json.loads(out.stdout)["predictions"][0]["top"]
    return [(t["label"], t["score"]) for t in top]


def onyx_run(model, tmp, **inputs):
    """Runs `onyx run` on .npy inputs; returns {output name: array or JSON value}."""
    args = [ONYX, "run", str(model), "-o", str(tmp / "out")]
    for name, arr in inputs.items():
        np.save(tmp / f"{name}.npy", arr)
        args += ["-i", f"{name}={tmp / (name + '.npy')}"]
    subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    res = {}
    for f in (tmp / "out").iterdir():
        res[f.stem] = np.load(f) if f.suffix == ".npy" else json.loads(f.read_text())
    return res


def digit_png(path, index=13, scale=12, invert=False):
    """A test-set-like digit from scikit-learn's data set, enlarged smoothly
    (bicubic) to a realistic upload size; white on black unless `invert`."""
    from PIL import Image
    from sklearn.datasets import load_digits
    img = load_digits().images[index]
    px = Image.fromarray(np.rint(img * 255 / 16).astype(np.uint8), "L")
    px = px.resize((8 * scale, 8 * scale), Image.Resampling.BICUBIC)
    if invert:
        px = Image.fromarray(255 - np.asarray(px))
    px.save(path)
    return path


def assert_same_classes(page_bars, cli):
    """The page's top-K (from the classification extension, printed "%f") against
    the CLI's scores: same order, scores within the 6 decimals printed."""
    assert page_bars, "no bars shown"
    cli = dict(cli)
    assert page_bars[0][0] == max(cli, key=cli.get)
    for label, score in page_bars:
        assert abs(score - cli[label]) <= 1e-6 + 1e-7, (label, score, cli[label])


# ----------------------------------------------------------------------------
# Tests


def test_lists_models_and_loads_nothing_external(page):
    cards = {c.get_attribute("data-model"): c.text for c in
             page.find_elements(By.CSS_SELECTOR, "#models .model")}
    assert sorted(cards) == ["diabetes", "digits", "iris"]
    assert all("READY" in t for t in cards.values())
    assert "image: FP32[?,1,8,8]" in cards["digits"]
    assert "output_probability: MAP[?]" in cards["iris"]
    # the digits model is selected first: it has an image input
    assert page.find_element(By.ID, "image-input").is_displayed()
    origins = page.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    here = page.execute_script("return location.origin")
    assert all(o == here for o in origins), origins
    assert severe_console(page) == []


def test_upload_matches_onyx_predict(page, tmp_path):
    img = digit_png(tmp_path / "three.png")
    before = result_seq(page)
    page.find_element(By.ID, "file").send_keys(str(img))
    wait_result(page, before)
    bars = shown_bars(page)
    assert len(bars) == 10
    cli = onyx_predict(img)
    assert shown_label(page) == cli[0][0] == "3"
    assert_same_classes(bars, cli)
    assert not page.find_element(By.ID, "invert").is_selected()


def test_dark_on_light_upload_is_inverted(page, tmp_path):
    """A photo-like upload (dark ink, light paper) is inverted by the page
    before it is sent: the result is the CLI's on the inverted file."""
    img = digit_png(tmp_path / "ink.png", index=29, invert=True)
    before = result_seq(page)
    page.find_element(By.ID, "file").send_keys(str(img))
    wait_result(page, before)
    assert page.find_element(By.ID, "invert").is_selected()
    cli = onyx_predict(digit_png(tmp_path / "white.png", index=29))
    assert shown_label(page) == cli[0][0]
    assert_same_classes(shown_bars(page), cli)


def test_drawing_matches_onyx_run(page, tmp_path):
    pad = page.find_element(By.ID, "pad")
    size = pad.size["width"]
    u = size / 280  # strokes below are in the pad's own 280-pixel coordinates
    before = result_seq(page)
    page.find_element(By.ID, "pad-clear").click()
    # a "7": the bar, then the stem (offsets are from the pad's center)
    (ActionChains(page)
     .move_to_element_with_offset(pad, int(-80 * u), int(-90 * u)).click_and_hold()
     .move_by_offset(int(75 * u), 0).move_by_offset(int(75 * u), 0)
     .move_by_offset(int(-45 * u), int(85 * u)).move_by_offset(int(-45 * u), int(85 * u))
     .release().perform())
    wait_result(page, before)

    seen = page.find_element(By.ID, "seen")
    assert seen.get_attribute("data-exact") == "true"
    values = np.array(json.loads(seen.get_attribute("data-values")), dtype=np.float32)
    assert values.shape == (64,) and values.min() >= 0 and values.max() <= 16
    x = values.reshape(1, 1, 8, 8)
    probs = onyx_run(DIGITS / "1" / "model.onnx", tmp_path, image=x)["probabilities"][0]
    cli = [(str(i), float(p)) for i, p in enumerate(probs)]
    assert shown_label(page) == str(int(probs.argmax()))
    assert_same_classes(shown_bars(page), cli)
    # the page's cropping and shrinking keep a drawn 7 a 7
    assert shown_label(page) == "7"
    if os.environ.get("ONYX_DEMO_SCREENSHOT"):
        save_screenshot(page, os.environ["ONYX_DEMO_SCREENSHOT"])


def test_sample_image_button(page):
    before = result_seq(page)
    page.find_element(By.CSS_SELECTOR, '#sample-list [data-sample="4"]').click()
    wait_result(page, before)
    assert shown_label(page) == "4"


def test_iris_form_matches_onyx_run(page, tmp_path):
    select_model(page, "iris")
    values = [6.3, 2.8, 5.1, 1.5]  # between versicolor and virginica
    fields = page.find_elements(By.CSS_SELECTOR, "#fields input")
    assert len(fields) == 4
    labels = [f.find_element(By.XPATH, "..").text for f in fields]
    assert labels[0].startswith("sepal length")
    for f, v in zip(fields, values):
        f.clear()
        f.send_keys(str(v))
    before = result_seq(page)
    page.find_element(By.ID, "form-submit").click()
    wait_result(page, before)

    out = onyx_run(MODELS / "iris" / "1" / "model.onnx", tmp_path,
                   features=np.array([values], dtype=np.float32))
    expected = out["output_probability"][0]  # {class: probability}
    assert shown_label(page) == str(out["output_label"][0])
    bars = shown_bars(page)
    assert sorted(lb for lb, _ in bars) == sorted(expected)
    for label, score in bars:
        # both are float32 written in their shortest form: equal
        assert np.float32(score) == np.float32(expected[label]), (label, score, expected)
    shown = page.find_elements(By.CSS_SELECTOR, "#result-bars .bar .val")
    assert [s.text for s in shown] == [f"{100 * s:.2f}%" for _, s in bars]


def test_regression_form_matches_onyx_run(page, tmp_path):
    select_model(page, "diabetes")
    fields = page.find_elements(By.CSS_SELECTOR, "#fields input")
    assert len(fields) == 10
    values = [float(f.get_attribute("value")) for f in fields]  # the example row
    before = result_seq(page)
    page.find_element(By.ID, "form-submit").click()
    wait_result(page, before)
    out = onyx_run(MODELS / "diabetes" / "1" / "model.onnx", tmp_path,
                   features=np.array([values], dtype=np.float32))
    value = page.find_element(By.CSS_SELECTOR, '.value-out[data-output="variable"]')
    assert np.float32(value.get_attribute("data-value")) == out["variable"].ravel()[0]


def test_metrics_panel_counts_requests(page, tmp_path):
    before = result_seq(page)
    page.find_element(By.CSS_SELECTOR, '#sample-list [data-sample="1"]').click()
    wait_result(page, before)

    def digits_ok():
        rows = page.find_elements(By.CSS_SELECTOR, '#metrics-table tr[data-model="digits"] .m-ok')
        return rows and int(rows[0].text) >= 1
    wait_for(digits_ok, "the metrics table to count the digits request")
    row = page.find_element(By.CSS_SELECTOR, '#metrics-table tr[data-model="digits"]').text
    assert "ms" in row  # latency percentiles shown
    assert page.find_element(By.ID, "health-text").text == "ready"
    assert severe_console(page) == []
