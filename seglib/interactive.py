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
readout, a status line and a small IoU-versus-clicks plot. The mask is drawn
as SAM2's example notebooks draw masks: a translucent dodger-blue fill
(α = 0.6) with a crisp contour, so it shows on objects of any colour (the
policy itself still sees SegAgent's green state image). When a policy
proposes nothing, the session says why in :attr:`ClickSession.message`
(shown on the status line), and :func:`load_click_policy` turns a missing or
unreadable checkpoint into manual clicking with a warning.
:func:`session_figure` draws the session as a static figure for headless runs.

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
NO_POLICY = "no click policy is loaded (set the parameter clicks_policy): Suggest, Accept and Auto-refine are off"
POSITIVE_RGB = (0, 200, 0)
NEGATIVE_RGB = (230, 0, 0)
SUGGEST_RGB = (255, 215, 0)
MASK_RGB = (30, 144, 255)  # dodger blue, as in SAM2's example notebooks
MASK_ALPHA = 0.6
EDGE_DARK_RGB = (0, 40, 110)  # the contour: white boundary pixels inside a navy band, visible on light and dark
EDGE_LIGHT_RGB = (255, 255, 255)
MARKER_RING_RGB = (255, 255, 255)
MARKER_EDGE_RGB = (0, 0, 0)


# --------------------------------------------------------------------------- policies


@runtime_checkable
class ClickPolicy(Protocol):
    """Anything that proposes the next click for the current mask.

    ``suggest`` returns ``(click, predicted_iou)``: ``click`` is ``None`` when
    the policy has nothing to add; ``predicted_iou`` is the PRM's estimate of
    the *current* mask's IoU in [0, 1], or ``None`` for a policy without one.
    ``clicked`` lists the clicks already made (F_sim skips their pixels).
    A policy may also define ``why_no_click() -> str``: a plain sentence
    saying why its last ``suggest`` gave no click (shown to the user).
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

    def why_no_click(self) -> str:
        return ("the F_sim oracle has nothing to add: the mask matches the ground truth, "
                "or every wrong pixel is already clicked")


@dataclass
class ModelClickPolicy:
    """A trained clicks-paradigm policy (SFT / StaR+ checkpoint) as a click proposer.

    ``generate`` is a ``seglib.search.GenerateFn`` ``(images, prompts,
    num_return_sequences, do_sample) -> texts per prompt``, e.g. a loaded
    ``seglib.inference.Policy``. The state is SegAgent's: the image with the
    current mask overlaid (green, α = 0.5) plus the query (``clicks.state_image``,
    ``clicks.prompt``); answers go through ``clicks.parse`` (never raises) and
    back to image pixels. A PRM policy (``prm=True``) first writes the current
    mask's IoU, returned as ``predicted_iou`` (a fraction). ``last_text`` keeps
    the last answer, so an unreadable one can be quoted by ``why_no_click``.
    """

    generate: Any
    prm: bool = False
    template: str | None = None
    last_text: str | None = field(default=None, repr=False)

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

    def recording_generate(self, images, prompts, num_return_sequences=1, do_sample=False):
        """``generate``, keeping the first answer in ``last_text``."""
        out = self.generate(images, prompts, num_return_sequences, do_sample)
        try:
            self.last_text = str(out[0][0])
        except (IndexError, TypeError, KeyError):
            self.last_text = ""
        return out

    def suggest(self, image, mask, query, clicked=()):
        state_img, prompt = self.state(image, mask, query)
        text = self.recording_generate([state_img], [prompt], 1, False)[0][0]
        pred_iou, xyp = self.parse_fn(*mask.shape)(text)
        return (None if xyp is None else Click(*xyp)), pred_iou

    def why_no_click(self) -> str:
        return unreadable_answer(self.last_text)


def unreadable_answer(text: str | None, limit: int = 60) -> str:
    """The sentence for an answer that is not a click, quoting its first ``limit`` characters."""
    text = "" if text is None else " ".join(str(text).split())
    if not text:
        return "the policy's answer was empty, so it could not be read as a click"
    quoted = text[:limit] + ("…" if len(text) > limit else "")
    return f"the policy's answer could not be read as a click: “{quoted}”"


def why_no_click(policy: Any) -> str:
    """The policy's own reason for proposing nothing, or a generic one."""
    explain = getattr(policy, "why_no_click", None)
    if callable(explain):
        try:
            return str(explain())
        except Exception:  # noqa: BLE001 - a reason must never break the view
            pass
    return "the policy proposed no click"


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
    ``message`` is a plain sentence about the last action's outcome when
    there is something to say (why Suggest, Accept or Auto-refine did
    nothing, or what Auto-refine did); empty otherwise.
    """

    image: np.ndarray
    query: str
    segmenter: Any
    policy: ClickPolicy | None = None
    gt_mask: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)
    pending: tuple[Click, float | None] | None = None
    message: str = ""

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
        self.message = ""
        return mask

    def undo(self) -> np.ndarray:
        """Drop the last click; return the (restored) current mask."""
        self.message = "" if self.steps else "nothing to undo: there are no clicks"
        if self.steps:
            self.steps.pop()
        self.pending = None
        return self.mask

    def reset(self) -> None:
        self.steps.clear()
        self.pending = None
        self.message = ""

    def suggest(self) -> Click | None:
        """Ask the policy for the next click; it is kept as ``pending`` until accepted.

        Without a click, ``message`` says why (e.g. the policy's answer, quoted).
        """
        if self.policy is None:
            self.message = NO_POLICY
            return None
        click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
        self._note_prediction(pred_iou)
        self.pending = None if click is None else (click, pred_iou)
        self.message = "" if click is not None else "no suggestion: " + why_no_click(self.policy)
        return click

    def _note_prediction(self, pred_iou: float | None) -> None:
        """A PRM's "Current IoU" describes the current mask: record it on the step that made that mask."""
        if pred_iou is not None and self.steps:
            self.steps[-1].predicted_iou = float(pred_iou)

    def accept(self) -> np.ndarray | None:
        """Apply the pending suggestion as an agent click; ``None`` (and a ``message``) when there is none."""
        if self.pending is None:
            if self.policy is None:
                self.message = NO_POLICY
            elif self.message.startswith("no suggestion: "):
                self.message = "nothing to accept: " + self.message[len("no suggestion: "):]
            else:
                self.message = "nothing to accept: press Suggest first"
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
        ``message`` then says how many clicks were added and, when the agent
        stopped early, why.
        """
        if self.policy is None:
            self.message = NO_POLICY
            return []
        added: list[Step] = []
        if k > 1:
            if self.steps:
                raise ValueError("the search with several candidates per step (K > 1) starts from an empty mask: "
                                 "press Reset first, or set candidates per step (K) to 1")
            if not hasattr(self.policy, "generate"):
                raise ValueError("the search with several candidates per step (K > 1) needs a trained clicks "
                                 "policy, not the F_sim oracle: set candidates per step (K) to 1")
            from seglib.search import prm_search

            generate = getattr(self.policy, "recording_generate", self.policy.generate)
            result = prm_search(self.image, lambda m: self.policy.state(self.image, m, self.query),
                                generate, self.policy.parse_fn(self.height, self.width),
                                self.segmenter, int(steps), k=int(k), patience=1, gt_mask=self.gt_mask)
            for step in result.steps[: result.best_step]:
                x, y, positive = step.best.click
                self.add_click(x, y, positive, who=AGENT, predicted_iou=step.best.pred_iou)
                added.append(self.steps[-1])
            if not result.steps:
                self.message = (f"Auto-refine made no click: none of the {int(k)} candidates could be read as a "
                                f"click ({why_no_click(self.policy)})")
            else:
                stop = {"patience": "the predicted IoU stopped rising",
                        "no_action": "no candidate could be read as a click",
                        "max_steps": f"it reached max steps (T) = {int(steps)}"}.get(result.stopped_by,
                                                                                     result.stopped_by)
                self.message = (f"Auto-refine searched {len(result.steps)} step(s) with {int(k)} candidates "
                                f"each, stopped because {stop}, and applied the best path's {len(added)} "
                                f"click(s)")
            return added
        reason = ""
        for _ in range(int(steps)):
            click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
            self._note_prediction(pred_iou)
            if click is None:
                reason = why_no_click(self.policy)
                break
            self.add_click(click.x, click.y, click.positive, who=AGENT)
            added.append(self.steps[-1])
        if not added:
            self.message = "Auto-refine made no click: " + reason
        elif reason:
            self.message = f"Auto-refine stopped after {len(added)} click(s): {reason}"
        else:
            self.message = f"Auto-refine added {len(added)} click(s)"
        return added

    def latencies_s(self) -> list[float]:
        return [s.latency_s for s in self.steps]


# --------------------------------------------------------------------------- rendering


def render_state(image: np.ndarray, mask: np.ndarray, clicks: Sequence[Click],
                 suggestion: Click | None = None, scale: int = 1) -> np.ndarray:
    """The image with the mask and click markers drawn on it, upscaled ``scale``×; uint8 RGB.

    The mask is a translucent dodger-blue fill, out = round(0.4·image +
    0.6·(30, 144, 255)) on mask pixels (``MASK_RGB``, ``MASK_ALPHA``), plus a
    contour along its boundary drawn at display resolution: the outermost mask
    pixels are white (``EDGE_LIGHT_RGB``), with a navy band (``EDGE_DARK_RGB``)
    2 px wide on either side of them.
    Pixels off the mask and its contour are the image's. Positive clicks are
    filled green discs, negative ones filled red, each with a white ring and a
    thin black edge; the pending suggestion is a hollow yellow ring. Pixel
    (x, y) of the image covers [x*scale, (x+1)*scale) of the result.
    """
    import cv2

    mask = np.asarray(mask, dtype=bool)
    canvas = overlay(image, mask, color=MASK_RGB, alpha=MASK_ALPHA)
    big_mask = mask
    if scale > 1:
        canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
        big_mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    canvas = np.ascontiguousarray(canvas)
    if big_mask.any():
        contours, _ = cv2.findContours(big_mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, EDGE_DARK_RGB, 3, lineType=cv2.LINE_8)
        cv2.drawContours(canvas, contours, -1, EDGE_LIGHT_RGB, 1, lineType=cv2.LINE_8)
    radius = max(4, int(round(0.016 * max(canvas.shape[:2]))))

    def centre(c: Click) -> tuple[int, int]:
        return int(c.x * scale + scale // 2), int(c.y * scale + scale // 2)

    for c in clicks:
        colour = POSITIVE_RGB if c.positive else NEGATIVE_RGB
        cv2.circle(canvas, centre(c), radius + 2, MARKER_EDGE_RGB, -1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(c), radius + 1, MARKER_RING_RGB, -1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(c), radius - 1, colour, -1, lineType=cv2.LINE_AA)
    if suggestion is not None:
        colour = POSITIVE_RGB if suggestion.positive else NEGATIVE_RGB
        cv2.circle(canvas, centre(suggestion), radius + 4, MARKER_EDGE_RGB, 4, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre(suggestion), radius + 4, SUGGEST_RGB, 2, lineType=cv2.LINE_AA)
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
    left, right, top, bottom = 34, 10, 22, 28  # the top margin holds the y-axis label
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
    cv2.putText(canvas, "IoU", (2, 12), font, 0.35, black, 1, cv2.LINE_AA)  # y-axis label, above the tick column
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


def load_click_policy(clicks_policy: str | None, gt_mask: np.ndarray | None = None, run_dir: str = ".",
                      device: str = "cpu") -> tuple[ClickPolicy | None, str | None]:
    """:func:`build_click_policy` that falls back to manual clicking: ``(policy or None, warning or None)``.

    A missing checkpoint folder, one that cannot be loaded, or ``"oracle"``
    without ground truth gives ``(None, warning)``: a sentence naming the
    parameter ``clicks_policy``, the path looked for and that the demo runs
    with manual clicks only. ``None`` asks for no policy and gives no warning.
    """
    from pathlib import Path

    if clicks_policy is None:
        return None, None
    if clicks_policy != "oracle":
        path = Path(clicks_policy)
        tried = [path] if path.is_absolute() else [Path(run_dir) / path, path]
        if not any(p.exists() for p in tried):
            where = " nor ".join(repr(str(p)) for p in tried)
            return None, (f"clicks_policy = {clicks_policy!r}: no checkpoint folder at {where}. "
                          "The demo runs with manual clicks only (Suggest, Accept and Auto-refine are off); "
                          "set clicks_policy to a clicks checkpoint folder (e.g. 'checkpoints/sft-clicks' after "
                          "notebook 03), to 'oracle', or to None.")
    try:
        return build_click_policy(clicks_policy, gt_mask, run_dir=run_dir, device=device), None
    except Exception as err:  # noqa: BLE001 - any load failure: fall back to manual clicks, say why
        return None, (f"clicks_policy = {clicks_policy!r} could not be loaded: {_full_stop(plain_error(err))} "
                      "The demo runs with manual clicks only (Suggest, Accept and Auto-refine are off).")


def session_figure(session: ClickSession, scale: int = 4, max_clicks: int = 10, title: str | None = None):
    """The session as a static matplotlib figure (for saved notebooks and headless runs).

    Left: ``render_state`` of the current mask, clicks and pending suggestion
    (``scale``× upscaled for crisp markers), with axes in image pixels (x
    right, y down). Right: IoU with the ground truth against click number
    (0 = no clicks, IoU 0), one marker per click coloured by who made it; a
    note instead of the curve when there is no ground truth. Built on
    ``matplotlib.figure.Figure`` (no pyplot, any backend).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    scale = max(1, int(scale))
    pending = session.pending[0] if session.pending else None
    canvas = render_state(session.image, session.mask, session.clicks, pending, scale)
    fig = Figure(figsize=(10, 4.4), dpi=100)
    ax_img, ax_curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    ax_img.imshow(canvas, extent=(-0.5, session.width - 0.5, session.height - 0.5, -0.5), interpolation="nearest")
    ax_img.set_xlabel("x (px)")
    ax_img.set_ylabel("y (px)")
    ax_img.set_title(title if title is not None else f"“{session.query}”", fontsize=10)
    ax_img.legend(handles=[
        Line2D([], [], marker="s", ls="", color=np.array(MASK_RGB) / 255, alpha=MASK_ALPHA, label="mask"),
        Line2D([], [], marker="o", ls="", color=np.array(POSITIVE_RGB) / 255, mec="white", label="positive click"),
        Line2D([], [], marker="o", ls="", color=np.array(NEGATIVE_RGB) / 255, mec="white", label="negative click"),
    ] + ([Line2D([], [], marker="o", ls="", mfc="none", mec=np.array(SUGGEST_RGB) / 255, mew=2,
                 label="suggested click")] if pending is not None else []),
        loc="upper right", fontsize=7, framealpha=0.85)
    history = session.history
    n_max = max(max_clicks, len(history), 1)
    ax_curve.set_xlim(0, n_max)
    ax_curve.set_ylim(0, 1.02)
    ax_curve.set_xlabel("clicks")
    ax_curve.set_ylabel("IoU with the ground truth")
    ax_curve.grid(alpha=0.3)
    if session.gt_mask is None:
        ax_curve.text(0.5, 0.5, "no ground truth: no IoU", ha="center", va="center", transform=ax_curve.transAxes)
    else:
        xs = [0] + [h["n"] for h in history]
        ys = [0.0] + [h["iou"] for h in history]
        ax_curve.plot(xs, ys, color="0.6", lw=1.5, zorder=1)
        for who, colour in ((HUMAN, "#1f77b4"), (AGENT, "#ff7f0e")):
            pts = [(h["n"], h["iou"]) for h in history if h["who"] == who]
            if pts:
                ax_curve.scatter(*zip(*pts), color=colour, s=36, zorder=2, label=f"{who} click")
        if history:
            ax_curve.legend(loc="lower right", fontsize=8)
        ax_curve.set_title(f"IoU {session.iou:.3f} after {len(history)} click(s)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


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
