"""Drawing primitives the notebooks' figures share: overlays with boxes, points, polygons and clicks,
outlines, distinct colours and line styles, legends outside the data, and ``save_figure``.

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
    clicks: Sequence | None = None,
) -> None:
    """Draw an image with masks (filled, one colour each), inclusive boxes, (x, y) points and polygons.

    ``masks`` is one bool (H, W) mask or a list of them; ``boxes``/``points``/
    ``polygons`` take object i's colour when they line up with the masks; ``clicks`` are
    drawn with ``click_markers``.
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
    if clicks:
        click_markers(ax, clicks)


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
        show_sample(ax, **item)
    fig.tight_layout()
    return fig


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


def short_text(text: str, limit: int = 48) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

