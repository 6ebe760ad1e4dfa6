"""The click demo in a real browser: JupyterLab + Debian's chromium driven by playwright.

Starts JupyterLab on 127.0.0.1 (random free port, temporary token, throw-away
settings), opens a copy of notebook 08 whose parameters point at a tiny
SynthRef in the test's folder, runs all cells, clicks on the image at the
deepest pixel of the target (image pixel → screen position from the image
element's bounding box), checks the IoU readout rose above 0, presses Undo
and checks it went back to 0. Screenshots and the measured click-to-readout
latency go to the test's temporary folder. The server is shut down in every case.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
READOUT = ".seglib-readout"
IOU_RE = re.compile(r"IoU (\d+\.\d+) · clicks (\d+)")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]  # the budget: under 3 minutes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_copy(work: Path, run_dir: Path) -> Path:
    """Notebook 08 with an injected cell after the parameters cell (as papermill does): small and policy-free."""
    nb = nbformat.read(ROOT / "notebooks" / "08_click_refinement_demo.ipynb", as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(
        f"run_dir = {str(run_dir)!r}\nsegmenter = 'classic'\nclicks_policy = None\nscripted_clicks = []\n"
        "demo_split = 'val'\ndemo_sample = 0\ndemo_image = None"))
    path = work / "demo.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def jupyter_lab(tmp_path):
    """(base_url, token, notebook_dir): a JupyterLab server, terminated (with its kernels) afterwards."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make test installs it (scripts/system_packages.sh), or apt-get install -y chromium")
    nb_dir, state = tmp_path / "lab", tmp_path / "lab_state"
    nb_dir.mkdir()
    state.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               JUPYTER_DATA_DIR=str(state / "data"),
               IPYTHONDIR=str(state / "ipython"), MPLBACKEND="Agg")
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nb_dir}",
           f"--LabApp.workspaces_dir={state / 'workspaces'}", f"--LabApp.user_settings_dir={state / 'settings'}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyter.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited early:\n{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("jupyter lab did not answer within 60 s")
                time.sleep(0.5)
        yield base, token, nb_dir
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group: it and its kernels
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        log.close()


def readout(page) -> tuple[float, int]:
    m = IOU_RE.search(page.inner_text(READOUT))
    assert m, f"unexpected readout text {page.inner_text(READOUT)!r}"
    return float(m.group(1)), int(m.group(2))


def test_click_in_browser_raises_iou_and_undo_restores(jupyter_lab, tmp_path):
    from playwright.sync_api import sync_playwright

    from seglib.interactive import pick_demo_input
    from seglib.masks import representative_points

    base, token, nb_dir = jupyter_lab
    run_dir = tmp_path / "run"
    # the same sample the notebook will pick (this call also generates the tiny SynthRef it reads)
    demo = pick_demo_input(str(run_dir), split="val", index=0)
    height, width = demo.gt_mask.shape
    tx, ty = representative_points(demo.gt_mask, k=1)[0]  # deepest pixel of the target
    demo_copy(nb_dir, run_dir)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.goto(f"{base}/lab/tree/demo.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            try:  # JupyterLab may ask which kernel to start
                page.click(".jp-Dialog .jp-mod-accept", timeout=5_000)
            except Exception:  # noqa: BLE001 - no dialog shown
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            page.locator(".lm-MenuBar-item").filter(has_text=re.compile(r"^Run$")).click(timeout=10_000)
            page.locator(".lm-Menu-item").filter(has_text=re.compile(r"^Run All Cells")).first.click(timeout=10_000)
            try:
                page.wait_for_function(
                    "() => { const i = document.querySelector('.seglib-click-image');"
                    " return i && i.complete && i.naturalWidth > 0; }", timeout=120_000)
            finally:
                page.screenshot(path=str(tmp_path / "01_notebook_ran.png"))
            timings["open_and_run_s"] = time.perf_counter() - t_start
            img = page.locator(".seglib-click-image")
            img.scroll_into_view_if_needed()
            assert readout(page) == (0.0, 0)
            box = img.bounding_box()
            # centre of image pixel (tx, ty) on screen
            sx = box["x"] + (tx + 0.5) * box["width"] / width
            sy = box["y"] + (ty + 0.5) * box["height"] / height
            t0 = time.perf_counter()
            page.mouse.click(sx, sy)
            page.wait_for_function(f"document.querySelector('{READOUT}').innerText.includes('clicks 1')",
                                   polling="raf", timeout=30_000)
            timings["click_to_readout_ms"] = 1000 * (time.perf_counter() - t0)
            iou, n = readout(page)
            page.screenshot(path=str(tmp_path / "02_after_click.png"))
            assert n == 1 and iou > 0.0, f"IoU readout did not rise after clicking target pixel ({tx}, {ty})"
            page.click(".seglib-undo")
            page.wait_for_function(f"document.querySelector('{READOUT}').innerText.includes('clicks 0')",
                                   polling="raf", timeout=30_000)
            assert readout(page) == (0.0, 0)
            page.screenshot(path=str(tmp_path / "03_after_undo.png"))
            # a right click on the background adds a negative click (the context menu is suppressed)
            page.mouse.click(box["x"] + 2, box["y"] + 2, button="right")
            page.wait_for_function(f"document.querySelector('{READOUT}').innerText.includes('clicks 1')",
                                   polling="raf", timeout=30_000)
            assert page.locator(".lm-Menu").count() == 0
        finally:
            ctx.close()
    timings["total_s"] = time.perf_counter() - t_start
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=1))
    print("browser timings:", json.dumps(timings))
    shutil.copy(tmp_path / "02_after_click.png", tmp_path / "screenshot_click.png")
