"""Figure helpers the notebooks call: overlays with boxes, points, polygons and clicks.

All drawing is in image pixels, (x, y), with pixel (x, y) centred on (x, y)
(matplotlib's ``imshow`` convention), so an inclusive box [x0, x1] spans
x0 − 0.5 … x1 + 0.5. Nothing here shows a window or needs a display: figures
are returned, and ``save_figure`` writes them as PNG under ``<run_dir>/figures/``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon as PolygonPatch
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from seglib.masks import overlay

# Colour per object / cluster (RGB 0–255); the first is SegAgent's green.
PALETTE = [
    (0, 255, 0),
    (30, 144, 255),
    (255, 165, 0),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 0),
    (160, 82, 45),
    (147, 112, 219),
]
POSITIVE = "#00c000"
NEGATIVE = "#e00000"


def _rgb01(color) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in color)


def _as_list(masks) -> list[np.ndarray]:
    if masks is None:
        return []
    if isinstance(masks, np.ndarray) and masks.ndim == 2:
        return [masks]
    return list(masks)


def _click_fields(click) -> tuple[float, float, bool]:
    """(x, y, positive) from a Click-like object, a dict or a (x, y, positive) tuple."""
    if hasattr(click, "x"):
        return float(click.x), float(click.y), bool(click.positive)
    if isinstance(click, dict):
        return float(click["x"]), float(click["y"]), bool(click["positive"])
    x, y, positive = click
    return float(x), float(y), bool(positive)


def click_markers(ax, clicks, hollow: bool = False, size: float = 60.0, label: bool = False) -> None:
    """Draw clicks: green for positive, red for negative; ``hollow`` for suggestions.

    ``clicks`` are ``seglib.clicker.Click`` objects, dicts with x/y/positive, or
    (x, y, positive) tuples. ``label`` numbers them 1, 2, … in order.
    """
    for i, click in enumerate(clicks or []):
        x, y, positive = _click_fields(click)
        colour = POSITIVE if positive else NEGATIVE
        ax.scatter(
            [x],
            [y],
            s=size,
            marker="o",
            facecolors="none" if hollow else colour,
            edgecolors=colour if hollow else "white",
            linewidths=1.8 if hollow else 1.0,
            zorder=5,
        )
        if label:
            ax.annotate(str(i + 1), (x, y), xytext=(4, 4), textcoords="offset points", color="white", fontsize=7)


def show_sample(
    ax,
    image: np.ndarray,
    masks=None,
    boxes: Sequence[Sequence[float]] | None = None,
    points: Sequence[Sequence[float]] | None = None,
    polygons: Sequence[np.ndarray] | None = None,
    title: str | None = None,
    alpha: float = 0.45,
    colors: Sequence[tuple[int, int, int]] | None = None,
) -> None:
    """Draw an image with masks (filled, one colour each), inclusive boxes, (x, y) points and polygons.

    ``masks`` is one bool (H, W) mask or a list of them; ``boxes``/``points``/
    ``polygons`` take object i's colour when they line up with the masks.
    """
    palette = list(colors) if colors else PALETTE
    canvas = np.asarray(image)
    for i, mask in enumerate(_as_list(masks)):
        canvas = overlay(canvas, mask, color=palette[i % len(palette)], alpha=alpha)
    ax.imshow(canvas, interpolation="nearest")
    for i, box in enumerate(boxes or []):
        if box is None:
            continue
        x0, y0, x1, y1 = box
        ax.add_patch(
            Rectangle(
                (x0 - 0.5, y0 - 0.5),
                x1 - x0 + 1,
                y1 - y0 + 1,
                fill=False,
                edgecolor=_rgb01(palette[i % len(palette)]),
                linewidth=1.5,
            )
        )
    for i, point in enumerate(points or []):
        x, y = point[:2]
        ax.scatter([x], [y], s=40, marker="*", color="yellow", edgecolors="black", linewidths=0.6, zorder=4)
    for i, poly in enumerate(polygons or []):
        poly = np.asarray(poly, dtype=float).reshape(-1, 2)
        if len(poly) < 2:
            continue
        ax.add_patch(PolygonPatch(poly, closed=True, fill=False, edgecolor="white", linewidth=1.0, linestyle="--"))
        ax.scatter(poly[:, 0], poly[:, 1], s=6, color="white", zorder=4)
    if title:
        ax.set_title(title, fontsize=8, wrap=True)
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
    ax.set_axis_off()


def gallery(items: Sequence[dict], ncols: int = 4, panel_size: float = 3.0) -> Figure:
    """A grid of ``show_sample`` panels; each item is a dict of its keyword arguments.

    Items may also carry ``clicks`` (drawn with ``click_markers``).
    """
    n = max(len(items), 1)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for ax in axes.ravel()[len(items) :]:
        ax.set_axis_off()
    for ax, item in zip(axes.ravel(), items):
        item = dict(item)
        clicks = item.pop("clicks", None)
        show_sample(ax, **item)
        if clicks:
            click_markers(ax, clicks)
    fig.tight_layout()
    return fig


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


def voting_clusters(ax, image: np.ndarray, result, title: str | None = None, top: int = 6) -> None:
    """Draw a ``seglib.voting.VoteResult``: the chosen clusters filled, the other clusters outlined.

    Each cluster (up to ``top``, best-ranked first) is labelled with its votes / N.
    """
    chosen = list(result.chosen)
    others = [ci for ci in sorted(range(len(result.clusters)), key=lambda c: -result.clusters[c].votes) if ci not in chosen]
    order = (chosen + others)[:top]
    canvas = np.asarray(image)
    for rank, ci in enumerate(order):
        if ci in chosen:
            canvas = overlay(canvas, result.clusters[ci].mask, color=PALETTE[rank % len(PALETTE)], alpha=0.45)
    ax.imshow(canvas, interpolation="nearest")
    for rank, ci in enumerate(order):
        cluster = result.clusters[ci]
        colour = _rgb01(PALETTE[rank % len(PALETTE)])
        if cluster.mask.any():
            ax.contour(
                cluster.mask.astype(float),
                levels=[0.5],
                colors=[colour],
                linewidths=1.5 if ci in chosen else 1.0,
                linestyles="solid" if ci in chosen else "dashed",
            )
            ys, xs = np.nonzero(cluster.mask)
            ax.text(
                xs.mean(),
                ys.mean(),
                f"{cluster.votes}/{result.n_samples}",
                color="white",
                fontsize=7,
                ha="center",
                va="center",
                bbox={"facecolor": colour, "alpha": 0.7, "pad": 1, "linewidth": 0},
            )
    if title is None:
        title = "empty (majority)" if result.empty_majority else f"K̂={result.k_hat}, {len(result.clusters)} clusters"
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def save_figure(fig: Figure, run_dir: str | os.PathLike, name: str, dpi: int = 120, close: bool = False) -> Path:
    """Write ``fig`` to ``<run_dir>/figures/<name>.png`` and return the path.

    ``name`` is a file name such as ``01_gallery`` (".png" is added if missing);
    path separators are refused. The PNG carries no timestamp, so the same
    figure gives the same bytes.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"save_figure: name must be a plain file name, got {name!r}")
    if not name.endswith(".png"):
        name += ".png"
    out_dir = Path(run_dir) / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    if close:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------- styles, outlines, legends


def distinct_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` pairwise different RGBA colours (0–1): tab10 up to 10, tab20 up to 20, else evenly spaced on turbo.

    Matplotlib's default cycle repeats after 10 entries, so an 11th line would
    share the first line's blue; these never repeat.
    """
    import matplotlib

    n = max(int(n), 0)
    if n <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [tuple(cmap(i)) for i in range(n)]
    if n <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [tuple(cmap(i)) for i in range(n)]
    cmap = matplotlib.colormaps["turbo"]
    return [tuple(cmap(0.05 + 0.9 * i / (n - 1))) for i in range(n)]


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")


def line_styles(n: int) -> list[dict]:
    """``n`` line styles for ``ax.plot(**style)``: a distinct colour each, markers and line styles cycling too."""
    return [{"color": c, "marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[(i // len(MARKERS)) % len(LINESTYLES)]}
            for i, c in enumerate(distinct_colors(n))]


def outline(ax, mask: np.ndarray, color="white", under="black", linewidth: float = 1.0) -> None:
    """Outline a bool (H, W) mask: a dark line under a light one, so it shows on light and dark objects alike."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return
    ax.contour(mask.astype(float), levels=[0.5], colors=[under], linewidths=linewidth + 1.6, zorder=6)
    ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=linewidth, zorder=7)


def legend_outside(ax, max_rows: int = 12, fontsize: float = 7, **kwargs):
    """A legend to the right of ``ax`` (outside the data), in columns of at most ``max_rows`` entries."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    ncol = (len(handles) + max_rows - 1) // max_rows
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=fontsize, ncol=ncol, **kwargs)


def no_data(ax, text: str = "no data") -> None:
    """Mark an empty panel: the sentence in its middle instead of a blank frame."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="grey", wrap=True)


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- figures of notebooks 02 and 03


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
    ax.set(xlabel="clicks", ylabel="IoU", ylim=(0, 1.02), title=title)
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
                ax.set_title(f"{paradigm} {stage}\n{_short(s.query, 34)}", fontsize=7)
                continue
            mask = r.get("mask")
            show_sample(ax, image, [mask] if mask is not None else None, boxes=r.get("boxes") or None)
            gt = s.union_mask() if hasattr(s, "union_mask") else None
            if gt is not None:
                outline(ax, gt)
            ax.set_title(f"{paradigm} {stage}: IoU {r['iou']:.2f}\n[{s.kind}] {_short(s.query, 34)}", fontsize=7)
    fig.suptitle("Before / after SFT (filled: prediction; white over black: ground truth)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
