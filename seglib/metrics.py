"""Evaluation metrics: gIoU / cIoU, Acc@0.5, NoC@k (docs/METHODS.md, "Evaluation").

- Per-sample IoU = I / U. An unparsable answer (``pred=None``) counts as
  I = 0, U = |GT|, and its per-sample IoU is 0 even for an empty query:
  StAR's "both empty" credit is for a well-formed empty answer, not for garbage.
- Both masks empty counts as IoU 1 (StAR's rule); it adds 0 to ΣI and ΣU.
- gIoU = mean of the per-sample IoUs; cIoU = ΣI / ΣU (LISA / ReasonSeg).
- Acc@0.5 (REC) = share of predicted boxes with inclusive-box IoU ≥ 0.5.
- NoC@thr = clicks needed to reach IoU ≥ thr, capped at ``max_clicks`` (20).
- ``hungarian_sum``: the maximum-gain matching of predicted to ground-truth objects
  (VisionReasoner / StAR multi-object rewards).
- ``calibration``: how well a PRM's predicted IoUs match the true ones (SegAgent's PRM search).

All values are fractions in [0, 1] (multiply by 100 for the papers' tables).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seglib.masks import box_iou, iou_from_counts, overlap_counts


@dataclass
class IoUMeter:
    """Accumulates per-sample intersections and unions.

    ``update(pred, gt)`` takes a bool (H, W) prediction, or ``None`` for an
    answer that could not be parsed, and the bool ground-truth mask (the union
    of the targets; all-False for an empty query).
    """

    intersections: list[int] = field(default_factory=list)
    unions: list[int] = field(default_factory=list)
    per_sample: list[float] = field(default_factory=list)

    def update(self, pred: np.ndarray | None, gt: np.ndarray) -> float:
        """Add one sample; returns its IoU."""
        gt = np.asarray(gt, dtype=bool)
        if gt.ndim != 2:
            raise ValueError(f"IoUMeter.update: gt must be (H, W), got shape {gt.shape}")
        if pred is None:
            inter, union = 0, int(np.count_nonzero(gt))
            iou = 0.0
        else:
            pred = np.asarray(pred, dtype=bool)
            if pred.shape != gt.shape:
                raise ValueError(f"IoUMeter.update: pred shape {pred.shape} differs from gt shape {gt.shape}")
            inter, union = overlap_counts(pred, gt)
            iou = iou_from_counts(inter, union)
        self.intersections.append(inter)
        self.unions.append(union)
        self.per_sample.append(iou)
        return iou

    @property
    def count(self) -> int:
        return len(self.per_sample)

    @property
    def giou(self) -> float:
        """Mean per-sample IoU; 0.0 before any update."""
        return float(np.mean(self.per_sample)) if self.per_sample else 0.0

    @property
    def ciou(self) -> float:
        """ΣI / ΣU; 1.0 if every sample so far had both masks empty, 0.0 before any update."""
        if not self.per_sample:
            return 0.0
        return iou_from_counts(sum(self.intersections), sum(self.unions))

    def summary(self) -> dict[str, float]:
        return {"giou": self.giou, "ciou": self.ciou, "count": self.count}


def acc_at_05(
    pred_boxes: Sequence[Sequence[float] | None], gt_boxes: Sequence[Sequence[float]]
) -> float:
    """Share of predictions whose inclusive-box IoU with the ground truth is ≥ 0.5.

    A ``None`` prediction (unparsable) counts as a miss. Empty input gives 0.0.
    """
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"acc_at_05: {len(pred_boxes)} predictions but {len(gt_boxes)} ground-truth boxes")
    if not gt_boxes:
        return 0.0
    hits = sum(1 for p, g in zip(pred_boxes, gt_boxes) if p is not None and box_iou(p, g) >= 0.5)
    return hits / len(gt_boxes)


def noc(ious_per_click: Sequence[float], thr: float, max_clicks: int = 20) -> int:
    """Number of clicks needed to reach IoU ≥ ``thr`` (NoC@thr).

    ``ious_per_click[i]`` is the IoU after i + 1 clicks, so reaching ``thr`` at
    index i costs i + 1 clicks. Never reaching it (within the list or within
    ``max_clicks``) gives ``max_clicks``. Entries past ``max_clicks`` are ignored.
    """
    for i, iou in enumerate(list(ious_per_click)[:max_clicks]):
        if iou >= thr:
            return i + 1
    return max_clicks


def hungarian_sum(gain: np.ndarray) -> tuple[float, int]:
    """Maximum-gain one-to-one assignment of an (M, N) gain matrix: (sum of matched gains, number of matches)."""
    from scipy.optimize import linear_sum_assignment

    if gain.size == 0:
        return 0.0, 0
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return float(gain[rows, cols].sum()), len(rows)


def calibration(pred_iou: Sequence[float], true_iou: Sequence[float]) -> dict:
    """PRM calibration: ``{"mae", "pearson", "n"}`` between predicted and true IoU (fractions).

    ``pearson`` is None with fewer than 2 pairs or a constant side; ``mae`` is
    None with no pairs.
    """
    p = np.asarray(pred_iou, float)
    t = np.asarray(true_iou, float)
    if p.shape != t.shape:
        raise ValueError(f"calibration: {p.shape} predicted vs {t.shape} true IoUs")
    n = int(p.size)
    if n == 0:
        return {"mae": None, "pearson": None, "n": 0}
    mae = float(np.mean(np.abs(p - t)))
    pearson = None
    if n >= 2 and p.std() > 0 and t.std() > 0:
        pearson = float(np.corrcoef(p, t)[0, 1])
    return {"mae": mae, "pearson": pearson, "n": n}
