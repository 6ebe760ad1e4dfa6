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
