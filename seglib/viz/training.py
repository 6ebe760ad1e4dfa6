"""Figures of notebook 04: GRPO training curves and greedy predictions before / after RL.

They take what training wrote (``seglib.train.grpo.read_log`` entries) and
prediction records (``seglib.inference.records``); nothing here trains.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from seglib.masks import decode_rle
from seglib.viz.core import distinct_colors, no_data, outline, show_sample


def plot_training(logs: dict[str, list[dict]]) -> Figure:
    """One panel per reward component (mean over the batch), then total reward, completion length, KL
    and the reward's share of the step time; one line per run, in the same colour on every panel."""
    keys: list[str] = []
    for log in logs.values():
        for e in log:
            keys += [k for k in e if k.startswith("rewards/") and k.endswith("/mean") and k not in keys]
    panels = keys + ["reward", "completions/mean_length", "kl", "reward_share"]
    ncols = 4
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), squeeze=False)
    # one colour per run across every panel (a panel's own colour cycle would give each panel's first run blue)
    colours = dict(zip(logs, distinct_colors(len(logs))))
    for ax, key in zip(axes.flat, panels):
        drawn = False
        for name, log in logs.items():
            entries = [e for e in log if "reward" in e]
            if key == "reward_share":
                pts = [(e["step"], e["reward_time_s"] / e["step_time"]) for e in entries
                       if e.get("step_time") and "reward_time_s" in e]
            else:
                pts = [(e["step"], e[key]) for e in entries if key in e]
            if pts:
                ax.plot(*zip(*pts), marker=".", color=colours[name], label=name)
                drawn = True
        title = key.removeprefix("rewards/").removesuffix("/mean")
        ax.set_title({"reward": "total reward (weighted)", "kl": "KL to reference",
                      "completions/mean_length": "completion length (tokens)",
                      "reward_share": "reward time / step time"}.get(key, title), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel({"completions/mean_length": "tokens", "kl": "KL", "reward_share": "share"}.get(key, "reward"),
                      fontsize=8)
        ax.tick_params(labelsize=7)
        if not drawn:
            no_data(ax)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    handles, labels = list(legend.values()), list(legend)
    if handles:
        rows = (len(labels) + 3) // 4
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout(rect=(0, 0, 1, 1 - (0.1 + 0.22 * rows) / (2.6 * nrows)))  # room for the legend above
    else:
        fig.tight_layout()
    return fig


def before_after_gallery(records_by_name: dict[str, list[dict]], samples: Sequence[Any], n: int = 4) -> Figure:
    """Rows = samples (the ``n`` with the largest IoU change between the first and last checkpoint, one per
    image while images last), columns = ground truth then each checkpoint's greedy mask with the ground truth
    outlined, titled with its IoU."""
    from seglib.evaluation.scoring import score_record  # L5, imported on use (figures sit above evaluation)

    names = [k for k, v in records_by_name.items() if v]
    by_id = {s.sample_id: s for s in samples}
    per = {name: {r["sample_id"]: r for r in records_by_name[name]} for name in names}
    common = [sid for sid in per[names[0]] if all(sid in per[nm] for nm in names) and sid in by_id] if names else []
    iou = {nm: {sid: score_record(per[nm][sid]).iou for sid in common} for nm in names}
    common.sort(key=lambda sid: -abs(iou[names[-1]][sid] - iou[names[0]][sid]))
    picked, seen = [], set()  # one sample per image while images last, so the rows show different pictures
    for sid in common:
        image = getattr(by_id[sid], "image_path", sid)
        if len(picked) < n and image not in seen:
            picked.append(sid)
            seen.add(image)
    picked += [sid for sid in common if sid not in picked][: n - len(picked)]
    fig, axes = plt.subplots(max(len(picked), 1), len(names) + 1, figsize=(2.6 * (len(names) + 1),
                                                                            2.6 * max(len(picked), 1)), squeeze=False)
    for row, sid in zip(axes, picked):
        s = by_id[sid]
        show_sample(row[0], s.image(), s.target_masks(), title=f"GT [{s.kind}] {s.query}"[:60])
        for ax, nm in zip(row[1:], names):
            r = per[nm][sid]
            mask = decode_rle(r["mask_rle"]) if r.get("mask_rle") else None
            show_sample(ax, s.image(), [mask] if mask is not None else None,
                        title=f"{nm}: IoU {100 * iou[nm][sid]:.0f}")
            outline(ax, s.union_mask())
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle("Filled: prediction; white over black: ground truth", fontsize=9)
    fig.tight_layout()
    return fig
