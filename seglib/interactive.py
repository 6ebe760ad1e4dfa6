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

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from seglib.clicker import Click, next_click
from seglib.masks import mask_iou, overlay

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
        return next_click(self.gt_mask, mask, clicked=tuple((c.x, c.y) for c in clicked)), None


@dataclass
class ModelClickPolicy:
    """A trained clicks-paradigm policy (SFT / StaR+ checkpoint).

    The state is the image with the current mask overlaid (green, α = 0.5)
    plus the query; the answer is parsed by ``seglib.paradigms.clicks.parse``
    (never raises) and mapped back to image pixels. ``num_candidates`` > 1
    samples that many answers (for PRM search, see :meth:`candidates`).
    """

    model: Any
    processor: Any
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu", **kwargs) -> "ModelClickPolicy":
        from seglib.models import load_policy

        model, processor = load_policy(str(path), device=device)
        return cls(model, processor, **kwargs)

    def candidates(self, image, mask, query, k: int = 1) -> list[tuple[Click | None, float | None]]:
        """``k`` proposals: greedy when k == 1, sampled otherwise."""
        from seglib.models import generate
        from seglib.paradigms import clicks as clicks_paradigm

        state = overlay(image, mask, color=(0, 255, 0), alpha=0.5)
        prompt = clicks_paradigm.prompt(query)
        texts = generate(
            self.model, self.processor, [state], [prompt], max_new_tokens=self.max_new_tokens,
            do_sample=k > 1, temperature=self.temperature, top_p=self.top_p, num_return_sequences=k,
        )[0]
        height, width = mask.shape
        return [answer_to_click(clicks_paradigm.parse(t), height, width) for t in texts]

    def suggest(self, image, mask, query, clicked=()):
        return self.candidates(image, mask, query, k=1)[0]


def answer_to_click(answer: Any, height: int, width: int) -> tuple[Click | None, float | None]:
    """A parsed clicks-paradigm answer → (click in image pixels, predicted IoU in [0, 1] or None).

    Unparsable answers (``None``) give ``(None, None)``. The answer's frame
    conversion is the paradigm's own ``decode_click`` when it has one.
    """
    if answer is None:
        return None, None
    from seglib.paradigms import clicks as clicks_paradigm

    try:
        click = clicks_paradigm.to_click(answer, height, width)
    except Exception:  # a hostile answer never breaks the session
        return None, None
    pred = getattr(answer, "iou", None)
    pred_iou = None if pred is None else float(pred) / (100.0 if pred > 1.0 else 1.0)
    return click, pred_iou


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
    predicted_iou: float | None = None  # the PRM's estimate when an agent clicked


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
        self.image = np.ascontiguousarray(self.image, dtype=np.uint8)
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
        points = [(c.x, c.y) for c in self.clicks] + [(x, y)]
        labels = [int(c.positive) for c in self.clicks] + [int(click.positive)]
        prev_logits = self.steps[-1].logits if self.steps else None
        self.segmenter.set_image(self.image)  # a cache hit: same image object
        t0 = time.perf_counter()
        pred = self.segmenter.predict(points, labels, mask_logits=prev_logits)
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
        self.pending = None if click is None else (click, pred_iou)
        return click

    def accept(self) -> np.ndarray | None:
        """Apply the pending suggestion as an agent click; ``None`` when there is none."""
        if self.pending is None:
            return None
        click, pred_iou = self.pending
        return self.add_click(click.x, click.y, click.positive, who=AGENT, predicted_iou=pred_iou)

    def auto_refine(self, steps: int, k: int = 1) -> list[Step]:
        """Let the agent click up to ``steps`` times; returns the new steps.

        k == 1: greedy policy clicks, stopping when the policy has nothing to
        add. k > 1 (PRM search, SegAgent): sample k candidates per step, score
        each next mask with one ``predict_many`` call, keep the candidate with
        the highest self-predicted IoU; stop when it no longer rises.
        """
        if self.policy is None:
            return []
        added: list[Step] = []
        best_pred = -math.inf
        for _ in range(int(steps)):
            if k > 1 and hasattr(self.policy, "candidates"):
                chosen = self._prm_step(k)
                if chosen is None:
                    break
                click, pred_iou = chosen
                if pred_iou is not None and pred_iou <= best_pred:
                    break
                best_pred = -math.inf if pred_iou is None else pred_iou
            else:
                click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
                if click is None:
                    break
            self.add_click(click.x, click.y, click.positive, who=AGENT, predicted_iou=pred_iou)
            added.append(self.steps[-1])
        return added

    def _prm_step(self, k: int) -> tuple[Click, float | None] | None:
        """One PRM search step: the candidate whose next state the policy rates highest."""
        from seglib.segmenters import Prompt

        proposals = [(c, p) for c, p in self.policy.candidates(self.image, self.mask, self.query, k=k)
                     if c is not None and 0 <= c.x < self.width and 0 <= c.y < self.height]
        if not proposals:
            return None
        prev_logits = self.steps[-1].logits if self.steps else None
        base_pts = [(c.x, c.y) for c in self.clicks]
        base_lbl = [int(c.positive) for c in self.clicks]
        prompts = [Prompt(points_xy=base_pts + [(c.x, c.y)], labels=base_lbl + [int(c.positive)],
                          mask_logits=prev_logits) for c, _ in proposals]
        preds = self.segmenter.predict_many(prompts)
        # the PRM rates a state by the IoU it predicts for it: ask for the next state's rating
        rated = []
        for (click, _), pred in zip(proposals, preds):
            _, next_rating = self.policy.candidates(self.image, np.asarray(pred.mask, bool), self.query, k=1)[0]
            rated.append((-math.inf if next_rating is None else next_rating, click))
        rating, click = max(rated, key=lambda r: r[0])
        return click, (None if rating == -math.inf else rating)

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
    radius = max(3, int(round(0.012 * max(canvas.shape[:2]))))

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

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def iou_curve_png(history: Sequence[dict], max_clicks: int = 10, size_px: tuple[int, int] = (320, 240)) -> bytes:
    """IoU against click number: one line for the human's clicks, one for the agent's."""
    from matplotlib.figure import Figure

    dpi = 80
    fig = Figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    for who, colour in ((HUMAN, "tab:blue"), (AGENT, "tab:orange")):
        pts = [(h["n"], h["iou"]) for h in history if h["who"] == who and h["iou"] is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", color=colour, label=who)
        else:
            ax.plot([], [], marker="o", color=colour, label=who)
    ax.set_xlim(0, max(max_clicks, len(history) + 1))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("clicks")
    ax.set_ylabel("IoU")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


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
        self.buttons = {name: widgets.Button(description=name) for name in
                        ("Undo", "Reset", "Suggest", "Accept", "Auto-refine")}
        for name, b in self.buttons.items():
            b.add_class("seglib-" + name.lower())
        self.auto_steps = widgets.BoundedIntText(value=auto_steps, min=1, max=50, description="T",
                                                 layout=widgets.Layout(width="110px"))
        self.auto_k = widgets.BoundedIntText(value=auto_k, min=1, max=16, description="K",
                                             layout=widgets.Layout(width="110px"))
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
        self.plot.value = iou_curve_png(s.history, self.max_clicks)
        self.readout.value = readout_text(s)
        parts = []
        if s.steps:
            parts.append(f"segmenter {1000 * s.steps[-1].latency_s:.0f} ms")
        if s.pending is not None:
            c, p = s.pending
            sign = "+" if c.positive else "−"
            parts.append(f"suggestion {sign}({c.x}, {c.y})" + ("" if p is None else f", predicted IoU {p:.3f}"))
        self.status.value = " · ".join(parts)

    def _ipython_display_(self):  # pragma: no cover - notebook display hook
        from IPython.display import display

        display(self.widget)


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))
