"""Seg-Zero's five rewards for one box + two points answer (METHODS.md, "Rewards")."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seglib.masks import box_iou_matrix
from seglib.paradigms.boxpoints.matching import (SEGZERO_IOU_THRESHOLD, SEGZERO_L1_PX, SEGZERO_POINT_PX, inside,
                                                 to_model_frame)
from seglib.paradigms.text import (MAX_BOX_ANSWER_CHARS, answer_span, as_numbers, finite_scores, has_answer_tags,
                                   has_think_format, is_strict_json, loads_json)


def _soft_key(data: dict, needle: str, n: int, count: int) -> list[tuple[float, ...]]:
    """Values of the first ``count`` keys containing ``needle`` that hold ``n`` valid numbers."""
    out = []
    for k, v in data.items():
        if isinstance(k, str) and needle in k:
            nums = as_numbers(v, n)
            if nums is not None:
                out.append(nums)
    return out[:count]


def segzero_score(text: Any, gt_box: Sequence[float], gt_points: Sequence[Sequence[float]], strict: bool = True,
                  soft_accuracy: bool = False, image_hw: tuple[int, int] | None = None,
                  resize: int | None = None, allow_extra_keys: bool = False) -> dict[str, float]:
    """Seg-Zero's five rewards (each in [0, 1]; sum ≤ 5).

    - ``think_format``: the whole text is ``<think>…</think>\\s*<answer>…</answer>``.
    - ``answer_format``: the answer sits in ``<answer>`` tags, is valid JSON as
      written (double quotes; single-quoted pseudo-JSON gets no format credit,
      though its coordinates are still read for the accuracy terms), and strict —
      an object with exactly the keys ``bbox`` (4 numbers), ``points_1`` and
      ``points_2`` (2 each), as the paper says; with ``allow_extra_keys`` (Seg-Zero's
      public code) those three must be present and other keys (e.g. ``"label"``)
      are allowed; soft (``strict=False``) — a key containing "bbox" with 4
      numbers and two keys containing "point" with 2 numbers each. Seg-Zero's
      public code only checks that the values are lists of the right length;
      seglib also requires numbers (a non-number is malformed output).
    - ``bbox_iou``: 1 if inclusive-box IoU > 0.5 (``soft_accuracy``: the IoU).
    - ``bbox_l1``: 1 if the mean absolute coordinate difference < 10 px
      (``soft_accuracy``: max(0, 1 − L1 / max side of the model's image);
      needs ``image_hw`` or ``resize``).
    - ``points``: 1 if both predicted points lie in the predicted box and the
      mean distance to the ground-truth points is < 100 px under the better
      of the two pairings.

    Accuracy reads the box from ``bbox`` and points from ``points_1``/``points_2``
    (with ``strict=False``: the soft keys). A box with x1 < x0 or y1 < y0 scores
    0 on all accuracy terms. ``gt_box``, ``gt_points``: image pixels; ``resize``:
    the Seg-Zero frame the model wrote in (``image_hw`` then required).
    """
    gt_b = to_model_frame(gt_box, image_hw, resize)
    if len(gt_b) != 4 or len(gt_points) != 2:
        raise ValueError(f"segzero_score: gt_box needs 4 numbers and gt_points 2 points, got {gt_box!r}, {gt_points!r}")
    gt_p = [to_model_frame(p, image_hw, resize) for p in gt_points]
    out = {"think_format": float(has_think_format(text)), "answer_format": 0.0, "bbox_iou": 0.0, "bbox_l1": 0.0,
           "points": 0.0}
    span = answer_span(text)
    data = loads_json(span, MAX_BOX_ANSWER_CHARS)
    if not isinstance(data, dict):
        return out
    if strict:
        box = as_numbers(data.get("bbox"), 4)
        pts = [p for p in (as_numbers(data.get("points_1"), 2), as_numbers(data.get("points_2"), 2)) if p is not None]
        required = {"bbox", "points_1", "points_2"}
        keys_ok = required <= set(data) if allow_extra_keys else set(data) == required
        ok = keys_ok and box is not None and len(pts) == 2
    else:
        boxes = _soft_key(data, "bbox", 4, 1)
        box = boxes[0] if boxes else None
        pts = _soft_key(data, "point", 2, 2)
        ok = box is not None and len(pts) == 2
    out["answer_format"] = float(ok and has_answer_tags(text) and is_strict_json(span))
    if box is None or box[2] < box[0] or box[3] < box[1]:
        return out
    iou = float(box_iou_matrix(np.array([box]), np.array([gt_b]))[0, 0])
    l1 = float(np.mean(np.abs(np.array(box) - np.array(gt_b))))
    if soft_accuracy:
        if resize is None and image_hw is None:
            raise ValueError("segzero_score(soft_accuracy=True) needs image_hw (or resize) for the max side")
        max_side = float(resize if resize is not None else max(image_hw))  # type: ignore[arg-type]
        out["bbox_iou"] = iou
        out["bbox_l1"] = max(0.0, 1.0 - l1 / max_side)
    else:
        out["bbox_iou"] = float(iou > SEGZERO_IOU_THRESHOLD)
        out["bbox_l1"] = float(l1 < SEGZERO_L1_PX)
    if len(pts) == 2 and all(inside(p, box) for p in pts):
        P, G = np.array(pts), np.array(gt_p)
        straight = np.linalg.norm(P - G, axis=1).mean()
        swapped = np.linalg.norm(P - G[::-1], axis=1).mean()
        out["points"] = float(min(straight, swapped) < SEGZERO_POINT_PX)
    return finite_scores(out)

