"""The ipywidgets view on a click session (:class:`ClickDemo`), and driving it headless.

An ``ipywidgets.Image`` whose ``ipyevents`` click events carry image-pixel
coordinates (left click positive, shift-click or right-click negative), the
buttons Undo, Reset, Suggest, Accept and Auto-refine, an IoU/click-count
readout, a status line and a small IoU-versus-clicks plot.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

from seglib.interactive.render import iou_curve_image, png_bytes, readout_text, render_state
from seglib.interactive.session import ClickSession


def event_to_click(event: dict, scale: int, width: int, height: int) -> tuple[int, int, bool] | None:
    """A browser event (ipyevents dict) → (x, y, positive) in image pixels, or None to ignore.

    Left click (button 0) is positive, shift-click negative; a right click
    (``contextmenu``, or button 2) is negative. ``dataX``/``dataY`` are pixels
    of the displayed PNG, which is the image upscaled ``scale``×.
    """
    kind = event.get("type")
    button = event.get("button", 0)
    if kind == "contextmenu" or (kind == "click" and button == 2):
        positive = False
    elif kind == "click" and button == 0:
        positive = not bool(event.get("shiftKey", False))
    else:
        return None
    if "dataX" not in event or "dataY" not in event:
        return None
    x = min(max(int(math.floor(float(event["dataX"]) / scale)), 0), width - 1)
    y = min(max(int(math.floor(float(event["dataY"]) / scale)), 0), height - 1)
    return x, y, positive


def plain_error(err: BaseException) -> str:
    """An exception as a plain sentence for the status line: its message, without the class name.

    An empty message becomes "the action failed unexpectedly (internal error <name>)".
    """
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) and len(text) > 1 and text[0] == text[-1] == "'":
        text = f"missing entry {text}"
    if not text:
        return f"the action failed unexpectedly (internal error {type(err).__name__})"
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # not a name such as clicks_policy or demo_image
        text = text[0].upper() + text[1:]
    return text


def _full_stop(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


class ClickDemo:
    """ipywidgets view on a :class:`ClickSession`; ``handle_event`` takes the browser's event dict.

    ``notice`` is a warning shown as a banner above the controls (e.g. a
    checkpoint that could not be loaded, from :func:`load_click_policy`).
    Errors of an action go to the status line as plain sentences and to
    ``last_error`` (empty when the last action succeeded).
    """

    def __init__(self, session: ClickSession, display_px: int = 384, auto_steps: int = 3, auto_k: int = 1,
                 max_clicks: int = 10, notice: str | None = None):
        import ipywidgets as widgets

        self.session = session
        self.scale = max(1, int(math.ceil(display_px / max(session.height, session.width))))
        self.max_clicks = max_clicks
        self.notice = notice or ""
        self.last_update_s: float | None = None
        self.last_error = ""
        self.image = widgets.Image(format="png", value=b"")
        self.image.add_class("seglib-click-image")
        self.plot = widgets.Image(format="png", value=b"")
        self.readout = widgets.HTML(value="")
        self.readout.add_class("seglib-readout")
        self.status = widgets.HTML(value="")
        self.status.add_class("seglib-status")
        self.buttons = {name: widgets.Button(description=name, layout=widgets.Layout(width="auto")) for name in
                        ("Undo", "Reset", "Suggest", "Accept", "Auto-refine")}
        for name, b in self.buttons.items():
            b.add_class("seglib-" + name.lower())
        labelled = dict(layout=widgets.Layout(width="210px"), style={"description_width": "initial"})
        self.auto_steps = widgets.BoundedIntText(value=auto_steps, min=1, max=50, description="max steps (T)",
                                                 tooltip="Auto-refine: the most clicks the agent may make",
                                                 **labelled)
        self.auto_k = widgets.BoundedIntText(
            value=auto_k, min=1, max=16, description="candidates per step (K)",
            tooltip="Auto-refine: answers sampled per step; above 1, the PRM tree search keeps the best", **labelled)
        self.auto_steps.add_class("seglib-max-steps")
        self.auto_k.add_class("seglib-candidates")
        self.buttons["Undo"].on_click(lambda _: self._act(self.session.undo))
        self.buttons["Reset"].on_click(lambda _: self._act(self.session.reset))
        self.buttons["Suggest"].on_click(lambda _: self._act(self.session.suggest))
        self.buttons["Accept"].on_click(lambda _: self._act(self.session.accept))
        self.buttons["Auto-refine"].on_click(
            lambda _: self._act(lambda: self.session.auto_refine(self.auto_steps.value, k=self.auto_k.value)))
        no_policy = session.policy is None
        for name in ("Suggest", "Accept", "Auto-refine"):
            self.buttons[name].disabled = no_policy
            if no_policy:
                self.buttons[name].tooltip = "no click policy is loaded (parameter clicks_policy)"
        self.events = None
        try:
            from ipyevents import Event

            self.events = Event(source=self.image, watched_events=["click", "contextmenu"],
                                prevent_default_action=True)
            self.events.on_dom_event(self.handle_event)
        except ImportError:  # the view still renders; clicks need ipyevents
            pass
        controls = widgets.HBox([*self.buttons.values(), self.auto_steps, self.auto_k])
        title = widgets.HTML(value=f"<b>Query:</b> {_escape(session.query)}")
        self.banner = widgets.HTML(value=notice_html(self.notice) if self.notice else "")
        self.banner.add_class("seglib-notice")
        self.widget = widgets.VBox([
            title,
            self.banner,
            controls,
            widgets.HBox([self.image, widgets.VBox([self.readout, self.plot, self.status])]),
        ])
        self.refresh()

    def handle_event(self, event: dict) -> None:
        """The ipyevents callback: add the click the event describes, then redraw."""
        hit = event_to_click(event, self.scale, self.session.width, self.session.height)
        if hit is None:
            return
        self._act(lambda: self.session.add_click(*hit))

    def _act(self, action) -> None:
        t0 = time.perf_counter()
        try:
            action()
            self.last_error = ""
        except Exception as err:  # show the problem in the view, keep the widget alive
            self.last_error = plain_error(err)
        self.refresh()
        self.last_update_s = time.perf_counter() - t0

    def refresh(self) -> None:
        s = self.session
        suggestion = s.pending[0] if s.pending else None
        self.image.value = png_bytes(render_state(s.image, s.mask, s.clicks, suggestion, self.scale))
        self.plot.value = png_bytes(iou_curve_image(s.history, self.max_clicks))
        self.readout.value = readout_text(s)
        parts = []
        if s.steps:
            parts.append(f"segmenter {1000 * s.steps[-1].latency_s:.0f} ms")
        if s.pending is not None:
            c, p = s.pending
            sign = "+" if c.positive else "−"
            parts.append(f"suggestion {sign}({c.x}, {c.y})"
                         + ("" if p is None else f" · PRM: current mask IoU ≈ {p:.3f}"))
        html = _escape(" · ".join(parts))
        if s.message:
            html = (html + "<br>" if html else "") + f"<span style='color:#8a5300'>{_escape(s.message)}</span>"
        if self.last_error:
            html = (html + "<br>" if html else "") + f"<span style='color:#b00'>{_escape(self.last_error)}</span>"
        self.status.value = html

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The widget, with a one-line text fallback instead of the ``VBox(children=...)`` repr."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = (f"click demo on a {self.session.width}x{self.session.height} px image, interactive "
                                "in JupyterLab (session_figure draws the session as a static figure)")
        return bundle


def notice_html(text: str) -> str:
    """A visible warning banner (amber box) with ``text`` escaped."""
    return ("<div style='background:#fff3cd;border:1px solid #e0a800;color:#5c4400;padding:6px 10px;"
            f"border-radius:4px'><b>Warning:</b> {_escape(text)}</div>")


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))



def browser_click_event(demo: ClickDemo, x: int, y: int, positive: bool = True) -> dict:
    """The event dict a browser would send for a click on image pixel (x, y) (shift-click if negative)."""
    centre = demo.scale // 2
    return {"type": "click", "dataX": x * demo.scale + centre, "dataY": y * demo.scale + centre,
            "shiftKey": not positive, "altKey": False, "ctrlKey": False, "metaKey": False, "button": 0}


def play_clicks(demo: ClickDemo, clicks: Sequence[Sequence]) -> list[dict]:
    """Apply ``[[x, y, positive], ...]`` through the widget's own event handler (headless runs)."""
    for i, c in enumerate(clicks):
        if len(c) != 3:
            raise ValueError(f"scripted_clicks[{i}] = {c!r}: expected [x, y, positive]")
        demo.handle_event(browser_click_event(demo, int(c[0]), int(c[1]), bool(c[2])))
        if demo.last_error:
            raise ValueError(f"scripted_clicks[{i}] = {c!r}: {demo.last_error}")
    return demo.session.history
