"""Figures of notebook 03: SFT loss and val gIoU curves, and predictions before / after SFT."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from seglib.viz.core import distinct_colors, legend_outside, no_data, outline, short_text, show_sample


def plot_sft_curves(results: dict[str, dict]) -> Figure:
    """SFT loss (train solid, val dashed) and val gIoU during training, one colour per paradigm.

    ``results`` maps paradigm → ``sft_paradigm`` result (its ``log_history``
    holds ``loss``, ``eval_loss`` and ``val_giou`` entries by ``step``). Every
    point has a marker, so a one-point curve shows; a panel with no points says so.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    colours = dict(zip(results, distinct_colors(len(results))))
    drawn = [False, False]
    for paradigm, res in results.items():
        h = res.get("log_history") or []
        c = colours[paradigm]
        train_pts = [(r["step"], r["loss"]) for r in h if "loss" in r]
        eval_pts = [(r["step"], r["eval_loss"]) for r in h if "eval_loss" in r]
        val_pts = [(r["step"], r["val_giou"]) for r in h if "val_giou" in r]
        if train_pts:
            axes[0].plot(*zip(*train_pts), color=c, marker=".", label=f"{paradigm} train")
            drawn[0] = True
        if eval_pts:
            axes[0].plot(*zip(*eval_pts), color=c, marker="s", ms=4, ls="--", label=f"{paradigm} val")
            drawn[0] = True
        if val_pts:
            axes[1].plot(*zip(*val_pts), color=c, marker="o", label=paradigm)
            drawn[1] = True
    axes[0].set(title="SFT loss", xlabel="step", ylabel="loss")
    axes[1].set(title="val gIoU during SFT", xlabel="step", ylabel="gIoU", ylim=(0, 1))
    if not drawn[0]:
        no_data(axes[0], "no loss logged")
    if not drawn[1]:
        no_data(axes[1], "no data: val gIoU is scored during SFT\nonly when sft_eval_during > 0")
    for ax, has in zip(axes, drawn):
        if has:
            legend_outside(ax)
    fig.tight_layout()
    return fig


def spread_samples(samples: Sequence, n: int, seed: int = 0) -> list:
    """``n`` samples drawn at random (seeded), one per image while images last, query kinds taken in turn
    (empty queries last).

    Samples need ``image_path`` and ``kind``. Fewer than ``n`` distinct images
    are topped up with other queries on the images already drawn.
    """
    rng = np.random.default_rng(seed)
    order = [samples[i] for i in rng.permutation(len(samples))]
    by_kind: dict[str, list] = {}
    for s in order:
        by_kind.setdefault(s.kind, []).append(s)
    interleaved = []
    queues = [list(v) for _, v in sorted(by_kind.items(), key=lambda kv: (kv[0] == "empty", kv[0]))]  # empty last
    while any(queues):
        for q in queues:
            if q:
                interleaved.append(q.pop(0))
    picked, images = [], set()
    for s in interleaved:
        if len(picked) < n and s.image_path not in images:
            picked.append(s)
            images.add(s.image_path)
    for s in interleaved:
        if len(picked) < n and s not in picked:
            picked.append(s)
    return picked


def before_after_figure(samples: Sequence, before: dict[str, Sequence[dict]], after: dict[str, Sequence[dict]],
                        panel_size: float = 2.6) -> Figure:
    """Rows: each paradigm before then after; columns: ``samples``. Each panel: the predicted mask (filled),
    the predicted boxes, the ground truth outlined (white over black), titled with the query and the IoU.

    ``before``/``after`` map paradigm → rows of ``seglib.train.sft.evaluate_policy``
    (``sample_id``, ``iou``, ``mask``, optional ``boxes``), matched to samples by id.
    """
    rows = [(p, stage, {r["sample_id"]: r for r in table[p]}) for p in after for stage, table in
            (("before", before), ("after", after)) if p in table]
    ncols = max(len(samples), 1)
    fig, axes = plt.subplots(max(len(rows), 1), ncols, figsize=(panel_size * ncols, (panel_size + 0.4) * max(len(rows), 1)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax_row, (paradigm, stage, by_id) in zip(axes, rows):
        for ax, s in zip(ax_row, samples):
            r = by_id.get(s.sample_id)
            image = s.image()
            if r is None:
                ax.imshow(image, interpolation="nearest")
                no_data(ax, "not scored")
                ax.set_title(f"{paradigm} {stage}\n{short_text(s.query, 34)}", fontsize=7)
                continue
            mask = r.get("mask")
            show_sample(ax, image, [mask] if mask is not None else None, boxes=r.get("boxes") or None)
            gt = s.union_mask() if hasattr(s, "union_mask") else None
            if gt is not None:
                outline(ax, gt)
            ax.set_title(f"{paradigm} {stage}: IoU {r['iou']:.2f}\n[{s.kind}] {short_text(s.query, 34)}", fontsize=7)
    fig.suptitle("Before / after SFT (filled: prediction; white over black: ground truth)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
