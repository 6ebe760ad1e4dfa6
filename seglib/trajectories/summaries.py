"""Summaries of F_sim trajectories for notebook 02: IoU-vs-clicks curves and NoC per shape group."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seglib.data.trajectories import Trajectory


def iou_curve(traj: Trajectory, max_clicks: int) -> list[float]:
    """IoU after 1..max_clicks clicks, padded with the last value (a stopped trajectory keeps its mask)."""
    curve = list(traj.ious[1:]) or [traj.ious[0]]
    return (curve + [curve[-1]] * max_clicks)[:max_clicks]


def sample_group(sample: Any) -> str:
    """The shape class a sample is reported under: its target's shape, "multi" for several targets."""
    shapes = (getattr(sample, "meta", None) or {}).get("target_shapes") or []
    if len(shapes) > 1:
        return "multi"
    if shapes and shapes[0]:
        return str(shapes[0])
    return str(getattr(sample, "kind", "other"))


def iou_curves(trajs: Sequence[Trajectory], max_clicks: int) -> np.ndarray:
    """(n, max_clicks + 1): IoU after 0..max_clicks clicks, padded with each trajectory's last value."""
    return np.array([[t.ious[0]] + iou_curve(t, max_clicks) for t in trajs], dtype=float).reshape(-1, max_clicks + 1)


def noc_summary(
    trajs: Sequence[Trajectory],
    groups: dict[str, str] | None = None,
    thresholds: Sequence[float] = (0.85, 0.90),
    max_clicks: int = 20,
) -> list[dict]:
    """Mean NoC@thr (``seglib.metrics.noc``, capped at ``max_clicks``) per group and over all.

    Only trajectories from an empty start count (NoC is defined from no clicks).
    ``groups``: sample_id → group name (e.g. ``sample_group``); rows are sorted by group, "all" last.
    """
    from seglib.metrics import noc

    trajs = [t for t in trajs if t.start == "empty"]
    by_group: dict[str, list[Trajectory]] = {}
    for t in trajs:
        by_group.setdefault((groups or {}).get(t.sample_id, "all"), []).append(t)
    if groups:
        by_group["all"] = list(trajs)
    rows = []
    for name in sorted(by_group, key=lambda g: (g == "all", g)):
        ts = by_group[name]
        row: dict[str, Any] = {"group": name, "n": len(ts)}
        for thr in thresholds:
            row[f"NoC@{round(thr * 100)}"] = float(np.mean([noc(t.ious[1:], thr, max_clicks) for t in ts]))
        row["mean steps"] = float(np.mean([t.n_steps for t in ts]))
        row["final IoU"] = float(np.mean([t.final_iou for t in ts]))
        rows.append(row)
    return rows
