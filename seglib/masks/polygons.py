"""SimpleSeg's polygons: mask → polygons (Suzuki–Abe contours, Douglas–Peucker) and back (pycocotools)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from seglib.masks.rle import as_bool_mask, coco_decode

# Orientation. Image coordinates: x to the right, y down. "Clockwise" means
# clockwise as seen on screen, which is a *positive* shoelace area
# ½·Σ(x_i·y_{i+1} − x_{i+1}·y_i) computed in (x, y) with y down (it would be
# negative with y up). Example: (0, 0) → (1, 0) → (1, 1) → (0, 1) goes right
# along the top, then down, then left along the bottom: clockwise on screen,
# area +1. The paper asks for clockwise vertices, which is the default
# (``orientation="cw"``). SimpleSeg's released text is counter-clockwise on
# screen (1,690 of 1,690 polygons checked, negative area here);
# ``orientation="ccw"`` writes that order. Either way the first vertex is the
# top-most, then left-most one.
#
# Decoding. ``polygons_to_mask`` rasterises as the paper's code does,
# pycocotools ``frPyObjects`` + ``decode``, with no added outline (the default).
# pycocotools samples each pixel at the centre of its unit cell, which in our
# pixel-centre coordinates is (x + ½, y + ½): a polygon through the centres of
# a mask's boundary pixels loses the right and bottom boundary rows. Example:
# the 3 × 3 square (0, 0), (2, 0), (2, 2), (0, 2) decodes to the 4 pixels x, y
# in {0, 1}. ``outline=True`` (our option) adds the polygon's edges drawn 1 px
# wide, so that the same square decodes to its 9 pixels.

ORIENTATIONS = ("cw", "ccw")


def polygon_signed_area(polygon: np.ndarray) -> float:
    """Shoelace area ½·Σ(x_i·y_{i+1} − x_{i+1}·y_i) in image coordinates (y down).

    Positive means clockwise as seen on screen; negative means counter-clockwise.
    """
    p = np.asarray(polygon, dtype=float).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _canonical_order(poly: np.ndarray, orientation: str = "cw") -> np.ndarray:
    """Clockwise (``"cw"``, positive area) or counter-clockwise (``"ccw"``) on screen,
    starting at the top-most, then left-most vertex."""
    area = polygon_signed_area(poly)
    if (orientation == "cw" and area < 0) or (orientation == "ccw" and area > 0):
        poly = poly[::-1]
    start = int(np.lexsort((poly[:, 0], poly[:, 1]))[0])  # min y, then min x
    return np.roll(poly, -start, axis=0)


def mask_to_polygons(mask: np.ndarray, epsilon_ratio: float = 0.001, orientation: str = "cw") -> list[np.ndarray]:
    """SimpleSeg's polygons of a mask: one float (n, 2) array of (x, y) per outer part.

    - External contours by Suzuki–Abe border following (``cv2.findContours``,
      ``RETR_EXTERNAL``); holes are not represented.
    - Each is simplified by Douglas–Peucker (``cv2.approxPolyDP``) with
      ``epsilon = epsilon_ratio × contour perimeter`` (closed).
    - Vertices are boundary-pixel centres (pixel (x, y) has centre (x, y)).
    - Order: ``orientation="cw"`` (default, the paper's): clockwise on screen,
      i.e. positive ``polygon_signed_area`` with y down; ``"ccw"``:
      counter-clockwise on screen (SimpleSeg's released text). Both start at the
      top-most vertex, ties to the left-most (see the section comment above).
    - Parts whose simplified polygon has fewer than 3 vertices (a single pixel,
      a 1-px line) are dropped, since they enclose no area.
    - Polygons come sorted by their start vertex (y, then x). An empty mask
      gives ``[]``.
    """
    mask = as_bool_mask(mask)
    if epsilon_ratio < 0:
        raise ValueError(f"mask_to_polygons: epsilon_ratio must be ≥ 0, got {epsilon_ratio}")
    if orientation not in ORIENTATIONS:
        raise ValueError(f"mask_to_polygons: orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for contour in contours:
        perimeter = cv2.arcLength(contour, True)
        approx = cv2.approxPolyDP(contour, epsilon_ratio * perimeter, True).reshape(-1, 2)
        if len(approx) < 3:
            continue
        polygons.append(_canonical_order(approx.astype(np.float64), orientation))
    polygons.sort(key=lambda p: (p[0, 1], p[0, 0]))
    return polygons


def polygons_to_mask(
    polygons: Iterable[Sequence], height: int, width: int, outline: bool = False
) -> np.ndarray:
    """Rasterise polygons of (x, y) vertices and take their union (SimpleSeg's decoding).

    Each polygon is an (n, 2) array or a list of (x, y) pairs; polygons with
    fewer than 3 points, or with non-finite coordinates, are ignored. Nothing
    given gives an empty (height, width) mask. Vertex order does not matter.

    Default (``outline=False``, the paper's code): exactly pycocotools
    ``frPyObjects`` + ``decode``, each pixel sampled at (x + ½, y + ½) in our
    pixel-centre coordinates; the square (0, 0), (2, 0), (2, 2), (0, 2) gives
    the 4 pixels with x, y in {0, 1}. ``outline=True`` (our option) also adds
    the polygon's edges, drawn 1 px wide (8-connected, sub-pixel vertices): a
    contour traced through boundary-pixel centres (``mask_to_polygons``) then
    rasterises back onto its own boundary pixels (that square gives 9 pixels).
    """
    flat = []
    for poly in polygons:
        try:
            p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            continue
        if len(p) < 3 or not np.isfinite(p).all():
            continue
        flat.append(p)
    mask = np.zeros((height, width), bool)
    if not flat:
        return mask
    rles = coco_mask.frPyObjects([p.ravel().tolist() for p in flat], height, width)
    mask |= coco_decode(rles).astype(bool).any(axis=2)
    if outline:
        edges = np.zeros((height, width), np.uint8)
        # cv2 needs int32 points: 4 fractional bits (shift=4) keep sub-pixel vertices.
        limit = 2**26  # keep p·16 inside int32 for absurd coordinates
        pts = [np.clip(np.round(p * 16), -limit, limit).astype(np.int32) for p in flat]
        cv2.polylines(edges, pts, True, 1, 1, cv2.LINE_8, 4)
        mask |= edges.astype(bool)
    return mask
