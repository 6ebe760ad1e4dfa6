"""F_sim: the click robot of interactive segmentation (RITM / SimpleClick, used by SegAgent).

Given the ground truth and the current prediction, the next click goes to the
pixel deepest inside the thickest error region:

* false negatives ``FN = gt & ~pred``, false positives ``FP = ~gt & pred``;
* each map is padded by 1 px of zeros, so the image border counts as region edge;
* ``d_fn``, ``d_fp`` = L2 distance transforms (``seglib.masks.distance_transform``: OpenCV's
  ``DIST_MASK_PRECISE``, i.e. exact Euclidean distance to the nearest zero pixel);
* pixels already clicked get distance 0 *after* the transform (RITM's rule, the
  default ``clicked_rule="after_transform"``): a clicked pixel is never chosen
  again, and its neighbours keep their depth;
* the click is positive iff ``max d_fn > max d_fp`` (a tie goes negative);
* it lands on the arg-max of the chosen map, the first maximum in raster
  order (row by row, top to bottom, then left to right).

``clicked_rule="before_transform"`` is the rule seglib used before: clicked
pixels are removed from the error map *before* the transform, so a clicked
pixel becomes an edge and its neighbours lose depth. Worked example: gt =
ones(3, 4), empty prediction, an earlier click at (1, 1) that the segmenter
ignored. Padded depths of row 1 are 1, 2, 2, 1; after the transform (1, 1) is
set to 0 and the next click is (2, 1). Before the transform, (1, 1) becomes an
edge, every error pixel has depth 1, and the first in raster order is (0, 0).

Two cases give None rather than a click: a perfect prediction, and an error
made only of clicked pixels (no unclicked pixel is left to click).

Coordinates are (x, y) = (column, row) in pixels of the mask as given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class Click:
    """One click: pixel (x, y) = (column, row); ``positive`` True adds, False removes."""

    x: int
    y: int
    positive: bool

    @property
    def label(self) -> int:
        """SAM's point label: 1 positive, 0 negative."""
        return 1 if self.positive else 0


def _click_xy(c) -> tuple[int, int]:
    if isinstance(c, Click):
        return int(c.x), int(c.y)
    x, y = c[0], c[1]
    return int(x), int(y)


#: Where clicked pixels are zeroed: ``"after_transform"`` (RITM, default) or ``"before_transform"``.
CLICKED_RULES = ("after_transform", "before_transform")


def _check_rule(clicked_rule: str) -> None:
    if clicked_rule not in CLICKED_RULES:
        raise ValueError(f"clicked_rule must be one of {CLICKED_RULES}, got {clicked_rule!r}")


def error_depth(error: np.ndarray, clicked: Iterable = (), clicked_rule: str = "after_transform") -> np.ndarray:
    """Depth of each error pixel: its L2 distance to the nearest non-error pixel or the image border.

    ``error`` is a bool (H, W) map; returns float32 (H, W), 0 outside the error
    and 0 at clicked pixels. ``clicked_rule="after_transform"`` (RITM, default)
    zeroes clicked pixels in the distance map; ``"before_transform"`` removes
    them from the error first, so they also count as edges for their neighbours.
    Clicks outside the image are ignored.
    """
    from seglib.masks import distance_transform

    _check_rule(clicked_rule)
    h, w = error.shape
    inside = [(x, y) for x, y in map(_click_xy, clicked) if 0 <= x < w and 0 <= y < h]
    if clicked_rule == "before_transform":
        region = np.array(error, dtype=bool, copy=True)
        for x, y in inside:  # a clicked pixel counts as an edge
            region[y, x] = False
        return distance_transform(region)
    depth = distance_transform(np.asarray(error, dtype=bool))
    for x, y in inside:  # a clicked pixel is never chosen again; its neighbours keep their depth
        depth[y, x] = 0.0
    return depth


def next_click(gt: np.ndarray, pred: np.ndarray | None, clicked: Iterable = (),
               clicked_rule: str = "after_transform") -> Click | None:
    """F_sim's next click for ``pred`` against ``gt`` (both bool (H, W); ``pred`` None = empty).

    ``clicked``: earlier clicks (``Click`` or (x, y)); those pixels are never chosen again.
    ``clicked_rule``: ``"after_transform"`` (RITM, default) or ``"before_transform"``
    (module docstring).
    Returns None when the prediction is perfect, or when every error pixel is
    already clicked (no deepest point is left to click).
    """
    gt = np.asarray(gt, bool)
    pred = np.zeros_like(gt) if pred is None else np.asarray(pred, bool)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"next_click: gt {gt.shape} and pred {pred.shape} must be equal 2-D shapes")
    _check_rule(clicked_rule)
    clicked = list(clicked)
    fn = gt & ~pred
    fp = ~gt & pred
    if not fn.any() and not fp.any():
        return None
    d_fn = error_depth(fn, clicked, clicked_rule)
    d_fp = error_depth(fp, clicked, clicked_rule)
    max_fn, max_fp = float(d_fn.max()), float(d_fp.max())
    if max_fn == 0.0 and max_fp == 0.0:
        return None
    positive = max_fn > max_fp
    depth = d_fn if positive else d_fp
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)  # first maximum in raster order
    return Click(int(x), int(y), bool(positive))
