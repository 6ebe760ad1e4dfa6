"""Geometry the box + points rewards share: thresholds, the model frame, VisionReasoner's hit indicators.

Ground truth comes in pixels of the image as given; predictions are compared in
the frame the model saw (``resize=None``: the image as given; ``resize=840``:
Seg-Zero's resized image, ground truth converted by ``seglib.frames.to_resized``),
so pixel thresholds mean what the papers meant.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seglib import frames
from seglib.masks import box_iou_matrix

SEGZERO_IOU_THRESHOLD = 0.5
SEGZERO_L1_PX = 10.0
SEGZERO_POINT_PX = 100.0
VR_POINT_PX = 30.0
#: Objects beyond this many in one answer are not matched (they still count in max(M, N)).
MAX_OBJECTS = 100


def inside(point: Sequence[float], box: Sequence[float]) -> bool:
    """Whether ``point`` lies in the inclusive ``box``."""
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def to_model_frame(values: Sequence[float], image_hw: tuple[int, int] | None, resize: int | None) -> list[float]:
    """Ground-truth pixel coordinates of the image as given → the frame the model wrote in (``resize``)."""
    if resize is None:
        return [float(v) for v in values]
    if image_hw is None:
        raise ValueError("resize given without image_hw=(height, width) of the original image")
    return [float(v) for v in frames.to_resized(list(values), image_hw[1], image_hw[0], resize)]


def list_items(data: Any) -> list | None:
    """A list answer's items (a single item written without the list counts as one), else None."""
    if isinstance(data, dict):
        return [data]
    return data if isinstance(data, list) else None


def box_point_hits(objs: Sequence[Any], gt_b: np.ndarray, gt_p: np.ndarray, gt_ok: np.ndarray) -> np.ndarray:
    """(M, N) VisionReasoner indicators [box IoU > 0.5] + [mean L1 < 10 px] + [point within 30 px of the target's
    point and inside its own box], objects and targets in one frame. An object without a point, or a target
    without a box (empty mask), scores 0 on the terms it lacks."""
    m, n = len(objs), len(gt_b)
    pb = np.array([o.box for o in objs], float).reshape(m, 4)
    iou = box_iou_matrix(pb, gt_b) > SEGZERO_IOU_THRESHOLD
    l1 = np.abs(pb[:, None, :] - gt_b[None, :, :]).mean(axis=2) < SEGZERO_L1_PX
    near = np.zeros((m, n), bool)
    for i, o in enumerate(objs):
        if o.points and inside(o.points[0], o.box):
            near[i] = np.linalg.norm(gt_p - np.array(o.points[0], float)[None, :], axis=1) < VR_POINT_PX
    return (iou.astype(float) + l1 + near) * gt_ok[None, :]

