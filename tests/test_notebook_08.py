"""Notebook 08 (click refinement demo) headless: scripted clicks through the widget's handler."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image


def code_outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


@pytest.mark.slow
def test_notebook_08_applies_scripted_clicks_and_saves_overlay(smoke_run):
    # the demo uses val sample 0 of notebook 01's data (smoke.yaml: scripted_clicks [[44, 25, true], [57, 29, true], [20, 90, false]], clicks_policy oracle)
    run_dir = smoke_run.require("08")
    overlay_png = run_dir / "figures" / "08_final_overlay.png"
    curve_png = run_dir / "figures" / "08_iou_curve.png"
    assert overlay_png.is_file() and curve_png.is_file() and (run_dir / "figures" / "08_session.png").is_file()
    overlay = np.asarray(Image.open(overlay_png).convert("RGB"))
    side = overlay.shape[0]
    assert overlay.shape == (side, side, 3) and side >= 384  # the image upscaled for display
    # the history table in the executed notebook lists the three clicks in order, all by the human
    nb = json.loads((run_dir / "08_click_refinement_demo.ipynb").read_text())
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in code_outputs(nb)]
    table = next(t for t in texts if "latency_s" in t)
    rows = [r.split() for r in table.splitlines()[1:]]
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [("human", "44", "25", "True"), ("human", "57", "29", "True"),
                                                        ("human", "20", "90", "False")]
    # markers sit at the clicked pixels of the upscaled image: green fill for positive, red for negative
    scale = side // 112  # smoke image_size
    def centre(x, y):
        return tuple(overlay[y * scale + scale // 2, x * scale + scale // 2])
    assert centre(44, 25) == (0, 200, 0) and centre(57, 29) == (0, 200, 0)
    assert centre(20, 90) == (230, 0, 0)
    # the mask is see-through dodger blue with a white contour core, not SegAgent's green
    assert (overlay == (255, 255, 255)).all(axis=2).any()
    assert not (overlay == (0, 255, 0)).all(axis=2).any()


@pytest.mark.slow
def test_notebook_08_saved_notebook_shows_a_static_figure_of_the_session(smoke_run):
    run_dir = smoke_run.require("08")
    nb = json.loads((run_dir / "08_click_refinement_demo.ipynb").read_text())
    outputs = code_outputs(nb)
    pngs = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert pngs, "no image in the executed notebook: only the widget's text fallback would show"
    fig = np.asarray(Image.open(io.BytesIO(base64.b64decode("".join(pngs[0])))).convert("RGB"))
    assert fig.shape[0] > 300 and fig.shape[1] > 600  # the overlay beside the IoU curve
    # the overlay's marker colours appear in the figure: a positive (green) and a negative (red) click
    assert (fig == (0, 200, 0)).all(axis=2).any() and (fig == (230, 0, 0)).all(axis=2).any()
    # the widget's text fallback is one sentence, not the VBox(children=(HTML(... repr
    plain = ["".join(o.get("data", {}).get("text/plain", "")) for o in outputs]
    assert not any(t.startswith("VBox(") for t in plain)
    assert any(t.startswith("click demo on ") for t in plain)
    # no traceback and no red stderr block
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
