"""ClickDemo without a browser: feed its ipyevents handler the dicts a browser sends.

ipyevents reports ``dataX``/``dataY`` in pixels of the displayed PNG, which
is the image upscaled ``demo.scale`` times; left click is positive,
shift-click and right click (``contextmenu``, or button 2) negative.
"""
import html
import re

import numpy as np
import pytest

from seglib.interactive import (ClickDemo, ClickSession, ModelClickPolicy, OraclePolicy, event_to_click,
                                load_click_policy, readout_text)
from test_interactive import FIRST_60, LONG_REFUSAL, DiscSegmenter, H, ScriptedGenerate, W


@pytest.fixture
def gt():
    m = np.zeros((H, W), bool)
    m[10:30, 10:30] = True
    return m


def browser_event(kind, x_png, y_png, shift=False, button=0):
    """The fields ipyevents sends for a mouse event on an Image widget (the ones we read, plus noise)."""
    return {"type": kind, "dataX": x_png, "dataY": y_png, "shiftKey": shift, "altKey": False, "ctrlKey": False,
            "metaKey": False, "button": button, "buttons": 0, "relativeX": x_png, "relativeY": y_png,
            "clientX": 100 + x_png, "clientY": 200 + y_png, "timeStamp": 1234.5}


def shown(html_widget) -> str:
    """The text a person reads in an HTML widget (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", html_widget.value))


def make_demo(gt, policy=None, notice=None):
    image = np.zeros((H, W, 3), np.uint8)
    return ClickDemo(ClickSession(image, "the square", DiscSegmenter(), policy, gt_mask=gt), display_px=160,
                     notice=notice)


def test_event_mapping_png_pixels_to_image_pixels():
    # scale 4: PNG pixels 80..83 all belong to image pixel 20
    assert event_to_click(browser_event("click", 80, 83), 4, W, H) == (20, 20, True)
    assert event_to_click(browser_event("click", 83, 80, shift=True), 4, W, H) == (20, 20, False)
    assert event_to_click(browser_event("contextmenu", 4, 8, button=2), 4, W, H) == (1, 2, False)
    assert event_to_click(browser_event("click", 4, 8, button=2), 4, W, H) == (1, 2, False)
    # Math.round in the browser can give the PNG width itself on the last pixel: clamp into the image
    assert event_to_click(browser_event("click", 4 * W, 4 * H), 4, W, H) == (W - 1, H - 1, True)
    assert event_to_click(browser_event("mousemove", 10, 10), 4, W, H) is None
    assert event_to_click(browser_event("click", 10, 10, button=1), 4, W, H) is None  # middle button
    assert event_to_click({"type": "click"}, 4, W, H) is None


def test_left_click_event_adds_positive_click_and_redraws(gt):
    demo = make_demo(gt)
    assert demo.scale == 4
    before_img, before_plot = demo.image.value, demo.plot.value
    assert demo.readout.value == "IoU 0.000 · clicks 0"
    demo.handle_event(browser_event("click", 4 * 20 + 2, 4 * 20 + 1))
    s = demo.session
    assert [(c.x, c.y, c.positive) for c in s.clicks] == [(20, 20, True)]
    assert s.iou == pytest.approx(29 / 400)
    assert demo.image.value != before_img and demo.plot.value != before_plot
    assert demo.readout.value == f"IoU {29 / 400:.3f} · clicks 1" == readout_text(s)
    assert demo.last_update_s is not None and "segmenter" in demo.status.value


def test_shift_click_and_right_click_add_negative_clicks(gt):
    demo = make_demo(gt)
    demo.handle_event(browser_event("click", 80, 80))
    demo.handle_event(browser_event("click", 84, 80, shift=True))
    demo.handle_event(browser_event("contextmenu", 76, 80, button=2))
    assert [(c.x, c.y, c.positive) for c in demo.session.clicks] == [(20, 20, True), (21, 20, False), (19, 20, False)]
    assert not demo.session.mask[20, 21] and not demo.session.mask[20, 19]
    assert demo.readout.value.endswith("clicks 3")


def test_undo_and_reset_buttons_restore_the_display(gt):
    demo = make_demo(gt)
    empty_png = demo.image.value
    demo.handle_event(browser_event("click", 80, 80))
    one_png = demo.image.value
    demo.handle_event(browser_event("click", 50, 50, shift=True))
    demo.buttons["Undo"].click()
    assert demo.image.value == one_png and len(demo.session.steps) == 1
    demo.buttons["Reset"].click()
    assert demo.image.value == empty_png and demo.readout.value == "IoU 0.000 · clicks 0"


def test_policy_buttons_disabled_without_policy(gt):
    demo = make_demo(gt)
    assert all(demo.buttons[b].disabled for b in ("Suggest", "Accept", "Auto-refine"))
    assert not demo.buttons["Undo"].disabled


def test_suggest_draws_hollow_marker_and_accept_applies_it(gt):
    demo = make_demo(gt, OraclePolicy(gt))
    empty_png = demo.image.value
    demo.buttons["Suggest"].click()
    assert demo.session.pending is not None and demo.image.value != empty_png
    assert "suggestion +(19, 19)" in demo.status.value
    assert demo.session.steps == []  # a suggestion is not a click
    demo.buttons["Accept"].click()
    assert demo.session.history[-1]["who"] == "agent" and demo.readout.value.endswith("clicks 1")
    demo.auto_steps.value = 2
    demo.buttons["Auto-refine"].click()
    assert [h["who"] for h in demo.session.history] == ["agent"] * 3


def test_errors_show_in_the_view_instead_of_raising(gt):
    demo = make_demo(gt, OraclePolicy(gt))
    demo.handle_event(browser_event("click", 80, 80))
    demo.auto_k.value = 3
    demo.buttons["Auto-refine"].click()  # K > 1 needs an empty session and a trained policy
    assert len(demo.session.steps) == 1
    # a plain sentence, capitalised, without the exception's class name
    sentence = ("The search with several candidates per step (K > 1) starts from an empty mask: "
                "press Reset first, or set candidates per step (K) to 1")
    assert demo.last_error == sentence and sentence in shown(demo.status) and "Error" not in shown(demo.status)
    demo.handle_event(browser_event("click", 80, 80))
    assert demo.last_error == "" and "press Reset" not in demo.status.value  # the next good action clears it


def test_controls_spell_out_t_and_k(gt):
    demo = make_demo(gt, OraclePolicy(gt))
    assert demo.auto_steps.description == "max steps (T)"
    assert demo.auto_k.description == "candidates per step (K)"


def test_untrained_policy_buttons_say_why_they_did_nothing(gt):
    demo = make_demo(gt, ModelClickPolicy(ScriptedGenerate([LONG_REFUSAL])))
    quoted = f"the policy's answer could not be read as a click: “{FIRST_60}…”"
    demo.buttons["Suggest"].click()
    assert demo.session.pending is None and f"no suggestion: {quoted}" in shown(demo.status)
    demo.buttons["Accept"].click()
    assert f"nothing to accept: {quoted}" in shown(demo.status)
    demo.buttons["Auto-refine"].click()
    assert f"Auto-refine made no click: {quoted}" in shown(demo.status)
    assert demo.session.steps == [] and demo.last_error == ""


def test_missing_checkpoint_shows_a_warning_banner_and_manual_clicks_work(gt, tmp_path):
    policy, warning = load_click_policy("checkpoints/sft-clicks", gt, run_dir=str(tmp_path))
    demo = make_demo(gt, policy, notice=warning)
    assert "Warning:" in shown(demo.banner) and "clicks_policy = 'checkpoints/sft-clicks'" in shown(demo.banner)
    assert demo.banner in demo.widget.children
    assert all(demo.buttons[b].disabled for b in ("Suggest", "Accept", "Auto-refine"))
    demo.handle_event(browser_event("click", 80, 80))
    assert demo.readout.value.endswith("clicks 1")
    assert make_demo(gt).banner.value == ""  # no warning, no banner


def test_display_bundle_has_the_widget_and_a_short_text_fallback(gt):
    bundle = make_demo(gt)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("click demo on a 40x40 px image, interactive in JupyterLab")
    assert "VBox" not in bundle["text/plain"]
