"""Seg-Zero's representative points of a mask (VisionReasoner uses the first alone), on an exact distance transform."""
from __future__ import annotations

import cv2
import numpy as np

from seglib.masks.rle import as_bool_mask


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """Exact L2 distance of each mask pixel to the nearest non-mask pixel (float32, 0 outside the mask).

    The mask is padded by one pixel of background first, so the image border
    counts as the region's edge (as in F_sim).
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # OpenCV's result varies in the last bits with the buffer's memory alignment and the thread split (SIMD
    # paths), which flipped ties between equally deep pixels from run to run. The exact distance is
    # the root of an integer: snap to it (float32 error in d^2 stays far below 0.5 for any image size we use).
    dist = np.sqrt(np.rint(np.square(dist, dtype=np.float64))).astype(np.float32)
    return dist[1:-1, 1:-1]


def _snap_to_mask(mask: np.ndarray, x: int, y: int) -> tuple[int, int]:
    """The mask pixel nearest to (x, y) (first in raster order on ties)."""
    if mask[y, x]:
        return x, y
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
    return int(xs[i]), int(ys[i])


#: Rules for ``representative_points``: "padded" (seglib's default) and "segzero_code" (Seg-Zero's public data-preparation code).
POINT_RULES = ("padded", "segzero_code")


def representative_points(mask: np.ndarray, k: int = 2, rule: str = "padded") -> list[tuple[int, int]]:
    """Seg-Zero's representative points of a mask, as integer (x, y).

    - p1: the arg-max of the Euclidean distance transform (centre of the largest
      inscribed circle).
    - p2: the arg-max of the distance transform among the mask pixels whose
      distance from p1 is strictly greater than the median of those distances.
    - Fallback for p2 (no pixel is beyond the median, e.g. a one-pixel mask):
      the distance-transform maximum in a window of ±10 px around the centroid.
    - A point off the mask snaps to the nearest mask pixel.
    - Ties go to the first pixel in raster order (smallest y, then smallest x).

    ``rule`` says how the distance transform and the fallback are taken:

    - ``"padded"`` (default): the mask is padded with background first, so the
      image border is an edge (``distance_transform``); the fallback centroid
      is rounded and its window is rows/columns [c − 10, c + 10], inclusive.
    - ``"segzero_code"``: Seg-Zero's public data-preparation code. The distance
      is to the nearest background pixel *inside* the image (no padding: the
      border is not an edge, so a mask touching the border has its deepest
      pixels there); the fallback centroid is truncated to an integer and its
      window is [c − 10, c + 10), half-open. A mask that fills the whole
      image has no background pixel: then the padded transform is used.

    Example, 7 × 7 image with columns 0–3 set: ``"padded"`` gives (1, 1), (1, 4);
    ``"segzero_code"`` gives (0, 0), (0, 4).

    ``k=1`` gives ``[p1]`` (VisionReasoner); ``k=2`` gives ``[p1, p2]``.
    An empty mask raises ``ValueError``, as does an unknown ``rule``.
    """
    mask = as_bool_mask(mask)
    if k not in (1, 2):
        raise ValueError(f"representative_points: k must be 1 or 2, got {k}")
    if rule not in POINT_RULES:
        raise ValueError(f"representative_points: rule must be one of {POINT_RULES}, got {rule!r}")
    if not mask.any():
        raise ValueError("representative_points: the mask is empty, so it has no points")
    if rule == "segzero_code" and not mask.all():
        from scipy import ndimage

        # exact EDT to the nearest background pixel of the image itself (float64 roots of integers: no ties flip)
        dist = ndimage.distance_transform_edt(mask)
    else:
        dist = distance_transform(mask)
    y1, x1 = np.unravel_index(int(np.argmax(dist)), dist.shape)
    p1 = _snap_to_mask(mask, int(x1), int(y1))
    if k == 1:
        return [p1]

    ys, xs = np.nonzero(mask)  # raster order
    d_from_p1 = np.hypot(xs - p1[0], ys - p1[1])
    far = d_from_p1 > np.median(d_from_p1)
    if far.any():
        cand_d = dist[ys[far], xs[far]]
        i = int(np.argmax(cand_d))
        p2 = (int(xs[far][i]), int(ys[far][i]))
    else:
        h, w = mask.shape
        if rule == "segzero_code":
            cx, cy = int(xs.mean()), int(ys.mean())
            ya, yb = max(cy - 10, 0), min(cy + 10, h) - 1
            xa, xb = max(cx - 10, 0), min(cx + 10, w) - 1
        else:
            cx, cy = int(round(xs.mean())), int(round(ys.mean()))
            ya, yb = max(cy - 10, 0), min(cy + 10, h - 1)
            xa, xb = max(cx - 10, 0), min(cx + 10, w - 1)
        window = dist[ya : yb + 1, xa : xb + 1]
        if window.size and (window.max() > 0 or rule == "segzero_code"):
            wy, wx = np.unravel_index(int(np.argmax(window)), window.shape)
            p2 = (xa + int(wx), ya + int(wy))
        else:
            p2 = (cx, cy)
    p2 = _snap_to_mask(mask, *p2)
    return [p1, p2]
