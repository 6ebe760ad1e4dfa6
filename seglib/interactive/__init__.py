"""Interactive click refinement (SegAgent's setting, shown to a person): the clicks paradigm's demo.

- ``policies``: ``OraclePolicy`` (F_sim with the ground truth) and ``ModelClickPolicy`` (a trained
  clicks policy through ``ClicksParadigm``; the PRM variant also predicts the IoU).
- ``session``: ``ClickSession``, one image, its query, a promptable segmenter, a policy and the
  click history; every click runs the decoder on all clicks so far plus the previous logits.
- ``render``: ``render_state``, ``iou_curve_image``, ``session_figure`` (static, headless runs), ``figure_png``.
- ``widget``: ``ClickDemo``, the ipywidgets view (ipyevents clicks), and ``play_clicks`` for headless runs.
- ``demo``: ``pick_demo_input`` and ``load_click_policy`` (a missing or unreadable checkpoint becomes
  manual clicking with a warning).

Coordinates are (x, y) pixels of the image as given; masks are bool (H, W).
"""
from seglib.interactive.demo import DemoInput, build_click_policy, load_click_policy, pick_demo_input
from seglib.interactive.policies import (
    ClickPolicy,
    ModelClickPolicy,
    OraclePolicy,
    unreadable_answer,
    why_no_click,
)
from seglib.interactive.render import (
    EDGE_DARK_RGB,
    EDGE_LIGHT_RGB,
    MASK_ALPHA,
    MASK_RGB,
    NEGATIVE_RGB,
    POSITIVE_RGB,
    SUGGEST_RGB,
    figure_png,
    iou_curve_image,
    png_bytes,
    readout_text,
    render_state,
    session_figure,
)
from seglib.interactive.session import AGENT, HUMAN, NO_POLICY, ClickSession, Step
from seglib.interactive.widget import (
    ClickDemo,
    browser_click_event,
    event_to_click,
    notice_html,
    plain_error,
    play_clicks,
)

__all__ = [
    "AGENT", "EDGE_DARK_RGB", "EDGE_LIGHT_RGB", "HUMAN", "MASK_ALPHA", "MASK_RGB", "NEGATIVE_RGB", "NO_POLICY",
    "POSITIVE_RGB", "SUGGEST_RGB", "ClickDemo", "ClickPolicy", "ClickSession", "DemoInput", "ModelClickPolicy",
    "OraclePolicy", "Step", "browser_click_event", "build_click_policy", "event_to_click", "figure_png",
    "iou_curve_image", "load_click_policy", "notice_html", "pick_demo_input", "plain_error", "play_clicks",
    "png_bytes", "readout_text", "render_state", "session_figure", "unreadable_answer", "why_no_click",
]
