"""StAR's rewards for the G completions of one prompt, masks through the segmenter (METHODS.md, "Rewards").

``STAR_RANGES`` lists each formula's component ranges (``"paper"`` is the
paradigm's ``reward_ranges["star"]``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seglib.masks import mask_iou_matrix
from seglib.metrics import hungarian_sum
from seglib.paradigms.boxpoints import format as fmt
from seglib.paradigms.boxpoints.matching import box_point_hits, list_items, to_model_frame
from seglib.paradigms.text import (MAX_BOX_ANSWER_CHARS, answer_span, as_numbers, finite_scores, has_answer_tags,
                                   has_think_format, is_strict_json, loads_json)

#: StAR tiers: reward k for IoU above STAR_TIERS[k-1] (upper bounds inclusive: (0.3, 0.5] → 1, …, > 0.9 → 5).
STAR_TIERS = (0.3, 0.5, 0.7, 0.8, 0.9)
#: At most this many predicted objects per completion are sent to the segmenter (StAR).
MAX_SEGMENTED_OBJECTS = 16


def star_tier(iou: float) -> int:
    """StAR's tiered reward: 1/2/3/4/5 for IoU in (0.3,0.5], (0.5,0.7], (0.7,0.8], (0.8,0.9], >0.9; else 0."""
    return int(sum(iou > t for t in STAR_TIERS))


def _star_format(text: Any, data: Any, span: str | None) -> float:
    items = list_items(data)
    score = float(has_think_format(text))
    if items is None or not has_answer_tags(text) or not is_strict_json(span):
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




#: StAR accuracy formulas (``star_group_scores(formula=…)``) and the range of each component under each.
STAR_FORMULAS = ("paper", "code_stage1", "code_stage2")
STAR_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "paper": {"format": (0, 4), "accuracy": (0, 5), "count": (0, 1)},
    "code_stage1": {"format": (0, 4), "accuracy": (0, 8), "count": (0, 1)},
    "code_stage2": {"format": (0, 4), "accuracy": (0, 10), "count": (0, 0)},
}



def _star_accuracy(pred_masks: list[np.ndarray], m_total: int, gt_masks: list[np.ndarray], formula: str = "paper",
                   hits: np.ndarray | None = None) -> tuple[float, float]:
    n = len(gt_masks)
    top = STAR_RANGES[formula]["accuracy"][1]
    if m_total == 0 and n == 0:
        return float(top), float(formula != "code_stage2")
    count = float(m_total == n) if formula != "code_stage2" else 0.0
    if m_total == 0 or n == 0:
        return 0.0, count
    gain = np.vectorize(star_tier, otypes=[float])(mask_iou_matrix(pred_masks, gt_masks))
    if formula == "code_stage1" and hits is not None:
        gain = gain + hits[: gain.shape[0]]
    total, _ = hungarian_sum(gain)
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
        gt_b = np.array([to_model_frame(b, (h, w), resize) for b in boxes], float).reshape(-1, 4)
        gt_p = np.array([to_model_frame(p, (h, w), resize) for p in points], float).reshape(-1, 2)
    datas, spans_text, parsed, prompts, spans = [], [], [], [], []
    for text in texts:
        span = answer_span(text)
        data = loads_json(span, MAX_BOX_ANSWER_CHARS)
        ans = fmt.parse_json_value(data, strict_label=False)  # = boxpoints.parse(text), label kept out
        datas.append(data)
        spans_text.append(span)
        parsed.append(ans)
        start = len(prompts)
        if ans is not None and ans.objects:
            objs = fmt.to_image_frame(ans, h, w, resize)[:MAX_SEGMENTED_OBJECTS]
            prompts.extend(fmt.segmenter_prompts(objs))
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
                hits = box_point_hits(ans.objects[: len(masks)], gt_b, gt_p, gt_ok)
            d["accuracy"], d["count"] = _star_accuracy(masks, len(ans.objects), gts, formula, hits)
        out.append(finite_scores(d))
    return out

