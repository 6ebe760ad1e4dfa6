"""VisionReasoner's multi-object rewards: format, Hungarian-matched accuracy, non-repeat (METHODS.md, "Rewards").

``single_object=True`` is the single-object stand-in VisionReasoner is compared
with (Seg-Zero's rewards, which read one object): on the same list answers and
components, only the first listed object counts, scored by Seg-Zero's terms
against the target where it scores best (``single_object_accuracy``).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from seglib.masks import box_iou_matrix
from seglib.metrics import hungarian_sum
from seglib.paradigms.boxpoints.matching import (MAX_OBJECTS, SEGZERO_IOU_THRESHOLD, SEGZERO_L1_PX, SEGZERO_POINT_PX,
                                                 VR_POINT_PX, inside, list_items, to_model_frame)
from seglib.paradigms.text import (MAX_BOX_ANSWER_CHARS, answer_span, as_numbers, finite_scores, has_answer_tags,
                                   has_think_format, is_strict_json, loads_json)

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


def single_object_accuracy(box: Sequence[float] | None, point: Sequence[float] | None, gt_boxes: np.ndarray,
                           gt_points: np.ndarray) -> float:
    """Seg-Zero's accuracy terms for one object, against the target where they sum highest (0–3).

    [box IoU > 0.5] + [mean L1 of the corners < 10 px] + [the point inside the object's own box and
    less than 100 px from the target's point] (Seg-Zero's thresholds, one point as list answers write).
    No box, a box with x1 < x0 or y1 < y0, or no target: 0. No point: the box terms only.
    Frames: the object and the targets in one frame (the model's).
    """
    if box is None or box[2] < box[0] or box[3] < box[1] or len(gt_boxes) == 0:
        return 0.0
    b = np.array(box, float).reshape(1, 4)
    terms = (box_iou_matrix(b, gt_boxes)[0] > SEGZERO_IOU_THRESHOLD).astype(float)
    terms += np.abs(gt_boxes - b).mean(axis=1) < SEGZERO_L1_PX
    if point is not None and inside(point, box):
        terms += np.linalg.norm(gt_points - np.array(point, float)[None, :], axis=1) < SEGZERO_POINT_PX
    return float(terms.max())


def visionreasoner_score(text: Any, gt_boxes: Sequence[Sequence[float]], gt_points: Sequence[Sequence[float]],
                         image_hw: tuple[int, int] | None = None, resize: int | None = None,
                         allowed_repeats: int = 1, single_object: bool = False) -> dict[str, float]:
    """VisionReasoner's multi-object rewards (``single_object``: the single-object stand-in below).

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

    ``single_object=True`` (the reward option ``single_object``; Seg-Zero's rewards on list answers):
    ``format`` = think format (1) + the *first* item's [valid ``bbox_2d``] + [valid ``point_2d``] when the
    answer is in tags and valid JSON (``[]`` adds 0: no object); ``accuracy`` =
    ``single_object_accuracy`` of the first item (0–3, other items ignored, so the count is not
    rewarded; an empty target scores 0, as Seg-Zero's reward needs one object); ``non_repeat`` as above.
    """
    if len(gt_boxes) != len(gt_points):
        raise ValueError(f"visionreasoner_score: {len(gt_boxes)} gt boxes but {len(gt_points)} gt points")
    out = {"format": float(has_think_format(text)), "accuracy": 0.0,
           "non_repeat": _non_repeat(text, allowed_repeats) if isinstance(text, str) else 0.0}
    span = answer_span(text)
    items = list_items(loads_json(span, MAX_BOX_ANSWER_CHARS))
    if items is None:
        return out
    if single_object:
        return _single_object_score(out, items, gt_boxes, gt_points, image_hw, resize,
                                    has_answer_tags(text) and is_strict_json(span))
    parsed = []
    fmt = 0.0
    for item in items:
        box = as_numbers(item.get("bbox_2d"), 4) if isinstance(item, dict) else None
        pt = as_numbers(item.get("point_2d"), 2) if isinstance(item, dict) else None
        fmt += (box is not None) + (pt is not None)
        ok = box is not None and pt is not None and box[2] >= box[0] and box[3] >= box[1]
        parsed.append((box, pt) if ok else None)
    if has_answer_tags(text) and is_strict_json(span):
        out["format"] += fmt / len(items) if items else 2.0
    M, N = len(parsed), len(gt_boxes)
    if M == 0 and N == 0:
        out["accuracy"] = 3.0
        return finite_scores(out)
    if M == 0 or N == 0:
        return finite_scores(out)
    gb = np.array([to_model_frame(b, image_hw, resize) for b in gt_boxes], float).reshape(-1, 4)
    gp = np.array([to_model_frame(p, image_hw, resize) for p in gt_points], float).reshape(-1, 2)
    rows = parsed[:MAX_OBJECTS]
    valid = np.array([r is not None for r in rows])
    pb = np.array([r[0] if r else (0, 0, 0, 0) for r in rows], float).reshape(-1, 4)
    pp = np.array([r[1] if r else (0, 0) for r in rows], float).reshape(-1, 2)
    iou = box_iou_matrix(pb, gb) > SEGZERO_IOU_THRESHOLD
    l1 = np.abs(pb[:, None, :] - gb[None, :, :]).mean(axis=2) < SEGZERO_L1_PX
    in_box = np.array([inside(p, b) for p, b in zip(pp, pb)])
    near = np.linalg.norm(pp[:, None, :] - gp[None, :, :], axis=2) < VR_POINT_PX
    hits = (iou.astype(float) + l1 + (near & in_box[:, None])) * valid[:, None]
    # Hungarian on cost 3 − hits; every assignment has min(M, N) pairs, so this is maximising hits.
    total, matches = hungarian_sum(hits)
    matched_cost = 3.0 * matches - total
    out["accuracy"] = (3.0 * matches - matched_cost) / max(M, N)
    return finite_scores(out)



def _single_object_score(out: dict, items: list, gt_boxes: Sequence[Sequence[float]],
                         gt_points: Sequence[Sequence[float]], image_hw: tuple[int, int] | None,
                         resize: int | None, well_formed: bool) -> dict[str, float]:
    """``visionreasoner_score(single_object=True)``'s format and accuracy from the first item of ``items``."""
    first = items[0] if items and isinstance(items[0], dict) else {}
    box, pt = as_numbers(first.get("bbox_2d"), 4), as_numbers(first.get("point_2d"), 2)
    if well_formed:
        out["format"] += (box is not None) + (pt is not None)
    gb = np.array([to_model_frame(b, image_hw, resize) for b in gt_boxes], float).reshape(-1, 4)
    gp = np.array([to_model_frame(p, image_hw, resize) for p in gt_points], float).reshape(-1, 2)
    out["accuracy"] = single_object_accuracy(box, pt, gb, gp)
    return finite_scores(out)
