"""Figures of notebooks 06 and 07: vote and search galleries, and one function per evaluation figure.

The 07 figures take parts of ``metrics.json`` (``seglib.evaluation``) that the
caller picked (``seglib.evaluation.report.write_figures``); the 06 galleries
take prediction records. IoUs arrive as fractions and are drawn as points (× 100).
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from seglib.masks import decode_rle, overlay
from seglib.viz.core import distinct_colors, legend_outside, line_styles, outline

CLUSTER_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
                   (240, 50, 230), (210, 245, 60))

#: (label, x values, IoU fractions) of one curve.
Curve = tuple[str, Sequence[float], Sequence[float]]


# --------------------------------------------------------------------------- notebook 07


def plot_giou_bars(entries: dict, names: Sequence[str]) -> Figure:
    """gIoU and cIoU (points) of each prediction file in ``names`` order, one bar colour per split."""
    splits = list(dict.fromkeys(s for n in names for s in entries[n]["splits"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 0.9 * len(names) + 3), 3.8), squeeze=False)
    width = 0.8 / max(len(splits), 1)
    for ax, metric in zip(axes[0], ("giou", "ciou")):
        for j, (split, colour) in enumerate(zip(splits, distinct_colors(len(splits)))):
            vals = [100 * (entries[n]["splits"].get(split, {}).get(metric) or 0) for n in names]
            ax.bar(np.arange(len(names)) + j * width, vals, width, label=split, color=colour)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("prediction file (checkpoint-strategy)")
        ax.set_ylabel(f"{'gIoU' if metric == 'giou' else 'cIoU'} (points)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    fig.suptitle("Paradigm × stage × strategy")
    return fig


def plot_iou_vs_n(vote_curves: dict[str, dict]) -> Figure:
    """StAR's voting curves ``{file: {split: {"n", "giou", "ciou"}}}``: one colour per file and split,
    the metric as the line style (explained in a second, small legend)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    runs = [(n, split, c) for n, curves in vote_curves.items() for split, c in curves.items()]
    run_handles = []
    for (n, split, c), colour in zip(runs, distinct_colors(len(runs))):
        ax.plot(c["n"], [100 * v for v in c["giou"]], "o-", color=colour)
        ax.plot(c["n"], [100 * v for v in c["ciou"]], "s--", color=colour)
        run_handles.append(Line2D([], [], color=colour, marker="o", label=f"{n} ({split})"))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("samples N")
    ax.set_ylabel("IoU (points)")
    ax.set_title("Majority voting: IoU vs N (StAR)")
    metric_legend = ax.legend(handles=[Line2D([], [], color="black", marker="o", ls="-", label="gIoU"),
                                       Line2D([], [], color="black", marker="s", ls="--", label="cIoU")],
                              loc="lower left", bbox_to_anchor=(1.02, 0.0), borderaxespad=0.0, fontsize=7,
                              title="metric")
    ax.add_artist(metric_legend)
    ax.legend(handles=run_handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7,
              ncol=(len(run_handles) + 11) // 12, title="file (split)")
    return fig


def _curves_figure(curves: Sequence[Curve], xlabel: str, ylabel: str, title: str,
                   dashed_from: int | None = None) -> tuple[Figure, Any]:
    """One line per curve (distinct styles; curves from ``dashed_from`` on dashed), integer x ticks, legend outside."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, ((label, xs, ys), style) in enumerate(zip(curves, line_styles(len(curves)))):
        if dashed_from is not None and i >= dashed_from:
            style = {**style, "linestyle": "--"}
        ax.plot(xs, [100 * v for v in ys], label=label, **style)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend_outside(ax)
    return fig, ax


def plot_iou_vs_t(with_prm: Sequence[Curve], without_prm: Sequence[Curve] = ()) -> Figure:
    """SegAgent's gIoU versus the step budget T: search curves (best PRM-scored step) solid, plain
    last-step curves dashed."""
    fig, _ = _curves_figure(list(with_prm) + list(without_prm), "steps T", "gIoU (points)",
                            "PRM tree search: IoU vs T and K (SegAgent)", dashed_from=len(with_prm))
    return fig


def plot_step_curves(curves: Sequence[Curve]) -> Figure:
    """Mean IoU after each click (a paradigm's ``iou_vs_clicks``), with the NoC thresholds 85 and 90 dotted."""
    fig, ax = _curves_figure(curves, "number of clicks", "mIoU (points)", "IoU vs clicks")
    for thr in (85, 90):
        ax.axhline(thr, color="grey", lw=0.6, ls=":")
    return fig


def plot_calibration(pairs: dict[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """The PRM's self-predicted IoU against the true IoU, ``{file: (predicted, true)}``, one colour per file."""
    fig, ax = plt.subplots(figsize=(4, 4))
    for (n, (pred, true)), colour in zip(pairs.items(), distinct_colors(len(pairs))):
        if pred:
            ax.scatter(np.array(true) * 100, np.array(pred) * 100, s=8, alpha=0.5, label=n, color=colour)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8)
    ax.set_xlabel("true IoU (points)")
    ax.set_ylabel("self-predicted IoU (points)")
    ax.set_title("PRM calibration")
    legend_outside(ax)
    return fig


def plot_stage_kinds(bars: dict[str, tuple[float | None, float | None]], split: str,
                     stages: tuple[str, str] = ("SFT", "RL")) -> Figure:
    """gIoU (points) of two stages side by side, one pair of bars per label (e.g. "boxpoints / referring"),
    from metrics.json's ``splits[split]["kinds"]``; each bar carries its value, a missing side reads "n/a"."""
    labels = list(bars)
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(labels) + 2), 3.6))
    width = 0.4
    for j, (stage, colour) in enumerate(zip(stages, distinct_colors(2))):
        for i, label in enumerate(labels):
            value = bars[label][j]
            x = i + (j - 0.5) * width
            if value is not None:
                ax.bar(x, 100 * value, width, color=colour)
            ax.text(x, 1 if value is None else 100 * value + 1, "n/a" if value is None else f"{100 * value:.1f}",
                    ha="center", va="bottom", fontsize=6, color="grey" if value is None else "black", rotation=90)
    ax.legend(handles=[Line2D([], [], color=c, lw=6, label=s) for s, c in zip(stages, distinct_colors(2))],
              fontsize=7)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("gIoU (points)")
    ax.set_title(f"{stages[0]} vs {stages[1]} per query kind ({split})")
    return fig


# --------------------------------------------------------------------------- notebook 06


def hardest(records: Sequence[dict], n: int) -> list[dict]:
    """The ``n`` records with the lowest IoU (ties by sample id)."""
    from seglib.evaluation.scoring import score_record  # L5, imported on use (figures sit above evaluation)

    scored = sorted(records, key=lambda r: (score_record(r).iou, r["sample_id"]))
    return scored[:n]


def _draw_clusters(img: np.ndarray, clusters: Sequence[dict]) -> list[str]:
    """Outline each vote cluster's mask on ``img`` in place (chosen ones also filled); its votes, * = chosen."""
    import cv2

    labels = []
    for ci, c in enumerate(clusters):
        colour = CLUSTER_COLOURS[ci % len(CLUSTER_COLOURS)]
        m = decode_rle(c["rle"])
        if c["chosen"]:
            img[m] = (0.5 * img[m] + 0.5 * np.array(colour)).astype(np.uint8)
        cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, cs, -1, colour, 1)
        labels.append(f"{c['votes']}{'*' if c['chosen'] else ''}")
    return labels


def plot_vote_gallery(records: Sequence[dict], images: dict[str, np.ndarray], n: int = 6,
                      queries: dict[str, str] | None = None) -> Figure:
    """Hard cases of a vote file: each cluster's mask outlined in its colour, with votes; chosen ones filled.

    ``images`` maps sample id → uint8 RGB image (records without one are
    skipped); ``queries`` maps sample id → the query text shown over each
    panel (the sample id where missing). The ground truth is a white line over
    a black one, so it shows on white objects too. The title names the
    checkpoint and strategy. Returns the figure.
    """
    from seglib.evaluation.scoring import score_record  # L5, imported on use (figures sit above evaluation)

    queries = queries or {}
    picked = hardest([r for r in records if r.get("vote") and r["sample_id"] in images], n)
    cols = max(1, len(picked))
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.9), squeeze=False)
    for ax in axes[0]:
        ax.set_axis_off()
    for ax, r in zip(axes[0], picked):
        img = images[r["sample_id"]].copy()
        labels = _draw_clusters(img, r["vote"]["clusters"])
        ax.imshow(img, interpolation="nearest")
        outline(ax, decode_rle(r["gt_rle"]))  # ground truth on top
        iou = score_record(r).iou
        empty = ", empty majority" if r["vote"]["empty"] else ""
        query = queries.get(r["sample_id"], r["sample_id"])
        query = textwrap.shorten(" ".join(str(query).split()), 70, placeholder="…")
        ax.set_title("\n".join(textwrap.wrap(f"“{query}”", 38)[:2]) + f"\n[{r['kind']}] IoU {100 * iou:.0f}; "
                     f"votes/cluster {' '.join(labels) or '—'} of {r['vote']['n']}{empty}", fontsize=7)
    name = f"{records[0]['checkpoint']} ({records[0]['strategy']})" if records else ""
    fig.suptitle(f"Majority voting on hard cases, {name}\n"
                 "white over black: ground truth; * chosen cluster, filled", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    return fig


def _box_panel(ax, colour: str = "blue") -> None:
    """Frame an image panel (the chosen candidate) with a coloured border, no ticks."""
    for side in ax.spines.values():
        side.set_visible(True)
        side.set_edgecolor(colour)
        side.set_linewidth(2)
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])


def plot_search_strip(record: dict, image: np.ndarray) -> Figure:
    """One PRM search path: a column per step, a row per candidate; predicted / true IoU; chosen boxed."""
    steps = record.get("steps") or []
    k = max((len(s.get("candidates") or [s]) for s in steps), default=1)
    fig, axes = plt.subplots(k, max(len(steps), 1), figsize=(2.2 * max(len(steps), 1), 2.4 * k), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for j, s in enumerate(steps):
        for i, c in enumerate(s.get("candidates") or [s]):
            ax = axes[i, j]
            m = decode_rle(c["mask_rle"]) if c.get("mask_rle") else np.zeros(image.shape[:2], bool)
            ax.imshow(overlay(image, m))
            if c.get("click"):
                x, y, pos = c["click"]
                ax.plot(x, y, "o", color="lime" if pos else "red", ms=5, mec="black")
            pi = "—" if c.get("pred_iou") is None else f"{100 * c['pred_iou']:.0f}"
            ti = "—" if c.get("iou") is None else f"{100 * c['iou']:.0f}"
            chosen = i == s.get("chosen", 0)
            best = j + 1 == record.get("best_step")
            ax.set_title(f"t{j + 1} c{i}: pred {pi} / true {ti}{' (best)' if chosen and best else ''}", fontsize=7,
                         color="blue" if chosen else "black")
            if chosen:
                _box_panel(ax)
    fig.suptitle(f"PRM search, {record['checkpoint']} {record['strategy']} on {record['sample_id']}: "
                 f"stopped by {record.get('stopped_by')}, best step {record.get('best_step')}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
