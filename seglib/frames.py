"""Coordinate frames: the one place where model-text coordinates meet image pixels.

Every public seglib API speaks (x, y) in pixels of the image as given. A policy
may see and write coordinates in another frame; this module converts, and
nothing else in seglib does.

Frames
------
* **Seg-Zero resize** (Seg-Zero, VisionReasoner): the image is resized to
  ``size × size`` (840 in the papers; a parameter here) and the model writes
  pixels of the resized image. Forward ``int(v * size / W + 0.5)`` for x (``H``
  for y); back ``v * W / size``. ``size=None`` is the identity frame: the model
  writes pixels of the image as given (the embedded default).
* **0–1000 grid** (SegAgent): integer coordinates on ``[0, grid]`` (grid = 1000).
  We use pixel centres: pixel ``x`` ↦ ``round((x + 0.5) * grid / W)``, grid value
  ``g`` ↦ ``g * W / grid − 0.5`` (rounded half down and clipped to a pixel). For
  ``W ≤ grid`` every pixel round-trips exactly.
* **Unit square** (SimpleSeg): ``x / W``, ``y / H`` in [0, 1], written with 3
  decimals; back ``u * W``, ``v * H`` (continuous polygon coordinates).

Clipping to the image is also here: ``clip_point`` / ``clip_box`` clamp to
``[0, W−1] × [0, H−1]`` (inclusive pixel boxes).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

SEGZERO_SIZE = 840
GRID = 1000
UNIT_DECIMALS = 3


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got width={width}, height={height}")


# --------------------------------------------------------------------------- Seg-Zero resize
def to_resized(values_xy: Sequence[float], width: int, height: int, size: int | None = SEGZERO_SIZE) -> list:
    """Pixels of the image → pixels of the ``size × size`` resized image (Seg-Zero).

    ``values_xy`` is a flat sequence alternating x and y (a point ``[x, y]`` or a
    box ``[x0, y0, x1, y1]``). Returns ints, ``int(v * size / W + 0.5)`` exactly as
    Seg-Zero's data preparation. ``size=None``: identity (values returned as ints
    when integral, else as given).
    """
    _check_size(width, height)
    if len(values_xy) % 2:
        raise ValueError(f"expected alternating x, y values, got {len(values_xy)} values")
    if size is None:
        return [int(v) if float(v).is_integer() else float(v) for v in values_xy]
    return [int(float(v) * size / (width if i % 2 == 0 else height) + 0.5) for i, v in enumerate(values_xy)]


def from_resized(values_xy: Sequence[float], width: int, height: int, size: int | None = SEGZERO_SIZE) -> list[float]:
    """Pixels of the resized image → pixels of the image: ``v * W / size`` (``H`` for y).

    ``size=None``: identity. Returns floats; clip with ``clip_point``/``clip_box``.
    """
    _check_size(width, height)
    if len(values_xy) % 2:
        raise ValueError(f"expected alternating x, y values, got {len(values_xy)} values")
    if size is None:
        return [float(v) for v in values_xy]
    return [float(v) * (width if i % 2 == 0 else height) / size for i, v in enumerate(values_xy)]


# --------------------------------------------------------------------------- 0–1000 grid
def to_grid(x: float, y: float, width: int, height: int, grid: int = GRID) -> tuple[int, int]:
    """Pixel (x, y) → integer grid coordinates in ``[0, grid]`` (SegAgent), pixel centres."""
    _check_size(width, height)
    gx = int(math.floor((x + 0.5) * grid / width + 0.5))
    gy = int(math.floor((y + 0.5) * grid / height + 0.5))
    return min(max(gx, 0), grid), min(max(gy, 0), grid)


def from_grid(gx: float, gy: float, width: int, height: int, grid: int = GRID) -> tuple[int, int]:
    """Grid coordinates → the pixel (x, y) they fall in, clipped to the image."""
    _check_size(width, height)
    # g·W/grid − 0.5 rounded half down, so that pixel → grid → pixel is exact for W ≤ grid.
    x = math.ceil(float(gx) * width / grid - 1.0) if math.isfinite(gx) else 0
    y = math.ceil(float(gy) * height / grid - 1.0) if math.isfinite(gy) else 0
    return clip_point(x, y, width, height)


def snap_to_cell(x: float, y: float, width: int, height: int, cells: int) -> tuple[float, float]:
    """The centre (pixel coordinates) of the cell holding pixel (x, y) when the image is cut into ``cells × cells``.

    The embedded recipe's coarse targets: a tiny policy learns a few dozen
    coordinate values far faster than a thousand, so SFT targets may be snapped
    to cell centres while still being written in the paradigm's own frame.
    """
    _check_size(width, height)
    if cells < 1:
        raise ValueError(f"cells must be >= 1, got {cells}")
    i = min(max(int(math.floor(float(x) * cells / width)), 0), cells - 1)
    j = min(max(int(math.floor(float(y) * cells / height)), 0), cells - 1)
    return (i + 0.5) * width / cells - 0.5, (j + 0.5) * height / cells - 0.5


def snap_unit(points_unit: np.ndarray, cells: int) -> np.ndarray:
    """Unit-square coordinates rounded to the nearest multiple of ``1 / cells`` (the polygon lattice)."""
    if cells < 1:
        raise ValueError(f"cells must be >= 1, got {cells}")
    return np.round(np.asarray(points_unit, float) * cells) / cells


# --------------------------------------------------------------------------- unit square
def to_unit(points_xy: np.ndarray, width: int, height: int, decimals: int = UNIT_DECIMALS) -> np.ndarray:
    """(n, 2) pixel (x, y) → (n, 2) in [0, 1], rounded to ``decimals`` (SimpleSeg)."""
    _check_size(width, height)
    pts = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    unit = pts / np.array([width, height], dtype=float)
    return np.round(np.clip(unit, 0.0, 1.0), decimals)


def from_unit(points_unit: np.ndarray, width: int, height: int) -> np.ndarray:
    """(n, 2) unit-square (x, y) → (n, 2) continuous pixel coordinates ``(u·W, v·H)``."""
    _check_size(width, height)
    pts = np.asarray(points_unit, dtype=float).reshape(-1, 2)
    return pts * np.array([width, height], dtype=float)


def format_unit(v: float, decimals: int = UNIT_DECIMALS) -> str:
    """One unit-square coordinate as fixed-width text with ``decimals`` places ("0.500", "0.123", "1.000")."""
    return f"{min(max(float(v), 0.0), 1.0):.{decimals}f}"


# --------------------------------------------------------------------------- clipping
def clip_point(x: float, y: float, width: int, height: int) -> tuple[int, int]:
    """Round (x, y) to the nearest pixel and clamp it into the image."""
    _check_size(width, height)
    xi = int(math.floor(x + 0.5)) if math.isfinite(x) else 0
    yi = int(math.floor(y + 0.5)) if math.isfinite(y) else 0
    return min(max(xi, 0), width - 1), min(max(yi, 0), height - 1)


def clip_box(box_xyxy: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Round an inclusive box to pixels, order its corners, clamp it into the image."""
    x0, y0 = clip_point(box_xyxy[0], box_xyxy[1], width, height)
    x1, y1 = clip_point(box_xyxy[2], box_xyxy[3], width, height)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
