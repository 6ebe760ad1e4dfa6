"""Promptable segmenters: one interface, two backends.

The interface follows SAM2's image predictor (Ravi et al. 2024, ``sam2``
package): an explicit life cycle where ``set_image`` computes whatever is per
image once, and ``predict`` turns a prompt (points, box, previous logits) into
a mask. Seg-Zero and StAR prompt SAM2 with a box and points and keep the
highest-scoring of its multimask outputs; SegAgent feeds all clicks so far plus
the previous step's logits. Both go through ``predict``; a GRPO group of G
completions or the K candidates of a PRM search step go through
``predict_many`` on one cached image.

Backends (``build_segmenter(name)``):

* ``"sam2"``: SAM2.1 via the ``sam2`` package (``seglib.segmenters.sam2``);
  a checkpoint path, or None for random weights (tests only).
* ``"classic"``: the weightless default (``seglib.segmenters.classic``).

Conventions: images are uint8 RGB (H, W, 3); points are (x, y) pixels of the
image as given, labels 1 = positive, 0 = negative; boxes are inclusive pixel
boxes ``[x0, y0, x1, y1]``; masks are bool (H, W). Points and boxes outside
the image are clipped into it (model output is hostile input).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seglib.segmenters.base import Prediction, Prompt, Segmenter, check_image, image_key


def box_points_quality(samples: Sequence[Any], segmenter: "Segmenter", k: int = 2) -> dict:
    """The boxpoints paradigm's ceiling: each target's ground-truth box + Seg-Zero's ``k``
    representative points → mask; union over targets; mean IoU against the union.
    Samples without a target are skipped. Returns ``{"n", "mean_iou", "ious", "ms_per_call"}``."""
    import time

    from seglib.masks import box_from_mask, mask_iou, representative_points

    ious, seconds = [], []
    for s in samples:
        masks = s.target_masks()
        if not masks:
            continue
        segmenter.set_image(s.image())
        pred = np.zeros_like(masks[0])
        for m in masks:
            t = time.perf_counter()
            pred |= segmenter.predict(representative_points(m, k), [1] * k, box_xyxy=box_from_mask(m)).mask
            seconds.append(time.perf_counter() - t)
        ious.append(mask_iou(pred, s.union_mask()))
    return {"n": len(ious), "mean_iou": float(np.mean(ious)) if ious else float("nan"), "ious": ious,
            "ms_per_call": 1e3 * float(np.mean(seconds)) if seconds else float("nan")}


def build_segmenter(
    name: str = "classic",
    device: str = "cpu",
    sam2_config: str | None = None,
    sam2_checkpoint: str | None = None,
    **kwargs: Any,
) -> Segmenter:
    """``"classic"`` (weightless, CPU) or ``"sam2"`` (``sam2_config`` e.g.
    ``"configs/sam2.1/sam2.1_hiera_l.yaml"``, ``sam2_checkpoint`` a path or None = random weights).
    Extra keyword arguments go to the backend's constructor."""
    if name == "classic":
        from seglib.segmenters.classic import ClassicSegmenter

        return ClassicSegmenter(**kwargs)
    if name == "sam2":
        from seglib.segmenters.sam2 import DEFAULT_CONFIG, SAM2Segmenter

        return SAM2Segmenter(sam2_config or DEFAULT_CONFIG, sam2_checkpoint, device=device, **kwargs)
    raise ValueError(f"unknown segmenter {name!r}; choose 'classic' or 'sam2'")


__all__ = ["Prompt", "Prediction", "Segmenter", "box_points_quality", "build_segmenter", "check_image", "image_key"]
