"""SegAgent's step reward for click actions: format, IoU gain and the PRM's IoU estimate (METHODS.md, "Rewards")."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from seglib import frames
from seglib.masks import mask_iou
from seglib.paradigms.clicks import format as fmt
from seglib.paradigms.text import finite_scores, known_options


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
    iou_before = mask_iou(current, gt)
    actions = [fmt.parse(t, grid=grid) for t in texts]
    # a confident policy repeats its click across the group: each distinct click is segmented once
    keys: dict[int, tuple] = {}  # completion index -> its click (x, y, positive)
    distinct: dict[tuple, Any] = {}
    for i, a in enumerate(actions):
        if a is not None:
            c = fmt.to_click(a, h, w, grid)
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
        iou_of = {k: mask_iou(np.asarray(p.mask, bool), gt) for k, p in zip(distinct, segmenter.predict_many(prompts))}
    after = {i: iou_of[k] for i, k in keys.items()}
    out = []
    for i, a in enumerate(actions):
        d = {"format": 0.0, "iou_gain": 0.0}
        if a is not None:
            d["format"] = float(a.iou is not None) if prm else 1.0
            d["iou_gain"] = after[i] - iou_before
        if prm:
            d["prm"] = 0.0 if a is None or a.iou is None else 1.0 - min(1.0, abs(a.iou - iou_before))
        out.append(finite_scores(d))
    return out



def state_of_row(row: dict, segmenter: Any) -> ClickState:
    """The ``ClickState`` of a GRPO row: its image (``image_path``), target (``target_rles``) and the
    ``clicks`` history replayed through the segmenter to rebuild M_t and its logits."""
    from seglib.clicker import Click
    from seglib.paradigms.common import read_image, target_masks

    image = read_image(row.get("image_path"))
    gt = np.zeros(image.shape[:2], bool)
    for g in target_masks(row):
        gt |= g
    history = [Click(int(c[0]), int(c[1]), bool(c[2])) for c in (row.get("clicks") or [])]
    segmenter.set_image(image)
    current, logits = fmt.replay(history, segmenter, image.shape[0], image.shape[1])
    return ClickState(image=image, gt_mask=gt, current_mask=current, clicks=history, prev_logits=logits)


def score_row(texts: Sequence[str], row: dict, segmenter: Any, options: dict) -> list[dict[str, float]]:
    """``clicks_group_scores`` of the texts from the row's state (``state_of_row``)."""
    if segmenter is None:
        raise ValueError("the clicks reward needs a segmenter")
    state = state_of_row(row, segmenter)
    return clicks_group_scores(list(texts), state, segmenter, **known_options(clicks_group_scores, options))
