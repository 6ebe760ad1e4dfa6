"""Interactive click refinement (SegAgent's setting, shown to a person).

A :class:`ClickSession` holds one image, its query, a promptable segmenter, an
optional click policy and the click history. Every click runs the segmenter's
decoder with *all* clicks so far plus the previous step's low-resolution
logits (SegAgent / RITM iterative protocol); the image itself is encoded once,
by the segmenter's ``set_image`` cache. The policy proposes the next click
from the current mask, as SegAgent's π(a | M_t, I, P): either the F_sim click
robot with the ground truth (:class:`OraclePolicy`) or a trained clicks-paradigm
model (:class:`ModelClickPolicy`), whose PRM variant also predicts the IoU.

:class:`ClickDemo` is a thin ipywidgets view on a session: an
``ipywidgets.Image`` whose ``ipyevents`` click events carry image-pixel
coordinates (left click positive, shift-click or right-click negative), the
buttons Undo, Reset, Suggest, Accept and Auto-refine, an IoU/click-count
readout and a small IoU-versus-clicks plot.

Coordinates are (x, y) pixels of the image as given; masks are bool (H, W).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from seglib.clicker import Click, next_click
from seglib.masks import mask_iou, overlay
from seglib.paradigms import clicks as clicks_paradigm

HUMAN = "human"
AGENT = "agent"
POSITIVE_RGB = (0, 200, 0)
NEGATIVE_RGB = (230, 0, 0)
SUGGEST_RGB = (255, 215, 0)


# --------------------------------------------------------------------------- policies


@runtime_checkable
class ClickPolicy(Protocol):
    """Anything that proposes the next click for the current mask.

    ``suggest`` returns ``(click, predicted_iou)``: ``click`` is ``None`` when
    the policy has nothing to add; ``predicted_iou`` is the PRM's estimate of
    the *current* mask's IoU in [0, 1], or ``None`` for a policy without one.
    ``clicked`` lists the clicks already made (F_sim skips their pixels).
    """

    def suggest(
        self, image: np.ndarray, mask: np.ndarray, query: str, clicked: Sequence[Click] = ()
    ) -> tuple[Click | None, float | None]: ...


@dataclass
class OraclePolicy:
    """F_sim with the ground truth: the RITM click robot as a stand-in agent."""

    gt_mask: np.ndarray

    def suggest(self, image, mask, query, clicked=()):
        return next_click(self.gt_mask, mask, clicked=clicked), None


@dataclass
class ModelClickPolicy:
    """A trained clicks-paradigm policy (SFT / StaR+ checkpoint) as a click proposer.

    ``generate`` is a ``seglib.search.GenerateFn`` ``(images, prompts,
    num_return_sequences, do_sample) -> texts per prompt``, e.g. a loaded
    ``seglib.inference.Policy``. The state is SegAgent's: the image with the
    current mask overlaid (green, α = 0.5) plus the query (``clicks.state_image``,
    ``clicks.prompt``); answers go through ``clicks.parse`` (never raises) and
    back to image pixels. A PRM policy (``prm=True``) first writes the current
    mask's IoU, returned as ``predicted_iou`` (a fraction).
    """

    generate: Any
    prm: bool = False
    template: str | None = None

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu", max_new_tokens: int = 32) -> "ModelClickPolicy":
        """Load ``path`` (e.g. ``<run_dir>/checkpoints/sft-clicks``) with ``seglib.inference``."""
        from seglib.inference import checkpoint_spec, load_checkpoint_policy

        spec = checkpoint_spec(path, paradigm="clicks")
        policy = load_checkpoint_policy(path, device=device, max_new_tokens=max_new_tokens)
        return cls(policy, prm=spec.prm, template=spec.template)

    def state(self, image: np.ndarray, mask: np.ndarray, query: str) -> tuple[np.ndarray, str]:
        return clicks_paradigm.state_image(image, mask), clicks_paradigm.prompt(query, prm=self.prm,
                                                                                template=self.template)

    def parse_fn(self, height: int, width: int):
        """Text → (predicted IoU or None, (x, y, positive) pixel click or None); never raises."""
        from seglib.inference import clicks_parse_fn

        return clicks_parse_fn(height, width)

    def suggest(self, image, mask, query, clicked=()):
        state_img, prompt = self.state(image, mask, query)
        text = self.generate([state_img], [prompt], 1, False)[0][0]
        pred_iou, xyp = self.parse_fn(*mask.shape)(text)
        return (None if xyp is None else Click(*xyp)), pred_iou


# --------------------------------------------------------------------------- session


@dataclass
class Step:
    """One click and the segmenter's answer to all clicks so far."""

    click: Click
    who: str  # "human" | "agent"
    mask: np.ndarray
    logits: np.ndarray | None
    score: float
    iou: float | None  # against the ground truth, when known
    latency_s: float  # segmenter call (decoder only: the image embedding is cached)
    predicted_iou: float | None = None  # the PRM's self-predicted IoU of this step's mask, when one was made


@dataclass
class ClickSession:
    """Click history on one image, and the segmenter calls it implies.

    ``add_click`` runs ``segmenter.predict`` with every click so far (labels 1
    positive, 0 negative) and the previous step's logits; ``undo`` restores
    the previous step's mask exactly (it is kept, not recomputed).
    """

    image: np.ndarray
    query: str
    segmenter: Any
    policy: ClickPolicy | None = None
    gt_mask: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)
    pending: tuple[Click, float | None] | None = None

    def __post_init__(self) -> None:
        self.image = np.array(self.image, dtype=np.uint8, copy=True, order="C")  # writable: torch wants that
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"ClickSession: image must be uint8 RGB (H, W, 3), got shape {self.image.shape}")
        if self.gt_mask is not None:
            self.gt_mask = np.asarray(self.gt_mask, dtype=bool)
            if self.gt_mask.shape != self.image.shape[:2]:
                raise ValueError(
                    f"ClickSession: gt_mask shape {self.gt_mask.shape} != image shape {self.image.shape[:2]}"
                )
        t0 = time.perf_counter()
        self.segmenter.set_image(self.image)
        self.encode_s = time.perf_counter() - t0

    # ---- state
    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    @property
    def clicks(self) -> list[Click]:
        return [s.click for s in self.steps]

    @property
    def mask(self) -> np.ndarray:
        """The current mask; empty before the first click."""
        return self.steps[-1].mask if self.steps else np.zeros(self.image.shape[:2], dtype=bool)

    @property
    def iou(self) -> float | None:
        return self.iou_of(self.mask)

    @property
    def history(self) -> list[dict]:
        """One record per click: number, who, click, IoU (None without ground truth), latency."""
        return [
            {"n": i + 1, "who": s.who, "x": s.click.x, "y": s.click.y, "positive": s.click.positive,
             "iou": s.iou, "predicted_iou": s.predicted_iou, "score": s.score, "latency_s": s.latency_s}
            for i, s in enumerate(self.steps)
        ]

    def iou_of(self, mask: np.ndarray) -> float | None:
        return None if self.gt_mask is None else float(mask_iou(mask, self.gt_mask))

    # ---- actions
    def add_click(self, x: int, y: int, positive: bool, who: str = HUMAN,
                  predicted_iou: float | None = None) -> np.ndarray:
        """Add a click at pixel (x, y) and return the new mask."""
        x, y = int(x), int(y)
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"click ({x}, {y}) lies outside the {self.width}x{self.height} image")
        click = Click(x, y, bool(positive))
        prev_logits = self.steps[-1].logits if self.steps else None
        t0 = time.perf_counter()
        self.segmenter.set_image(self.image)  # a cache hit (same content): no re-encoding
        pred, _ = clicks_paradigm.apply_action(click, self.clicks, self.segmenter, prev_logits,
                                               self.height, self.width)
        latency = time.perf_counter() - t0
        mask = np.asarray(pred.mask, dtype=bool)
        self.steps.append(Step(click, who, mask, pred.logits, float(pred.score), self.iou_of(mask), latency,
                               predicted_iou))
        self.pending = None
        return mask

    def undo(self) -> np.ndarray:
        """Drop the last click; return the (restored) current mask."""
        if self.steps:
            self.steps.pop()
        self.pending = None
        return self.mask

    def reset(self) -> None:
        self.steps.clear()
        self.pending = None

    def suggest(self) -> Click | None:
        """Ask the policy for the next click; it is kept as ``pending`` until accepted."""
        if self.policy is None:
            return None
        click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
        self._note_prediction(pred_iou)
        self.pending = None if click is None else (click, pred_iou)
        return click

    def _note_prediction(self, pred_iou: float | None) -> None:
        """A PRM's "Current IoU" describes the current mask: record it on the step that made that mask."""
        if pred_iou is not None and self.steps:
            self.steps[-1].predicted_iou = float(pred_iou)

    def accept(self) -> np.ndarray | None:
        """Apply the pending suggestion as an agent click; ``None`` when there is none."""
        if self.pending is None:
            return None
        click, _ = self.pending  # its predicted IoU describes the mask before the click (already noted)
        return self.add_click(click.x, click.y, click.positive, who=AGENT)

    def auto_refine(self, steps: int, k: int = 1) -> list[Step]:
        """Let the agent click up to ``steps`` times; returns the steps it added.

        k == 1: greedy policy clicks, stopping early when the policy has
        nothing to add. k > 1: SegAgent's PRM tree search
        (``seglib.search.prm_search``: K candidates per step scored by the
        policy's own predicted IoU, stop when it stops rising); the clicks of
        the best-scoring path are then applied as agent clicks. The search
        starts from an empty mask, so k > 1 needs a session without clicks.
        """
        if self.policy is None:
            return []
        added: list[Step] = []
        if k > 1:
            if self.steps:
                raise ValueError("PRM search (K > 1) starts from an empty mask: press Reset first, or use K = 1")
            if not hasattr(self.policy, "generate"):
                raise ValueError("PRM search (K > 1) needs a trained clicks policy, not the F_sim oracle")
            from seglib.search import prm_search

            result = prm_search(self.image, lambda m: self.policy.state(self.image, m, self.query),
                                self.policy.generate, self.policy.parse_fn(self.height, self.width),
                                self.segmenter, int(steps), k=int(k), patience=1, gt_mask=self.gt_mask)
            for step in result.steps[: result.best_step]:
                x, y, positive = step.best.click
                self.add_click(x, y, positive, who=AGENT, predicted_iou=step.best.pred_iou)
                added.append(self.steps[-1])
            return added
        for _ in range(int(steps)):
            click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
            self._note_prediction(pred_iou)
            if click is None:
                break
            self.add_click(click.x, click.y, click.positive, who=AGENT)
            added.append(self.steps[-1])
        return added

    def latencies_s(self) -> list[float]:
        return [s.latency_s for s in self.steps]


# --------------------------------------------------------------------------- rendering


def render_state(image: np.ndarray, mask: np.ndarray, clicks: Sequence[Click],
                 suggestion: Click | None = None, scale: int = 1) -> np.ndarray:
    """The image with the mask overlaid (green, α = 0.5) and click markers, upscaled ``scale``×.

    Positive clicks are filled green discs, negative ones filled red, the
    pending suggestion a hollow yellow ring. Pixel (x, y) of the image covers
    [x*scale, (x+1)*scale) of the result.
    """
    import cv2

    canvas = overlay(image, mask, color=(0, 255, 0), alpha=0.5)
    if scale > 1:
        canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
    canvas = np.ascontiguousarray(canvas)
    radius = max(4, int(round(0.016 * max(canvas.shape[:2]))))

    def centre(c: Click) -> tuple[int, int]:
        return int(c.x * scale + scale // 2), int(c.y * scale + scale // 2)

    for c in clicks:
        colour = POSITIVE_RGB if c.positive else NEGATIVE_RGB
        cv2.circle(canvas, centre(c), radius, colour, -1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(c), radius, (255, 255, 255), 1, lineType=cv2.LINE_AA)
    if suggestion is not None:
        colour = POSITIVE_RGB if suggestion.positive else NEGATIVE_RGB
        cv2.circle(canvas, centre(suggestion), radius + 3, SUGGEST_RGB, 2, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(suggestion), radius, colour, 1, lineType=cv2.LINE_AA)
    return canvas


def png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def iou_curve_image(history: Sequence[dict], max_clicks: int = 10, size_px: tuple[int, int] = (300, 220)) -> np.ndarray:
    """IoU against click number as an RGB image: a blue line for the human's clicks, orange for the agent's.

    Drawn with OpenCV rather than matplotlib: it is redrawn after every click
    and must cost a millisecond, not a tenth of a second.
    """
    import cv2

    width, height = size_px
    canvas = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 34, 10, 10, 28
    x_max = max(max_clicks, len(history))
    sx = (width - left - right) / max(x_max, 1)
    sy = height - top - bottom

    def pt(n: float, iou: float) -> tuple[int, int]:
        return int(round(left + n * sx)), int(round(top + (1.0 - iou) * sy))

    grey, black, font = (220, 220, 220), (60, 60, 60), cv2.FONT_HERSHEY_SIMPLEX
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        cv2.line(canvas, pt(0, v), pt(x_max, v), grey, 1)
        cv2.putText(canvas, f"{v:.2f}"[:4], (2, pt(0, v)[1] + 4), font, 0.3, black, 1, cv2.LINE_AA)
    for n in range(0, x_max + 1, max(1, x_max // 5)):
        cv2.putText(canvas, str(n), (pt(n, 0)[0] - 3, height - bottom + 12), font, 0.3, black, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, pt(0, 1.0), pt(x_max, 0.0), black, 1)
    cv2.putText(canvas, "clicks", (width // 2 - 15, height - 4), font, 0.35, black, 1, cv2.LINE_AA)
    for i, (who, colour) in enumerate(((HUMAN, (31, 119, 180)), (AGENT, (255, 127, 14)))):
        pts = [pt(h["n"], min(max(h["iou"], 0.0), 1.0)) for h in history if h["who"] == who and h["iou"] is not None]
        if len(pts) > 1:
            cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(canvas, p, 3, colour, -1, cv2.LINE_AA)
        lx, ly = width - right - 70, height - bottom - 30 + 14 * i
        cv2.line(canvas, (lx, ly), (lx + 14, ly), colour, 2)
        cv2.putText(canvas, who, (lx + 18, ly + 4), font, 0.35, black, 1, cv2.LINE_AA)
    return canvas


def readout_text(session: ClickSession) -> str:
    """E.g. ``IoU 0.000 · clicks 0`` (``IoU n/a`` without ground truth)."""
    iou = session.iou
    iou_txt = "n/a" if iou is None else f"{iou:.3f}"
    return f"IoU {iou_txt} · clicks {len(session.steps)}"


# --------------------------------------------------------------------------- widget


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


class ClickDemo:
    """ipywidgets view on a :class:`ClickSession`; ``handle_event`` takes the browser's event dict."""

    def __init__(self, session: ClickSession, display_px: int = 384, auto_steps: int = 3, auto_k: int = 1,
                 max_clicks: int = 10):
        import ipywidgets as widgets

        self.session = session
        self.scale = max(1, int(math.ceil(display_px / max(session.height, session.width))))
        self.max_clicks = max_clicks
        self.last_update_s: float | None = None
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
        small = dict(layout=widgets.Layout(width="90px"), style={"description_width": "16px"})
        self.auto_steps = widgets.BoundedIntText(value=auto_steps, min=1, max=50, description="T",
                                                 tooltip="Auto-refine: clicks the agent may make", **small)
        self.auto_k = widgets.BoundedIntText(value=auto_k, min=1, max=16, description="K",
                                             tooltip="Auto-refine: candidates per step (PRM search when > 1)", **small)
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
                self.buttons[name].tooltip = "no click policy loaded"
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
        self.widget = widgets.VBox([
            title,
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
            error = ""
        except Exception as err:  # show the problem in the view, keep the widget alive
            error = f"<span style='color:#b00'>{_escape(type(err).__name__)}: {_escape(str(err))}</span>"
        self.refresh()
        self.last_update_s = time.perf_counter() - t0
        if error:
            self.status.value = error

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
        self.status.value = " · ".join(parts)

    def _ipython_display_(self):  # pragma: no cover - notebook display hook
        from IPython.display import display

        display(self.widget)


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


# --------------------------------------------------------------------------- notebook helpers


@dataclass
class DemoInput:
    """What the demo segments: an image, a query and, for dataset samples, the ground truth."""

    image: np.ndarray
    query: str
    gt_mask: np.ndarray | None
    source: str  # e.g. "SynthRef val sample 3 (ref 17)" or the image file


def pick_demo_input(run_dir: str, split: str = "val", index: int = 0, image_size: int = 112, seed: int = 0,
                    image_path: str | None = None, query: str = "") -> DemoInput:
    """The demo's input.

    ``image_path`` given: that image file and the typed ``query`` (no ground
    truth, so no IoU). Otherwise sample ``index`` (modulo their number) of the
    samples in ``split`` with at least one target, read from
    ``<run_dir>/data`` (notebook 01) when it exists; else a tiny SynthRef
    (20 images, ``image_size`` px, ``seed``) is generated in
    ``<run_dir>/demo_data`` and used.
    """
    from pathlib import Path

    from seglib.data import load_samples, read_image

    if image_path:
        if not query:
            raise ValueError("demo_query: type a query for the image file given in demo_image")
        return DemoInput(read_image(image_path, what="demo_image"), query, None, str(image_path))
    data_dir = Path(run_dir) / "data"
    if not (data_dir / "refs.json").exists():
        data_dir = Path(run_dir) / "demo_data"
        if not (data_dir / "refs.json").exists():
            from seglib.data import synthref

            synthref.generate(data_dir, 20, seed=seed, image_size=image_size)
    samples = [s for s in load_samples(data_dir, split=split) if s.target_rles]
    if not samples:
        raise ValueError(f"{data_dir}: no samples with a target in split {split!r} (demo_split); "
                         f"splits present: {sorted({s.split for s in load_samples(data_dir)})}")
    s = samples[index % len(samples)]
    return DemoInput(s.image(), s.query, s.union_mask(),
                     f"{data_dir.name}/ {split} sample {index % len(samples)} of {len(samples)} ({s.sample_id})")


def build_click_policy(clicks_policy: str | None, gt_mask: np.ndarray | None = None, run_dir: str = ".",
                       device: str = "cpu") -> ClickPolicy | None:
    """``None`` → no policy; ``"oracle"`` → F_sim with the ground truth; else a clicks checkpoint folder.

    A relative checkpoint path is looked up in ``run_dir`` first (e.g.
    ``"checkpoints/sft-clicks"``), then as given.
    """
    from pathlib import Path

    if clicks_policy is None:
        return None
    if clicks_policy == "oracle":
        if gt_mask is None:
            raise ValueError("clicks_policy='oracle' needs ground truth: pick a dataset sample, not demo_image")
        return OraclePolicy(gt_mask)
    path = Path(clicks_policy)
    if not path.is_absolute() and (Path(run_dir) / path).exists():
        path = Path(run_dir) / path
    if not path.exists():
        raise FileNotFoundError(f"clicks_policy: no checkpoint folder at {clicks_policy!r} (nor under {run_dir})")
    return ModelClickPolicy.from_checkpoint(str(path), device=device)


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
        if demo.status.value.startswith("<span"):
            raise ValueError(f"scripted_clicks[{i}] = {c!r}: {demo.status.value}")
    return demo.session.history
