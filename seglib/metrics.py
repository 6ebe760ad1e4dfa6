"""Evaluation metrics: gIoU / cIoU, Acc@0.5, NoC@k (docs/METHODS.md, "Evaluation").

- Per-sample IoU = I / U. An unparsable answer (``pred=None``) counts as
  I = 0, U = |GT|, and its per-sample IoU is 0 even for an empty query:
  StAR's "both empty" credit is for a well-formed empty answer, not for garbage.
- Both masks empty counts as IoU 1 (StAR's rule); it adds 0 to ΣI and ΣU.
- gIoU = mean of the per-sample IoUs; cIoU = ΣI / ΣU (LISA / ReasonSeg).
- Acc@0.5 (REC) = share of predicted boxes with inclusive-box IoU ≥ 0.5.
- NoC@thr = clicks needed to reach IoU ≥ thr, capped at ``max_clicks`` (20).

All values are fractions in [0, 1] (multiply by 100 for the papers' tables).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seglib.masks import box_iou


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
        else:
            pred = np.asarray(pred, dtype=bool)
            if pred.shape != gt.shape:
                raise ValueError(f"IoUMeter.update: pred shape {pred.shape} differs from gt shape {gt.shape}")
            inter = int(np.count_nonzero(pred & gt))
            union = int(np.count_nonzero(pred | gt))
        if pred is None:
            iou = 0.0
        else:
            iou = 1.0 if union == 0 else inter / union
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
        total_union = sum(self.unions)
        return 1.0 if total_union == 0 else sum(self.intersections) / total_union

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


def mean_noc(trajectories: Sequence[Sequence[float]], thr: float, max_clicks: int = 20) -> float:
    """Mean NoC@thr over several click trajectories (each as for ``noc``); 0.0 for none."""
    if not trajectories:
        return 0.0
    return float(np.mean([noc(t, thr, max_clicks) for t in trajectories]))
