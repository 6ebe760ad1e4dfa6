"""Reward functions for RL on segmentation: pure scorers and thin trl adapters.

Every scorer takes generated text plus ground truth and returns
``dict[str, float]`` of named components, each in the range listed in
``RANGES`` (StAR's other formulas: ``STAR_RANGES``). Model output is hostile
input: scorers never raise on the text, bad output scores 0, and every value is
finite. (Malformed *ground truth* or options raise ``ValueError``: that is a
bug in the caller, not in the model.) Format rewards credit only answers that
are valid JSON as written; the accuracy terms also read the single-quoted
pseudo-JSON that the parsers accept.

Coordinates: ground truth comes in pixels of the image as given; predictions
are compared in the frame the model saw (``resize=None``: the image as given;
``resize=840``: Seg-Zero's resized image, ground truth converted by
``seglib.frames.to_resized``), so pixel thresholds mean what the papers meant.

Scorers (facts in METHODS.md, "Rewards"):

* ``segzero_score`` (Seg-Zero): ``think_format``, ``answer_format``, ``bbox_iou``,
  ``bbox_l1``, ``points``; five binary rewards, or IoU and 1 − L1/max side with
  ``soft_accuracy``.
* ``visionreasoner_score`` (VisionReasoner): ``format`` (≤ 3), ``accuracy`` (≤ 3,
  Hungarian), ``non_repeat`` (≤ 1).
* ``star_score`` / ``star_group_scores`` (StAR): ``format`` (≤ 4), ``accuracy``
  (tiered mask IoU 0–5 through the segmenter, Hungarian), ``count`` (≤ 1);
  ``formula="code_stage1"`` / ``"code_stage2"``: the public code's stage-1
  (tier + box/point indicators, 0–8, plus the count bonus: 0–9) and stage-2
  (2 × tier, 0–10, no count bonus) rewards (``STAR_RANGES``).
* ``simpleseg_score`` (SimpleSeg): ``iou``, ``centroid``, ``format`` (each ≤ 1).
* ``clicks_score`` / ``clicks_group_scores`` (SegAgent): ``format``,
  ``iou_gain`` (−1…1), and ``prm`` (1 − |IoU estimate error|) when enabled.

The group scorers score all G completions of one prompt with ONE ``set_image``
and ONE ``predict_many``; ``trl_reward_functions`` wraps any scorer into one
trl reward function per component (``reward(prompts, completions, **columns)``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from seglib import frames
from seglib.paradigms import MAX_BOX_ANSWER_CHARS, answer_span, as_numbers, has_think_format, loads_json
from seglib.paradigms import boxpoints, clicks, polygon

#: Documented range of every component, per scorer (inclusive bounds).
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "segzero": {"think_format": (0, 1), "answer_format": (0, 1), "bbox_iou": (0, 1), "bbox_l1": (0, 1),
                "points": (0, 1)},
    "visionreasoner": {"format": (0, 3), "accuracy": (0, 3), "non_repeat": (0, 1)},
    "star": {"format": (0, 4), "accuracy": (0, 5), "count": (0, 1)},
    "simpleseg": {"iou": (0, 1), "centroid": (0, 1), "format": (0, 1)},
    "clicks": {"format": (0, 1), "iou_gain": (-1, 1), "prm": (0, 1)},
}

SEGZERO_IOU_THRESHOLD = 0.5
SEGZERO_L1_PX = 10.0
SEGZERO_POINT_PX = 100.0
VR_POINT_PX = 30.0
#: StAR tiers: reward k for IoU above STAR_TIERS[k-1] (upper bounds inclusive: (0.3, 0.5] → 1, …, > 0.9 → 5).
STAR_TIERS = (0.3, 0.5, 0.7, 0.8, 0.9)
#: Objects beyond this many in one answer are not matched (they still count in max(M, N)).
MAX_OBJECTS = 100
#: At most this many predicted objects per completion are sent to the segmenter (StAR).
MAX_SEGMENTED_OBJECTS = 16


# =========================================================================== geometry helpers
def _box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inclusive-box IoU, (M, 4) × (N, 4) → (M, N)."""
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


def _inside(point: Sequence[float], box: Sequence[float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _tagged(text: Any) -> bool:
    """Format rewards need the answer inside ``<answer>…</answer>`` (parsers also accept it bare)."""
    return isinstance(text, str) and "<answer>" in text and "</answer>" in text


def _finite(d: dict[str, float]) -> dict[str, float]:
    return {k: (float(v) if math.isfinite(float(v)) else 0.0) for k, v in d.items()}


def _to_frame(values: Sequence[float], image_hw: tuple[int, int] | None, resize: int | None) -> list[float]:
    if resize is None:
        return [float(v) for v in values]
    if image_hw is None:
        raise ValueError("resize given without image_hw=(height, width) of the original image")
    return [float(v) for v in frames.to_resized(list(values), image_hw[1], image_hw[0], resize)]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite JSON constant {name}")


def _is_strict_json(span: str | None) -> bool:
    """True when ``span`` is valid JSON as written (double quotes; no NaN/Infinity), within the answer cap.

    The parsers also read single-quoted pseudo-JSON (``loads_json``) so that
    accuracy can still be scored; the format rewards give credit only to this.
    """
    if not isinstance(span, str) or not span or len(span) > MAX_BOX_ANSWER_CHARS:
        return False
    try:
        json.loads(span, parse_constant=_reject_constant)
    except (ValueError, RecursionError, TypeError, OverflowError):
        return False
    return True


def _hungarian_sum(gain: np.ndarray) -> tuple[float, int]:
    """Maximum-gain assignment: (sum of matched gains, number of matches)."""
    if gain.size == 0:
        return 0.0, 0
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return float(gain[rows, cols].sum()), len(rows)


# =========================================================================== Seg-Zero
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
    gt_b = _to_frame(gt_box, image_hw, resize)
    if len(gt_b) != 4 or len(gt_points) != 2:
        raise ValueError(f"segzero_score: gt_box needs 4 numbers and gt_points 2 points, got {gt_box!r}, {gt_points!r}")
    gt_p = [_to_frame(p, image_hw, resize) for p in gt_points]
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
    out["answer_format"] = float(ok and _tagged(text) and _is_strict_json(span))
    if box is None or box[2] < box[0] or box[3] < box[1]:
        return out
    iou = float(_box_iou_matrix(np.array([box]), np.array([gt_b]))[0, 0])
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
    if len(pts) == 2 and all(_inside(p, box) for p in pts):
        P, G = np.array(pts), np.array(gt_p)
        straight = np.linalg.norm(P - G, axis=1).mean()
        swapped = np.linalg.norm(P - G[::-1], axis=1).mean()
        out["points"] = float(min(straight, swapped) < SEGZERO_POINT_PX)
    return _finite(out)


# =========================================================================== VisionReasoner
_ANSWER_BLOCK_RE = re.compile(r"<answer>.*?(?:</answer>|\Z)", re.DOTALL)
#: A sentence ends at "." unless the "." is a decimal point (a digit on both sides).
_SENTENCE_END_RE = re.compile(r"(?<!\d)\.|\.(?!\d)")


def prose_text(text: str) -> str:
    """The text without its answer: every ``<answer>…</answer>`` block removed (an unclosed one to the
    end); with no answer tag, a bare JSON answer (the text after ``</think>``, or the whole text) is
    removed when it parses. What is left is the prose the non-repeat reward reads."""
    if "<answer>" in text:
        return _ANSWER_BLOCK_RE.sub(" ", text)
    if loads_json(answer_span(text), MAX_BOX_ANSWER_CHARS) is not None:
        return text.rsplit("</think>", 1)[0] + "</think>" if "</think>" in text else ""
    return text


def sentences(text: str) -> list[str]:
    """The prose sentences of ``text`` (``prose_text``), split at "." but not at decimal points, stripped,
    empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END_RE.split(prose_text(text)) if s.strip()]


def _non_repeat(text: str, allowed_repeats: int) -> float:
    sentences_ = sentences(text)
    seen: set[str] = set()
    repeats = 0
    for s in sentences_:
        if s in seen:
            repeats += 1
            if repeats > allowed_repeats:
                return 0.0
        seen.add(s)
    return 1.0


def _list_items(data: Any) -> list | None:
    if isinstance(data, dict):
        return [data]
    return data if isinstance(data, list) else None


def visionreasoner_score(text: Any, gt_boxes: Sequence[Sequence[float]], gt_points: Sequence[Sequence[float]],
                         image_hw: tuple[int, int] | None = None, resize: int | None = None,
                         allowed_repeats: int = 1) -> dict[str, float]:
    """VisionReasoner's multi-object rewards.

    - ``format`` [0, 3]: think format (1) + (answer in ``<answer>`` tags, valid JSON as written) mean over items of
      ([valid ``bbox_2d``: 4 numbers] + [valid ``point_2d``: 2 numbers]); an
      empty list ``[]`` is well formed (2).
    - ``accuracy`` [0, 3]: M predictions × N targets, indicators inclusive-box
      IoU > 0.5, mean L1 < 10 px, point within 30 px and inside its own
      predicted box; Hungarian (``linear_sum_assignment``) on cost 3 − sum;
      (3·matches − matched cost) / max(M, N). M = N = 0 scores 3. A prediction
      item without a valid box and point scores 0 against every target.
    - ``non_repeat`` {0, 1}: 0 when the prose repeats sentences more than
      ``allowed_repeats`` times in all: each sentence equal to an earlier one is
      one repeat. Only prose counts (``sentences``: the text with its answer
      JSON removed, split at "." but not at decimal points), so the numbers of
      the answer are not sentences. Default 1, the public code's rule (VisionReasoner's
      non-repeat reward is 0 once a second repeat is seen, so one repeat is
      allowed); ``allowed_repeats=0``: no repeat at all. The public code splits the
      whole text at every "."; seglib reads the prose only.
    """
    if len(gt_boxes) != len(gt_points):
        raise ValueError(f"visionreasoner_score: {len(gt_boxes)} gt boxes but {len(gt_points)} gt points")
    out = {"format": float(has_think_format(text)), "accuracy": 0.0,
           "non_repeat": _non_repeat(text, allowed_repeats) if isinstance(text, str) else 0.0}
    span = answer_span(text)
    items = _list_items(loads_json(span, MAX_BOX_ANSWER_CHARS))
    if items is None:
        return out
    parsed = []
    fmt = 0.0
    for item in items:
        box = as_numbers(item.get("bbox_2d"), 4) if isinstance(item, dict) else None
        pt = as_numbers(item.get("point_2d"), 2) if isinstance(item, dict) else None
        fmt += (box is not None) + (pt is not None)
        ok = box is not None and pt is not None and box[2] >= box[0] and box[3] >= box[1]
        parsed.append((box, pt) if ok else None)
    if _tagged(text) and _is_strict_json(span):
        out["format"] += fmt / len(items) if items else 2.0
    M, N = len(parsed), len(gt_boxes)
    if M == 0 and N == 0:
        out["accuracy"] = 3.0
        return _finite(out)
    if M == 0 or N == 0:
        return _finite(out)
    gb = np.array([_to_frame(b, image_hw, resize) for b in gt_boxes], float).reshape(-1, 4)
    gp = np.array([_to_frame(p, image_hw, resize) for p in gt_points], float).reshape(-1, 2)
    rows = parsed[:MAX_OBJECTS]
    valid = np.array([r is not None for r in rows])
    pb = np.array([r[0] if r else (0, 0, 0, 0) for r in rows], float).reshape(-1, 4)
    pp = np.array([r[1] if r else (0, 0) for r in rows], float).reshape(-1, 2)
    iou = _box_iou_matrix(pb, gb) > SEGZERO_IOU_THRESHOLD
    l1 = np.abs(pb[:, None, :] - gb[None, :, :]).mean(axis=2) < SEGZERO_L1_PX
    inside = np.array([_inside(p, b) for p, b in zip(pp, pb)])
    near = np.linalg.norm(pp[:, None, :] - gp[None, :, :], axis=2) < VR_POINT_PX
    hits = (iou.astype(float) + l1 + (near & inside[:, None])) * valid[:, None]
    # Hungarian on cost 3 − hits; every assignment has min(M, N) pairs, so this is maximising hits.
    total, matches = _hungarian_sum(hits)
    matched_cost = 3.0 * matches - total
    out["accuracy"] = (3.0 * matches - matched_cost) / max(M, N)
    return _finite(out)


# =========================================================================== StAR
def star_tier(iou: float) -> int:
    """StAR's tiered reward: 1/2/3/4/5 for IoU in (0.3,0.5], (0.5,0.7], (0.7,0.8], (0.8,0.9], >0.9; else 0."""
    return int(sum(iou > t for t in STAR_TIERS))


def _star_format(text: Any, data: Any, span: str | None) -> float:
    items = _list_items(data)
    score = float(has_think_format(text))
    if items is None or not _tagged(text) or not _is_strict_json(span):
        return score
    if not items:
        return score + 3.0
    per = 0.0
    for item in items:
        if isinstance(item, dict):
            per += (as_numbers(item.get("bbox_2d"), 4) is not None) + (as_numbers(item.get("point_2d"), 2) is not None)
            label = item.get("label")
            per += isinstance(label, str) and bool(label.strip())
    return score + per / len(items)


def _mask_iou_matrix(pred: list[np.ndarray], gt: list[np.ndarray]) -> np.ndarray:
    """(M, N) mask IoUs from exact integer pixel counts (no BLAS: a float matmul here was both slower
    under CPU contention and, in float32, pushed tier edges such as 80/100 over 0.8)."""
    out = np.zeros((len(pred), len(gt)))
    gt_area = [int(np.count_nonzero(g)) for g in gt]
    for i, p in enumerate(pred):
        p_area = int(np.count_nonzero(p))
        for j, g in enumerate(gt):
            inter = int(np.count_nonzero(p & g))
            union = p_area + gt_area[j] - inter
            out[i, j] = 1.0 if union == 0 else inter / union
    return out


#: StAR accuracy formulas (``star_group_scores(formula=…)``) and the range of each component under each.
STAR_FORMULAS = ("paper", "code_stage1", "code_stage2")
STAR_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "paper": {"format": (0, 4), "accuracy": (0, 5), "count": (0, 1)},
    "code_stage1": {"format": (0, 4), "accuracy": (0, 8), "count": (0, 1)},
    "code_stage2": {"format": (0, 4), "accuracy": (0, 10), "count": (0, 0)},
}


def _box_point_hits(objs: Sequence[Any], gt_b: np.ndarray, gt_p: np.ndarray, gt_ok: np.ndarray) -> np.ndarray:
    """(M, N) VisionReasoner indicators [box IoU > 0.5] + [mean L1 < 10 px] + [point within 30 px of the target's
    point and inside its own box], objects and targets in one frame. An object without a point, or a target
    without a box (empty mask), scores 0 on the terms it lacks."""
    m, n = len(objs), len(gt_b)
    pb = np.array([o.box for o in objs], float).reshape(m, 4)
    iou = _box_iou_matrix(pb, gt_b) > SEGZERO_IOU_THRESHOLD
    l1 = np.abs(pb[:, None, :] - gt_b[None, :, :]).mean(axis=2) < SEGZERO_L1_PX
    near = np.zeros((m, n), bool)
    for i, o in enumerate(objs):
        if o.points and _inside(o.points[0], o.box):
            near[i] = np.linalg.norm(gt_p - np.array(o.points[0], float)[None, :], axis=1) < VR_POINT_PX
    return (iou.astype(float) + l1 + near) * gt_ok[None, :]


def _star_accuracy(pred_masks: list[np.ndarray], m_total: int, gt_masks: list[np.ndarray], formula: str = "paper",
                   hits: np.ndarray | None = None) -> tuple[float, float]:
    n = len(gt_masks)
    top = STAR_RANGES[formula]["accuracy"][1]
    if m_total == 0 and n == 0:
        return float(top), float(formula != "code_stage2")
    count = float(m_total == n) if formula != "code_stage2" else 0.0
    if m_total == 0 or n == 0:
        return 0.0, count
    gain = np.vectorize(star_tier, otypes=[float])(_mask_iou_matrix(pred_masks, gt_masks))
    if formula == "code_stage1" and hits is not None:
        gain = gain + hits[: gain.shape[0]]
    total, _ = _hungarian_sum(gain)
    acc = total / max(m_total, n)
    return (2.0 * acc if formula == "code_stage2" else acc), count


def star_group_scores(texts: Sequence[Any], gt_masks: Sequence[np.ndarray], segmenter: Any, image: np.ndarray,
                      resize: int | None = None, formula: str = "paper",
                      points_rule: str = "padded") -> list[dict[str, float]]:
    """StAR rewards for the G completions of one prompt: ONE ``set_image``, ONE ``predict_many``.

    - ``format`` [0, 4]: think format (1) + (answer in ``<answer>`` tags, valid JSON as written) mean over items
      of ([valid ``bbox_2d``] + [valid ``point_2d``] + [``label`` a string with a non-space character]);
      ``[]`` is well formed (3). The label counts here only: a non-string label (e.g. ``3``) earns no
      format credit but the object's box and point are still scored.
    - ``accuracy``: each predicted object's mask comes from the segmenter
      prompted with its box + point (the segmenter keeps its arg-max-score mask);
      gains per (object, target) pair, Hungarian over objects, sum / max(M, N).
      ``formula`` picks the gain:

      * ``"paper"`` (default) [0, 5]: the tier of the mask IoU (``star_tier``).
      * ``"code_stage1"`` [0, 8]: StAR's public stage-1 reward: tier + the three
        VisionReasoner indicators (box IoU > 0.5, mean box L1 < 10 px, point
        within 30 px of the target's point and inside its own box), the targets'
        boxes and points taken from their masks (``box_from_mask``,
        ``representative_points(k=1, rule=points_rule)``) in the model's frame.
        With ``count`` the total is [0, 9], the public code's range.
      * ``"code_stage2"`` [0, 10]: StAR's public stage-2 reward, 2 × (Hungarian
        tier sum / max(M, N)); no count bonus.

      An empty answer for an empty target scores the top of the range (the
      paper: an empty ground truth rewards an empty answer; the public code
      scores it 0 there, as its array code fails on empty lists); unparsable
      text scores 0. An object without a point is segmented by its box alone
      (the public code rejects the whole answer).
    - ``count`` {0, 1}: 1 when the answer parses and M = N (the count bonus);
      always 0 under ``"code_stage2"``.

    ``STAR_RANGES[formula]`` lists the ranges. Objects are parsed by ``boxpoints.parse``
    (either style, a non-string label dropped); coordinates in the frame ``resize``
    (``None``: image pixels), clipped to the image for the segmenter.
    """
    if formula not in STAR_FORMULAS:
        raise ValueError(f"star_group_scores: formula must be one of {STAR_FORMULAS}, got {formula!r}")
    image = np.asarray(image)
    h, w = image.shape[:2]
    gts = [np.asarray(g, bool) for g in gt_masks]
    gt_b = gt_p = gt_ok = None
    if formula == "code_stage1" and gts:
        from seglib.masks import box_from_mask, representative_points

        gt_ok = np.array([bool(g.any()) for g in gts])
        boxes = [box_from_mask(g) if ok else (0, 0, 0, 0) for g, ok in zip(gts, gt_ok)]
        points = [representative_points(g, k=1, rule=points_rule)[0] if ok else (0, 0) for g, ok in zip(gts, gt_ok)]
        gt_b = np.array([_to_frame(b, (h, w), resize) for b in boxes], float).reshape(-1, 4)
        gt_p = np.array([_to_frame(p, (h, w), resize) for p in points], float).reshape(-1, 2)
    datas, spans_text, parsed, prompts, spans = [], [], [], [], []
    for text in texts:
        span = answer_span(text)
        data = loads_json(span, MAX_BOX_ANSWER_CHARS)
        ans = boxpoints.parse_json_value(data, strict_label=False)  # = boxpoints.parse(text), label kept out
        datas.append(data)
        spans_text.append(span)
        parsed.append(ans)
        start = len(prompts)
        if ans is not None and ans.objects:
            objs = boxpoints.to_image_frame(ans, h, w, resize)[:MAX_SEGMENTED_OBJECTS]
            prompts.extend(boxpoints.segmenter_prompts(objs))
        spans.append((start, len(prompts)))
    preds = []
    if prompts:
        segmenter.set_image(image)
        preds = segmenter.predict_many(prompts)
    out = []
    for text, data, span, ans, (a, b) in zip(texts, datas, spans_text, parsed, spans):
        d = {"format": _star_format(text, data, span), "accuracy": 0.0, "count": 0.0}
        if ans is not None:
            masks = [np.asarray(p.mask, bool) for p in preds[a:b]]
            hits = None
            if gt_b is not None and masks:
                hits = _box_point_hits(ans.objects[: len(masks)], gt_b, gt_p, gt_ok)
            d["accuracy"], d["count"] = _star_accuracy(masks, len(ans.objects), gts, formula, hits)
        out.append(_finite(d))
    return out


def star_score(text: Any, gt_masks: Sequence[np.ndarray], segmenter: Any, image: np.ndarray,
               resize: int | None = None, formula: str = "paper", points_rule: str = "padded") -> dict[str, float]:
    """StAR rewards for one completion (see ``star_group_scores``)."""
    return star_group_scores([text], gt_masks, segmenter, image, resize, formula, points_rule)[0]


# =========================================================================== SimpleSeg
def _centroid(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    return None if xs.size == 0 else np.array([xs.mean(), ys.mean()])


def simpleseg_score(text: Any, gt_masks: Sequence[np.ndarray], size: tuple[int, int],
                    reject_self_intersecting: bool = False, outline: bool = False) -> dict[str, float]:
    """SimpleSeg rewards, each in [0, 1].

    - ``iou``: mask IoU of the union of the rasterised polygons against the
      union of the targets (both empty → 1; unparsable → 0).
    - ``centroid``: 1 − min(1, ‖c_pred − c_gt‖ / image diagonal), centroids of
      the two unions (both empty → 1, exactly one empty or unparsable → 0).
      Our form of the paper's centroid-distance term.
    - ``format``: 1 if the text parses as a well-formed polygon list
      (``polygon.parse`` rules).

    ``size`` = (height, width) of the image. ``outline``: how the polygons
    are rasterised (``polygon.decode``): False (default) is pycocotools alone,
    as the paper's code; True adds each polygon's edges 1 px wide.
    """
    h, w = int(size[0]), int(size[1])
    out = {"iou": 0.0, "centroid": 0.0, "format": 0.0}
    polys = polygon.parse(text, reject_self_intersecting=reject_self_intersecting)
    if polys is None:
        return out
    out["format"] = 1.0
    pred = polygon.decode(polys, h, w, outline=outline)
    gt = np.zeros((h, w), bool)
    for g in gt_masks:
        gt |= np.asarray(g, bool)
    inter = np.logical_and(pred, gt).sum()
    union = np.logical_or(pred, gt).sum()
    out["iou"] = 1.0 if union == 0 else float(inter / union)
    cp, cg = _centroid(pred), _centroid(gt)
    if cp is None and cg is None:
        out["centroid"] = 1.0
    elif cp is not None and cg is not None:
        out["centroid"] = 1.0 - min(1.0, float(np.linalg.norm(cp - cg)) / math.hypot(h, w))
    return _finite(out)


# =========================================================================== clicks (SegAgent)
@dataclass
class ClickState:
    """One SegAgent state to score clicks against: the image, the target, the current mask and its history.

    ``clicks``: the clicks so far (pixel ``Click``s); ``prev_logits``: the
    segmenter logits of the current mask (None at the first step);
    ``current_mask``: M_t (None = empty).
    """

    image: np.ndarray
    gt_mask: np.ndarray
    current_mask: np.ndarray | None = None
    clicks: Sequence[Any] = field(default_factory=list)
    prev_logits: np.ndarray | None = None


def clicks_group_scores(texts: Sequence[Any], state: ClickState, segmenter: Any, prm: bool = False,
                        grid: int = frames.GRID) -> list[dict[str, float]]:
    """SegAgent step rewards for G completions from one state: ONE ``set_image``, ONE ``predict_many``
    holding each distinct click once.

    - ``format`` {0, 1}: the text parses as an action (with ``prm``: and carries
      the ``Current IoU`` estimate).
    - ``iou_gain`` [−1, 1]: IoU(mask after the click) − IoU(M_t); 0 when unparsable.
    - ``prm`` [0, 1] (only with ``prm=True``): 1 − |estimated IoU − IoU(M_t)|
      (fractions); 0 when no estimate is written.
    """
    from seglib.segmenters import Prompt

    image = np.asarray(state.image)
    h, w = image.shape[:2]
    gt = np.asarray(state.gt_mask, bool)
    current = np.zeros((h, w), bool) if state.current_mask is None else np.asarray(state.current_mask, bool)
    iou_before = _iou(current, gt)
    actions = [clicks.parse(t, grid=grid) for t in texts]
    # a confident policy repeats its click across the group: each distinct click is segmented once
    keys: dict[int, tuple] = {}  # completion index -> its click (x, y, positive)
    distinct: dict[tuple, Any] = {}
    for i, a in enumerate(actions):
        if a is not None:
            c = clicks.to_click(a, h, w, grid)
            keys[i] = (int(c.x), int(c.y), bool(c.positive))
            distinct.setdefault(keys[i], c)
    iou_of: dict[tuple, float] = {}
    if distinct:
        prompts = []
        for c in distinct.values():
            cl = list(state.clicks) + [c]
            prompts.append(Prompt(points_xy=[(float(q.x), float(q.y)) for q in cl],
                                  labels=[1 if q.positive else 0 for q in cl], mask_logits=state.prev_logits))
        segmenter.set_image(image)
        iou_of = {k: _iou(np.asarray(p.mask, bool), gt) for k, p in zip(distinct, segmenter.predict_many(prompts))}
    after = {i: iou_of[k] for i, k in keys.items()}
    out = []
    for i, a in enumerate(actions):
        d = {"format": 0.0, "iou_gain": 0.0}
        if a is not None:
            d["format"] = float(a.iou is not None) if prm else 1.0
            d["iou_gain"] = after[i] - iou_before
        if prm:
            d["prm"] = 0.0 if a is None or a.iou is None else 1.0 - min(1.0, abs(a.iou - iou_before))
        out.append(_finite(d))
    return out


def clicks_score(text: Any, state: ClickState, segmenter: Any, prm: bool = False,
                 grid: int = frames.GRID) -> dict[str, float]:
    """SegAgent step reward for one completion (see ``clicks_group_scores``)."""
    return clicks_group_scores([text], state, segmenter, prm, grid)[0]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


# =========================================================================== trl adapters
def completion_text(completion: Any) -> str:
    """trl completion → text: a string, or a conversational list of messages whose
    ``content`` is a string or a list of ``{"type": "text", "text": …}`` parts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts = []
    if isinstance(completion, (list, tuple)):
        for msg in completion:
            content = msg.get("content", "") if isinstance(msg, dict) else msg
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, (list, tuple)):
                parts.extend(c.get("text", "") for c in content if isinstance(c, dict) and isinstance(c.get("text"), str))
    return "".join(parts)


def _column(columns: dict, name: str, n: int, default: Any = None) -> list:
    v = columns.get(name)
    if v is None:
        return [default] * n
    if len(v) != n:
        raise ValueError(f"reward column {name!r} has {len(v)} rows for {n} completions")
    return list(v)


def _image_array(img: Any, path: Any) -> np.ndarray:
    if img is None and path:
        from PIL import Image

        img = Image.open(path)
    if img is None:
        raise ValueError("reward needs an 'image' or 'image_path' column for segmenter-based scoring")
    if hasattr(img, "convert"):
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _masks_from_rles(rles: Any) -> list[np.ndarray]:
    from seglib.masks import decode_rle

    return [decode_rle(r) for r in (rles or [])]


def _groups(keys: list) -> list[list[int]]:
    """Consecutive runs of equal keys (trl repeats each prompt's row G times in a row)."""
    out: list[list[int]] = []
    for i, k in enumerate(keys):
        if out and keys[out[-1][0]] == k:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def score_batch(scorer: str, texts: list[str], columns: dict, segmenter: Any = None,
                **options: Any) -> list[dict[str, float]]:
    """Score a trl batch with ``scorer`` (a key of ``RANGES``), reading ground truth from dataset columns.

    Columns (one entry per completion, as trl passes them):

    - segzero: ``gt_box``, ``gt_points`` (image pixels); optional ``height``, ``width``.
    - visionreasoner: ``gt_boxes``, ``gt_points``; optional ``height``, ``width``.
    - star: ``target_rles``, and ``image`` or ``image_path``; consecutive rows of one prompt are
      grouped (by ``sample_id`` if present, else ``image_path``, else image content) and
      scored with one ``set_image`` and one ``predict_many``.
    - simpleseg: ``target_rles``, ``height``, ``width``.
    - clicks: ``target_rles``, ``image``/``image_path``, ``clicks`` (list of ``[x, y, positive]``
      pixels, replayed through the segmenter to rebuild M_t and its logits).

    ``options`` go to the scorer (``resize=…``, ``strict=…``, ``prm=…``).
    """
    n = len(texts)
    hs, ws = _column(columns, "height", n), _column(columns, "width", n)
    hw = [None if h is None else (int(h), int(w)) for h, w in zip(hs, ws)]
    if scorer == "segzero":
        return [segzero_score(t, b, p, image_hw=s, **options) for t, b, p, s in
                zip(texts, _column(columns, "gt_box", n), _column(columns, "gt_points", n), hw)]
    if scorer == "visionreasoner":
        return [visionreasoner_score(t, b, p, image_hw=s, **options) for t, b, p, s in
                zip(texts, _column(columns, "gt_boxes", n), _column(columns, "gt_points", n), hw)]
    if scorer == "simpleseg":
        rles = _column(columns, "target_rles", n)
        return [simpleseg_score(t, _masks_from_rles(r), s, **options) for t, r, s in zip(texts, rles, hw)]
    if scorer not in ("star", "clicks"):
        raise ValueError(f"unknown scorer {scorer!r}; expected one of {sorted(RANGES)}")
    if segmenter is None:
        raise ValueError(f"the {scorer} reward needs a segmenter")
    images, paths = _column(columns, "image", n), _column(columns, "image_path", n)
    rles = _column(columns, "target_rles", n)
    if "sample_id" in columns:
        keys = _column(columns, "sample_id", n)
    else:  # image path, else image content (trl hands each repeated row its own image object)
        from seglib.segmenters import image_key

        keys = [p if p is not None else image_key(_image_array(img, None)) for img, p in zip(images, paths)]
    if "clicks" in columns:
        keys = [(k, repr(c)) for k, c in zip(keys, columns["clicks"])]
    results: list[dict[str, float] | None] = [None] * n
    for group in _groups(keys):
        i0 = group[0]
        image = _image_array(images[i0], paths[i0])
        gts = _masks_from_rles(rles[i0])
        group_texts = [texts[i] for i in group]
        if scorer == "star":
            scores = star_group_scores(group_texts, gts, segmenter, image, **options)
        else:
            from seglib.clicker import Click

            gt = np.zeros(image.shape[:2], bool)
            for g in gts:
                gt |= g
            history = [Click(int(c[0]), int(c[1]), bool(c[2])) for c in (_column(columns, "clicks", n)[i0] or [])]
            segmenter.set_image(image)
            current, logits = clicks.replay(history, segmenter, image.shape[0], image.shape[1])
            state = ClickState(image=image, gt_mask=gt, current_mask=current, clicks=history, prev_logits=logits)
            scores = clicks_group_scores(group_texts, state, segmenter, **options)
        for i, s in zip(group, scores):
            results[i] = s
    return results  # type: ignore[return-value]


def trl_reward_functions(scorer: str, segmenter: Any = None, weights: dict[str, float] | None = None,
                         **options: Any) -> list[Callable[..., list[float]]]:
    """One trl reward function per component of ``scorer`` (so trl logs each under its name).

    Each has trl's signature ``reward(prompts, completions, **columns) -> list[float]``
    and ``__name__ = "<scorer>_<component>"``. The components of one batch are
    computed once and shared (trl calls the functions one after another with the
    same column lists). ``weights`` multiplies components (default 1); pass
    trl's ``reward_weights`` instead if you prefer. ``options`` go to the scorer.
    """
    if scorer not in RANGES:
        raise ValueError(f"unknown scorer {scorer!r}; expected one of {sorted(RANGES)}")
    components = list(RANGES[scorer])
    if scorer == "clicks" and not options.get("prm", False):
        components.remove("prm")
    weights = weights or {}
    cache: dict[str, Any] = {"key": None, "hold": None, "scores": None}

    def batch_scores(completions: list, columns: dict) -> list[dict[str, float]]:
        texts = [completion_text(c) for c in completions]
        key = (tuple(texts), tuple(id(v) for v in columns.values()))
        if cache["key"] != key:
            cache["scores"] = score_batch(scorer, texts, columns, segmenter, **options)
            cache["key"], cache["hold"] = key, (completions, list(columns.values()))  # hold refs: ids stay unique
        return cache["scores"]

    def make(component: str) -> Callable[..., list[float]]:
        w = float(weights.get(component, 1.0))

        def reward(prompts: list, completions: list, **columns: Any) -> list[float]:
            return [w * s.get(component, 0.0) for s in batch_scores(completions, columns)]

        reward.__name__ = reward.__qualname__ = f"{scorer}_{component}"
        return reward

    return [make(c) for c in components]
