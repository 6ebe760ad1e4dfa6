"""The IoU rule (``iou_from_counts``: I / U, both empty = 1, StAR's rule), mask and box IoUs, boxes, unions.

Boxes are inclusive pixel boxes ``(x0, y0, x1, y1)``: width = x1 − x0 + 1.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from seglib.masks.rle import as_bool_mask

Box = tuple[int, int, int, int]


def iou_from_counts(intersection: int, union: int) -> float:
    """The IoU rule: I / U from pixel counts; U == 0 (both masks empty) gives 1.0 (StAR's rule)."""
    return 1.0 if union == 0 else intersection / union


def overlap_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts ``(|pred ∩ gt|, |pred ∪ gt|)`` of two same-shape (H, W) masks."""
    pred = as_bool_mask(pred, "pred")
    gt = as_bool_mask(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"mask_iou: shapes differ, pred {pred.shape} vs gt {gt.shape}")
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|pred ∩ gt| / |pred ∪ gt|; both empty gives 1.0 (StAR's rule)."""
    return iou_from_counts(*overlap_counts(pred, gt))


def mask_iou_matrix(pred: Sequence[np.ndarray], gt: Sequence[np.ndarray]) -> np.ndarray:
    """(M, N) float64 matrix of ``mask_iou(pred[i], gt[j])``, from exact integer pixel counts.

    No BLAS: a float matmul was slower under CPU contention and, in float32, pushed
    tier edges such as 80/100 over 0.8 (StAR's reward).
    """
    out = np.zeros((len(pred), len(gt)))
    gt_area = [int(np.count_nonzero(g)) for g in gt]
    for i, p in enumerate(pred):
        p_area = int(np.count_nonzero(p))
        for j, g in enumerate(gt):
            inter = int(np.count_nonzero(p & g))
            out[i, j] = iou_from_counts(inter, p_area + gt_area[j] - inter)
    return out


def box_area(box: Sequence[float]) -> float:
    """Area of an inclusive box, (x1 − x0 + 1)·(y1 − y0 + 1); 0 if degenerate."""
    x0, y0, x1, y1 = box
    return max(0.0, x1 - x0 + 1) * max(0.0, y1 - y0 + 1)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two inclusive pixel boxes (x0, y0, x1, y1); width = x1 − x0 + 1.

    Degenerate boxes (x1 < x0 or y1 < y0) have area 0; if the union is 0 the
    IoU is 0.0.
    """
    if len(a) != 4 or len(b) != 4:
        raise ValueError(f"box_iou: boxes need 4 numbers, got {a!r} and {b!r}")
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(0.0, ix) * max(0.0, iy)
    union = box_area(a) + box_area(b) - inter
    if union <= 0:
        return 0.0
    return float(inter / union)


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inclusive-box IoU of every pair, (M, 4) × (N, 4) → (M, N) in [0, 1]; a zero union gives 0.0."""
    a = a[:, None, :]
    b = b[None, :, :]
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.clip(np.nan_to_num(iou), 0.0, 1.0)


def box_from_mask(mask: np.ndarray) -> Box:
    """Inclusive box ``(x_min, y_min, x_max, y_max)`` of the mask's pixels.

    An empty mask has no box: raises ``ValueError``.
    """
    mask = as_bool_mask(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        raise ValueError("box_from_mask: the mask is empty, so it has no box")
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def masks_union(masks: Iterable[np.ndarray], height: int | None = None, width: int | None = None) -> np.ndarray:
    """Union of masks; with no masks, an empty (height, width) mask (both needed then)."""
    out = None
    for m in masks:
        m = as_bool_mask(m)
        if out is None:
            out = m.copy()
        else:
            if m.shape != out.shape:
                raise ValueError(f"masks_union: shapes differ, {m.shape} vs {out.shape}")
            out |= m
    if out is None:
        if height is None or width is None:
            raise ValueError("masks_union: no masks given, so height and width are needed")
        return np.zeros((height, width), bool)
    return out
