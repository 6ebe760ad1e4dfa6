"""Figures of notebook 05: StaR+ rounds (actions replaced, IoU versus clicks), refined rollouts.

They take what ``seglib.train.star`` logged (round statistics, rollouts with
their steps); nothing here rolls out a policy.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from seglib.masks import decode_rle
from seglib.viz.core import click_markers, distinct_colors, legend_outside, line_styles, no_data, outline, show_sample


def plot_rounds(stats: Sequence[dict]) -> Figure:
    """Share of actions replaced per round, and the IoU-versus-clicks curves of the plain and refined rollouts."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    rounds = [s["round"] for s in stats]
    axes[0].bar(rounds, [100 * s["share_replaced"] for s in stats], label="replaced by F_sim")
    axes[0].bar(rounds, [100 * s["share_unparsable"] for s in stats], label="of which unparsable", alpha=0.7)
    axes[0].set(xlabel="round", ylabel="% of actions", title="actions replaced", xticks=rounds)
    axes[0].legend(fontsize=8)
    for s, colour in zip(stats, distinct_colors(len(stats))):  # one colour per round; solid policy, dashed refined
        ks = range(len(s["iou_curve_policy"]))
        axes[1].plot(ks, s["iou_curve_policy"], marker="o", color=colour,
                     label=f"round {s['round']}: policy S_{s['round'] - 1}")
        axes[1].plot(ks, s["iou_curve_refined"], marker="s", ls="--", color=colour, label=f"round {s['round']}: refined")
    axes[1].set(xlabel="number of clicks", ylabel="mean IoU", ylim=(0, 1.02),
                title="rollouts on train: before / after refining")
    if stats:
        legend_outside(axes[1], fontsize=8)
    else:
        no_data(axes[0])
        no_data(axes[1])
    fig.tight_layout()
    return fig


def plot_iou_vs_clicks(curves: dict[str, list[float]], title: str = "IoU vs clicks") -> Figure:
    """Mean IoU (0–1) after k = 0, 1, … clicks, one line style per policy."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (name, c), style in zip(curves.items(), line_styles(len(curves))):
        ax.plot(range(len(c)), c, label=name, **style)
    ax.set(xlabel="number of clicks", ylabel="mean IoU", ylim=(0, 1.02), title=title)
    if curves:
        legend_outside(ax, fontsize=8)
    else:
        no_data(ax)
    fig.tight_layout()
    return fig


def plot_refined_example(r: Any, sample: Any, max_panels: int = 6) -> Figure:
    """One panel per step: the state, the policy's click (hollow) and the click taken (filled); a replaced
    step is titled "replaced" with the IoU the policy's click would have reached.

    ``r`` is a ``seglib.train.star.StarRollout`` (its ``steps`` carry ``mask_before_rle``, ``policy_click``,
    ``click``, ``iou_before``, ``iou_policy``, ``iou_after``, ``replaced``); ``sample`` a ``seglib.data.Sample``.
    """
    steps = r.steps[:max_panels]
    fig, axes = plt.subplots(1, max(len(steps), 1), figsize=(2.7 * max(len(steps), 1), 3.0), squeeze=False)
    image = sample.image()
    for ax, st in zip(axes[0], steps):
        show_sample(ax, image, decode_rle(st.mask_before_rle))
        outline(ax, sample.union_mask())
        if st.policy_click is not None:
            click_markers(ax, [tuple(st.policy_click)], hollow=True, size=90)
        if st.click is not None:
            click_markers(ax, [tuple(st.click)])
        pol = "unparsable" if st.iou_policy is None else f"{st.iou_policy:.2f}"
        verdict = "replaced" if st.replaced else "kept"
        ax.set_title(f"step {st.step}: {verdict}\nIoU {st.iou_before:.2f} → policy {pol} → {st.iou_after:.2f}",
                     fontsize=7)
    if not steps:
        axes[0, 0].set_axis_off()
    fig.suptitle(f"{sample.query}: hollow = policy click, filled = click taken, white over black = ground truth",
                 fontsize=8)
    fig.tight_layout()
    return fig
