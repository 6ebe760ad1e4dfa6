"""F_sim: the click robot of interactive segmentation (RITM / SimpleClick, used by SegAgent).

Given the ground truth and the current prediction, the next click goes to the
pixel deepest inside the thickest error region:

* false negatives ``FN = gt & ~pred``, false positives ``FP = ~gt & pred``;
* each map is padded by 1 px of zeros, so the image border counts as region edge;
* pixels already clicked are set to 0 before the transform, so a clicked pixel
  becomes an edge and is never chosen again;
* ``d_fn``, ``d_fp`` = L2 distance transforms (``seglib.masks.distance_transform``: OpenCV's
  ``DIST_MASK_PRECISE``, i.e. exact Euclidean distance to the nearest zero pixel);
* the click is positive iff ``max d_fn > max d_fp`` (a tie goes negative);
* it lands on the arg-max of the chosen map, the first maximum in raster
  order (row by row, top to bottom, then left to right).

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


def error_depth(error: np.ndarray, clicked: Iterable = ()) -> np.ndarray:
    """Distance of each error pixel to the nearest non-error pixel, image border or clicked pixel.

    ``error`` is a bool (H, W) map; returns float32 (H, W), 0 outside the error.
    """
    from seglib.masks import distance_transform

    h, w = error.shape
    region = np.array(error, dtype=bool, copy=True)
    for c in clicked:  # a clicked pixel counts as an edge: F_sim moves on from it
        x, y = _click_xy(c)
        if 0 <= x < w and 0 <= y < h:
            region[y, x] = False
    return distance_transform(region)


def next_click(gt: np.ndarray, pred: np.ndarray | None, clicked: Iterable = ()) -> Click | None:
    """F_sim's next click for ``pred`` against ``gt`` (both bool (H, W); ``pred`` None = empty).

    ``clicked``: earlier clicks (``Click`` or (x, y)); those pixels are never chosen again.
    Returns None when the prediction is perfect, or when every error pixel is
    already clicked (no deepest point is left to click).
    """
    gt = np.asarray(gt, bool)
    pred = np.zeros_like(gt) if pred is None else np.asarray(pred, bool)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"next_click: gt {gt.shape} and pred {pred.shape} must be equal 2-D shapes")
    clicked = list(clicked)
    fn = gt & ~pred
    fp = ~gt & pred
    if not fn.any() and not fp.any():
        return None
    d_fn = error_depth(fn, clicked)
    d_fp = error_depth(fp, clicked)
    max_fn, max_fp = float(d_fn.max()), float(d_fp.max())
    if max_fn == 0.0 and max_fp == 0.0:
        return None
    positive = max_fn > max_fp
    depth = d_fn if positive else d_fp
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)  # first maximum in raster order
    return Click(int(x), int(y), bool(positive))
