"""Click-paradigm evaluation extras: true IoU after each click, NoC@85/90, IoU versus clicks.

IoUs follow ``seglib.metrics.IoUMeter`` (the one IoU rule): no mask scores 0,
both masks empty score 1.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _iou(pred: np.ndarray | None, gt: np.ndarray) -> float:
    from seglib.metrics import IoUMeter

    return IoUMeter().update(pred, gt)


def step_ious(rec: dict, t_max: int | None = None) -> list[float]:
    """True IoU after each click of a clicks prediction record, the last carried forward to ``t_max``."""
    from seglib.masks import decode_rle

    gt = decode_rle(rec["gt_rle"])
    ious: list[float] = []
    for step in rec.get("steps") or []:
        m = decode_rle(step["mask_rle"]) if step.get("mask_rle") is not None else None
        ious.append(_iou(m, gt) if m is not None else (ious[-1] if ious else 0.0))
    if t_max is not None:
        if not ious:
            ious = [_iou(None, gt)]
        ious = (ious + [ious[-1]] * t_max)[:t_max]
    return ious


def clicks_metrics(records: Sequence[dict], splits: Sequence[str]) -> dict:
    """Per split: mean NoC@85 and NoC@90 (capped at 20), n, and the mean IoU after each click."""
    from seglib.metrics import noc

    t_max = max(len(r.get("steps") or []) for r in records) or 1
    out = {}
    for split in splits:
        rs = [r for r in records if r["split"] == split]
        curves = [step_ious(r, t_max) for r in rs]
        out[split] = {
            "noc85": float(np.mean([noc(c, 0.85, max_clicks=20) for c in curves])),
            "noc90": float(np.mean([noc(c, 0.90, max_clicks=20) for c in curves])),
            "n": len(rs),
            "iou_vs_clicks": [float(v) for v in np.mean(np.asarray(curves, float), axis=0)],
        }
    return out
