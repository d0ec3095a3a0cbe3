"""The live explorer in a real JupyterLab, as a notebook user meets it.

The test starts JupyterLab on 127.0.0.1 (a free port, a random token, --no-browser, its own config, data,
settings and runtime folders) over a temporary folder holding a small notebook: one cell displays
`truncflow.widgets.Explorer.from_preset("two clusters")`, a second registers an observer that logs every value
the kernel receives from the theta slider. Headless Chromium (the system package, driven by Playwright) opens
the notebook, runs all cells from the Run menu, waits for the ipywidgets sliders and the explorer's figure,
moves the rotation slider theta to its end with the keyboard and checks: the readout went from 0.00 to 3.14,
the kernel received theta = pi, the cost text changed, and the figure changed (its PNG, pixel by pixel),
with no traceback in the notebook and no request to another host. The server and its kernel are shut down
through the server's API, then by process group if still running. Skipped only where jupyterlab, ipywidgets
or playwright is not installed (`pip install 'truncflow[notebook]' playwright`). Measured 37-55 s wall on the
shared 2-core machine (25-30 s CPU), most of it JupyterLab starting and the kernel importing JAX.
"""
import base64
import io
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("jupyterlab", reason="jupyterlab is not installed: pip install 'truncflow[notebook]'")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
pytest.importorskip("ipywidgets", reason="ipywidgets is not installed: pip install 'truncflow[notebook]'")

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": ["# The live explorer"]},
        {"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["from truncflow.widgets import Explorer\n",
                    "ex = Explorer.from_preset(\"two clusters\")\n",
                    "ex"]},
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["def log_theta(change):          # what the kernel receives from the slider (the test reads it)\n",
                    "    with open('theta.log', 'a') as f:\n",
                    "        f.write(f\"{change['new']!r}\\n\")\n",
                    "ex.w_theta.observe(log_theta, names='value')"]},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}
FIGURE = ".widget-output img"           # the explorer's matplotlib figure, inside its ipywidgets Output


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base, token, path, method="GET"):
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        return json.loads(body) if body else None


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over tmp_path/work holding explorer.ipynb: yields (base URL, token); shut down after."""
    work, home = tmp_path / "work", tmp_path / "jupyter"
    work.mkdir()
    (work / "explorer.ipynb").write_text(json.dumps(NOTEBOOK))
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)                  # no "news" toast over the page (it would fetch nothing anyway)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               MPLBACKEND="module://matplotlib_inline.backend_inline")   # figures inline even if MPLBACKEND=Agg
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={work}", "--ServerApp.terminals_enabled=False",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, work
    finally:
        try:                                          # the server stops its kernels, then itself
            _api(base, token, "/api/shutdown", method="POST")
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if proc.poll() is None:                       # still running: its process group is only ours
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _run_all_cells(page):
    """Run > Run All Cells, once the kernel is connected; again if no cell was queued (a click that came
    while the kernel was still connecting does nothing)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=90000)
    for _ in range(3):
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_function("""() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
                                        .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""", timeout=15000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail("Run All Cells queued no cell in three tries")


def _settled(page, work, timeout=60.0):
    """The figure's src once the kernel has received theta = pi, is idle, and the figure has not changed
    for 1.5 s."""
    idle = page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first
    log = work / "theta.log"
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        src = page.get_attribute(FIGURE, "src")
        if src != last:
            last, since = src, time.monotonic()
        elif (time.monotonic() - since > 1.5 and idle.count() and log.exists()
              and log.read_text().split()[-1:] == [repr(math.pi)]):
            return src
        page.wait_for_timeout(250)
    pytest.fail("the explorer's figure did not settle within a minute")


def _pixels(src):
    """The figure's pixels (H, W, 4) from its data: URL."""
    import numpy as np
    from matplotlib import image
    assert src.startswith("data:image/png;base64,"), src[:40]
    return np.asarray(image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png"))


def test_explorer_slider_changes_the_figure_in_jupyterlab(lab, tmp_path):
    import numpy as np
    from playwright.sync_api import sync_playwright
    base, token, work = lab
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: run `make browser-deps` (apt-get install chromium)")
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            outside = []
            def route(r):                             # nothing but the local server may be reached
                if r.request.url.startswith((base, "data:", "blob:")):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()
            page.route("**/*", route)
            page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}", wait_until="domcontentloaded")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
            dialog = page.locator(".jp-Dialog .jp-mod-accept")    # "Select Kernel", if JupyterLab asks
            try:
                dialog.wait_for(timeout=3000)
                dialog.click()
            except Exception:
                pass
            _run_all_cells(page)
            page.wait_for_selector(".widget-slider .noUi-handle", timeout=120000)
            page.wait_for_selector(FIGURE, timeout=120000)
            theta = page.locator(".widget-slider").filter(has_text="θ").first
            readout = theta.locator(".widget-readout")
            before_src, before_value = page.get_attribute(FIGURE, "src"), readout.inner_text()
            page.screenshot(path=str(tmp_path / "before.png"))       # kept with pytest's tmp_path, for a look
            info = page.locator(".widget-html").filter(has_text="cost =").first
            before_info = info.inner_text()
            theta.locator(".noUi-handle").focus()
            page.keyboard.press("End")                # theta to its maximum, pi
            page.wait_for_function(
                "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old && i.complete; }",
                arg=[FIGURE, before_src], timeout=60000)
            after_src = _settled(page, work)          # the slider may pass through a few values on its way
            after_value, after_info = readout.inner_text(), info.inner_text()
            page.screenshot(path=str(tmp_path / "after.png"))
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
        finally:
            browser.close()
    print(f"JupyterLab explorer check: {time.monotonic() - t0:.1f} s in the browser")
    assert not tracebacks, tracebacks
    assert (float(before_value), float(after_value)) == (0.0, 3.14), (before_value, after_value)   # theta: 0 -> pi
    assert after_info != before_info, f"the Python callback did not run: {before_info!r}"   # the cost text follows
    received = [float(v) for v in (work / "theta.log").read_text().split()]   # by the notebook's observer
    assert received and received[-1] == pytest.approx(np.pi), f"the kernel received theta = {received}"
    a, b = _pixels(before_src), _pixels(after_src)
    assert a.shape == b.shape and a.shape[0] > 100, (a.shape, b.shape)
    changed = np.any(np.abs(a - b) > 1e-3, axis=-1).mean()
    assert changed > 0.001, f"the figure did not change after moving theta ({changed:.4%} of pixels differ)"
    assert not outside, f"the page requested other hosts: {outside[:5]}"
