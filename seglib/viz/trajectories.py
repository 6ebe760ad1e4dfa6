"""Figures of notebook 02: F_sim click trajectories, IoU versus clicks per sample group, stop reasons."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seglib.viz.core import click_markers, distinct_colors, legend_outside, line_styles, no_data, show_sample


def trajectory_strip(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    clicks: Sequence,
    ious: Sequence[float],
    panel_size: float = 2.5,
    max_panels: int = 12,
) -> Figure:
    """One panel per step of a click trajectory: mask t with clicks 1…t, titled with IoU t.

    ``masks[t]``/``ious[t]`` are the state after ``clicks[t]`` (t = 0 is after the
    first click). Long trajectories show their first ``max_panels`` steps.
    """
    steps = min(len(masks), max_panels)
    fig, axes = plt.subplots(1, max(steps, 1), figsize=(panel_size * max(steps, 1), panel_size), squeeze=False)
    for t in range(steps):
        ax = axes[0, t]
        iou = ious[t] if t < len(ious) else float("nan")
        show_sample(ax, image, masks[t], title=f"click {t + 1}: IoU {iou:.2f}")
        click_markers(ax, list(clicks)[: t + 1], label=True)
    if steps == 0:
        axes[0, 0].set_axis_off()
    fig.tight_layout()
    return fig


def plot_iou_vs_clicks_by_group(curves: np.ndarray, groups: Sequence[str], title: str = "IoU vs clicks",
                                threshold: float | None = 0.85) -> Figure:
    """Mean IoU after k = 0…K clicks per sample group, with the 25–75 % band.

    ``curves`` is (n_samples, K + 1) IoUs in [0, 1] (column 0 = before any
    click); ``groups[i]`` names sample i's group. Each group gets its own
    colour and marker, however many groups there are.
    """
    curves = np.asarray(curves, float)
    names = sorted(set(groups))
    fig, ax = plt.subplots(figsize=(8, 4))
    ks = np.arange(curves.shape[1]) if curves.ndim == 2 else np.arange(0)
    for name, style in zip(names, line_styles(len(names))):
        c = curves[[g == name for g in groups]]
        ax.plot(ks, c.mean(0), ms=3, label=f"{name} ({len(c)})", **style)
        ax.fill_between(ks, np.percentile(c, 25, 0), np.percentile(c, 75, 0), alpha=0.12, color=style["color"])
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls=":", lw=1)
    if len(ks):
        ax.set_xticks(ks)
    ax.set(xlabel="number of clicks", ylabel="IoU", ylim=(0, 1.02), title=title)
    if not names:
        no_data(ax, "no trajectories")
    legend_outside(ax, title="group (samples)")
    fig.tight_layout()
    return fig


def plot_stop_reasons(stop_counts) -> Figure:
    """Bar chart of trajectory stop reasons per (split, start state).

    ``stop_counts`` is a pandas DataFrame indexed by (split, start) with one
    column per stop reason (counts). Bars are labelled "<split>\\n<start> start".
    """
    reasons = list(stop_counts.columns)
    rows = list(stop_counts.index)
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows) + 3), 3.2))
    width = 0.8 / max(len(reasons), 1)
    x = np.arange(len(rows))
    for j, (reason, colour) in enumerate(zip(reasons, distinct_colors(len(reasons)))):
        ax.bar(x + (j - (len(reasons) - 1) / 2) * width, stop_counts[reason].to_numpy(), width, label=str(reason),
               color=colour)

    def label(row) -> str:
        if isinstance(row, tuple) and len(row) == 2:
            return f"{row[0]}\n{row[1]} start"
        return "\n".join(map(str, row)) if isinstance(row, tuple) else str(row)

    ax.set_xticks(x, [label(r) for r in rows])
    ax.set(xlabel="split and starting state", ylabel="trajectories", title="stop reasons")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not rows:
        no_data(ax, "no trajectories")
    legend_outside(ax, title="stop reason")
    fig.tight_layout()
    return fig

