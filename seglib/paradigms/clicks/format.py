"""Click paradigm (SegAgent): one click per step, given the current mask.

State: the image with the current mask overlaid in green, α = 0.5
(``state_image``, via ``seglib.masks.overlay``), plus the query. No click
history is shown: the policy is π(a | M_t, I, P).

Action text, integer coordinates on the 0–1000 grid (``seglib.frames.to_grid``)::

    Positive point: (412, 377)
    Negative point: (88, 901)

With the process reward model (PRM) the model first writes the current mask's
IoU in percent, one decimal: ``Current IoU: 85.2, Positive point: (412, 377)``.

Parser rules (``parse`` never raises, never evals; ``None`` = malformed):
  - the first ``[Current IoU: N, ](Positive|Negative) point: (x, y)`` in the
    text (case-insensitive) is the action; text around it is ignored;
  - coordinates are non-negative numbers of at most 7 integer digits; values
    above the grid are **clipped** to the grid (the image border); negatives,
    NaN and anything else → ``None``;
  - a written IoU above 100 is clipped to 100.

``apply_action`` is the one step every click user shares (trajectories, PRM
search, StaR+, the demo): click → all clicks so far + previous logits → segmenter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from seglib import frames
from seglib.paradigms.text import MAX_TEXT_CHARS

PROMPT_TEMPLATES = {
    "default": (
        "Segment \"{query}\". The current mask is shown in green. Give the next click as "
        "\"Positive point: (x, y)\" or \"Negative point: (x, y)\" with x, y on a 0-1000 grid."
    ),
    "prm": (
        "Segment \"{query}\". The current mask is shown in green. First estimate its IoU as "
        "\"Current IoU: NN.N, \", then give the next click as \"Positive point: (x, y)\" or "
        "\"Negative point: (x, y)\" with x, y on a 0-1000 grid."
    ),
    "compact": "{query}",
}
ACTION_TEMPLATE = "{kind} point: ({x}, {y})"
PRM_TEMPLATE = "Current IoU: {iou:.1f}, "

_NUM = r"(\d{1,7}(?:\.\d{1,6})?)"
_ACTION_RE = re.compile(
    r"(?:Current IoU:\s*" + _NUM + r"\s*,\s*)?(Positive|Negative) point:\s*\(\s*" + _NUM + r"\s*,\s*" + _NUM + r"\s*\)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ClickAction:
    """A parsed action: grid coordinates ``(x, y)`` in ``[0, grid]``, polarity, and the PRM IoU (fraction) if written."""

    positive: bool
    x: float
    y: float
    iou: float | None = None


# ---------------------------------------------------------------- state, prompt and SFT target
def state_image(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """SegAgent's state: the image with ``mask`` overlaid green at α = 0.5 (``None`` = no mask yet)."""
    from seglib.masks import overlay

    if mask is None:
        return np.array(image, dtype=np.uint8, copy=True)
    return overlay(image, mask, color=(0, 255, 0), alpha=0.5)


def prompt(sample_or_query: Any, prm: bool = False, template: str | None = None) -> str:
    """The user prompt for one step; ``sample_or_query`` is a ``Sample`` or the query string."""
    query = sample_or_query if isinstance(sample_or_query, str) else sample_or_query.query
    key = template or ("prm" if prm else "default")
    if key not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown clicks prompt template {key!r}; expected one of {sorted(PROMPT_TEMPLATES)}")
    return PROMPT_TEMPLATES[key].format(query=query)


def target_text(click: Any, width: int, height: int, iou: float | None = None, prm: bool = False,
                grid: int = frames.GRID, snap: int | None = None) -> str:
    """SFT target for one step.

    ``click``: any object with pixel ``x``, ``y`` and ``positive`` (``seglib.clicker.Click``).
    ``iou``: the current mask's IoU as a fraction in [0, 1]; required when ``prm``.
    ``snap``: move the click to the centre of its cell in a ``snap × snap`` partition
    first (``frames.snap_to_cell``; the embedded recipe's coarse targets); still
    written on the 0–1000 grid, so parsing and decoding are unchanged.
    """
    x, y = (click.x, click.y) if not snap else frames.snap_to_cell(click.x, click.y, width, height, int(snap))
    gx, gy = frames.to_grid(x, y, width, height, grid)
    action = ACTION_TEMPLATE.format(kind="Positive" if click.positive else "Negative", x=gx, y=gy)
    if not prm:
        return action
    if iou is None or not np.isfinite(iou):
        raise ValueError("clicks.target_text(prm=True) needs the current IoU (a fraction in [0, 1])")
    return PRM_TEMPLATE.format(iou=100.0 * min(max(float(iou), 0.0), 1.0)) + action


# ---------------------------------------------------------------- parser
def parse(text: Any, grid: int = frames.GRID) -> ClickAction | None:
    """Text → ``ClickAction`` (grid frame; ``iou`` as a fraction) or ``None``; never raises."""
    try:
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            return None
        m = _ACTION_RE.search(text)
        if m is None:
            return None
        iou_s, kind, xs, ys = m.groups()
        x, y = min(float(xs), grid), min(float(ys), grid)
        iou = None if iou_s is None else min(float(iou_s), 100.0) / 100.0
        return ClickAction(positive=kind.lower() == "positive", x=x, y=y, iou=iou)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        return None


# ---------------------------------------------------------------- one step with a segmenter
def to_click(action: Any, height: int, width: int, grid: int = frames.GRID) -> Any:
    """A ``ClickAction`` (grid frame) → ``seglib.clicker.Click`` in image pixels; a Click passes through."""
    from seglib.clicker import Click

    if isinstance(action, ClickAction):
        x, y = frames.from_grid(action.x, action.y, width, height, grid)
        return Click(x=x, y=y, positive=action.positive)
    return action


def apply_action(action: Any, clicks_so_far: Sequence[Any], segmenter: Any, prev_logits: np.ndarray | None,
                 height: int, width: int, grid: int = frames.GRID) -> tuple[Any, list]:
    """One SegAgent step: add the click and run the segmenter on all clicks + the previous logits.

    ``action``: a ``ClickAction`` (grid frame, e.g. from ``parse``) or a pixel
    ``Click``. The segmenter must already hold the image (``set_image``).
    Returns ``(prediction, clicks)`` with ``clicks = clicks_so_far + [click]``;
    feed ``prediction.logits`` back as ``prev_logits`` at the next step.
    """
    clicks = list(clicks_so_far) + [to_click(action, height, width, grid)]
    pred = segmenter.predict(
        [(float(c.x), float(c.y)) for c in clicks],
        [1 if c.positive else 0 for c in clicks],
        mask_logits=prev_logits,
    )
    return pred, clicks


def replay(clicks_seq: Sequence[Any], segmenter: Any, height: int, width: int,
           grid: int = frames.GRID) -> tuple[np.ndarray, np.ndarray | None]:
    """Rebuild a state by applying ``clicks_seq`` one by one from an empty mask (``apply_action`` each step).

    Returns ``(mask, logits)`` after the last click; no clicks → an empty mask and ``None``.
    The segmenter must already hold the image.
    """
    mask, logits, so_far = np.zeros((height, width), bool), None, []
    for c in clicks_seq:
        pred, so_far = apply_action(c, so_far, segmenter, logits, height, width, grid)
        mask, logits = np.asarray(pred.mask, bool), pred.logits
    return mask, logits


def decode(answer: ClickAction | None, height: int, width: int, segmenter: Any = None, image: np.ndarray | None = None,
           clicks_so_far: Sequence[Any] = (), prev_logits: np.ndarray | None = None, prev_mask: np.ndarray | None = None,
           grid: int = frames.GRID) -> np.ndarray:
    """Answer → the mask after this click (``apply_action``). ``image`` given: ``set_image`` first.

    ``None`` (unparsable action) leaves the mask as it was: ``prev_mask`` or empty.
    """
    if answer is None:
        return np.zeros((height, width), bool) if prev_mask is None else np.asarray(prev_mask, bool).copy()
    if segmenter is None:
        raise ValueError("clicks.decode needs a segmenter (build one with seglib.segmenters.build_segmenter)")
    if image is not None:
        segmenter.set_image(image)
    pred, _ = apply_action(answer, clicks_so_far, segmenter, prev_logits, height, width, grid)
    return np.asarray(pred.mask, bool)
