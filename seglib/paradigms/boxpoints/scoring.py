"""One GRPO row's ground truth → the box + points scorers (Seg-Zero, VisionReasoner, StAR).

Row columns (``BoxPointsParadigm.rl_rows``): ``gt_box``/``gt_points`` (Seg-Zero rows),
``gt_boxes``/``gt_points`` (list rows), ``target_rles`` and ``image_path`` (StAR reads
the image from the path, never from the ``image`` column, which is the policy's view),
``height``/``width``. JSON-encoded columns are decoded by the caller.

Reward options reach each scorer that takes them as a keyword (``known_options``):
``strict``/``soft_accuracy``/``allow_extra_keys`` Seg-Zero's, ``allowed_repeats`` and
``single_object`` (the single-object stand-in on list answers) VisionReasoner's, ``formula`` StAR's.
"""
from __future__ import annotations

from typing import Any, Sequence

from seglib.paradigms.boxpoints.segzero import segzero_score
from seglib.paradigms.boxpoints.star import star_group_scores
from seglib.paradigms.boxpoints.visionreasoner import visionreasoner_score
from seglib.paradigms.common import read_image, target_masks
from seglib.paradigms.text import known_options

SCORERS = {"segzero": segzero_score, "visionreasoner": visionreasoner_score, "star": star_group_scores}


def score_row(scorer: str, texts: Sequence[str], row: dict, segmenter: Any, options: dict) -> list[dict[str, float]]:
    """``scorer``'s components for each text against ``row``; ``options`` are filtered to the scorer's keywords."""
    kw = known_options(SCORERS[scorer], options)
    hw = None if row.get("height") is None else (int(row["height"]), int(row["width"]))
    if scorer == "segzero":
        return [segzero_score(t, row.get("gt_box"), row.get("gt_points"), image_hw=hw, **kw) for t in texts]
    if scorer == "visionreasoner":
        return [visionreasoner_score(t, row.get("gt_boxes"), row.get("gt_points"), image_hw=hw, **kw) for t in texts]
    if segmenter is None:
        raise ValueError(f"the {scorer} reward needs a segmenter")
    return star_group_scores(list(texts), target_masks(row), segmenter, read_image(row.get("image_path")), **kw)
