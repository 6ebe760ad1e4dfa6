"""SimpleSeg's rewards for polygon answers: mask IoU, centroid distance, format (METHODS.md, "Rewards")."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from seglib.masks import mask_iou
from seglib.paradigms.common import target_masks
from seglib.paradigms.polygon import format as fmt
from seglib.paradigms.text import finite_scores, known_options


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
    polys = fmt.parse(text, reject_self_intersecting=reject_self_intersecting)
    if polys is None:
        return out
    out["format"] = 1.0
    pred = fmt.decode(polys, h, w, outline=outline)
    gt = np.zeros((h, w), bool)
    for g in gt_masks:
        gt |= np.asarray(g, bool)
    out["iou"] = float(mask_iou(pred, gt))
    cp, cg = _centroid(pred), _centroid(gt)
    if cp is None and cg is None:
        out["centroid"] = 1.0
    elif cp is not None and cg is not None:
        out["centroid"] = 1.0 - min(1.0, float(np.linalg.norm(cp - cg)) / math.hypot(h, w))
    return finite_scores(out)



def score_row(texts: Sequence[str], row: dict, options: dict) -> list[dict[str, float]]:
    """``simpleseg_score`` of each text against a GRPO row (``target_rles``, ``height``, ``width``)."""
    gts = target_masks(row)
    size = (int(row["height"]), int(row["width"]))
    kw = known_options(simpleseg_score, options)
    return [simpleseg_score(t, gts, size, **kw) for t in texts]
