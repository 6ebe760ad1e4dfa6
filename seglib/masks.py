"""Mask geometry shared by every paradigm: RLE, IoU, boxes, points, polygons, overlays.

Conventions (METHODS.md, "Data preparation"):

- Masks are ``np.ndarray[bool]`` of shape (H, W); images are uint8 RGB (H, W, 3).
- Coordinates are (x, y) in pixels of the image as given; pixel (x, y) is the
  pixel at row y, column x, and its centre has coordinates (x, y).
- Boxes are inclusive pixel boxes ``(x0, y0, x1, y1)``: width = x1 − x0 + 1.
- RLE is COCO RLE through pycocotools, with ``counts`` as ``str`` (JSON-ready).

Paper rules implemented here:

- ``representative_points``: Seg-Zero's two points (p1 = centre of the largest
  inscribed circle, p2 = distance-transform maximum among the pixels farther
  from p1 than the median distance); VisionReasoner uses p1 alone (``k=1``).
- ``mask_to_polygons`` / ``polygons_to_mask``: SimpleSeg's polygons
  (Suzuki–Abe external contours, Douglas–Peucker with
  ``epsilon = epsilon_ratio × perimeter``, clockwise vertices on screen;
  decoding rasterises with pycocotools, no outline added, and takes the
  union). Orientation and decoding are spelled out in the polygon section.
- ``overlay``: the green, α = 0.5 state image that SegAgent's policy sees.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from pycocotools import mask as coco_mask

Box = tuple[int, int, int, int]


# --------------------------------------------------------------------------- RLE


def _coco_decode(rles) -> np.ndarray:
    """pycocotools ``decode``, quiet about its numpy-2 ``__array__(copy=...)`` DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        return coco_mask.decode(rles)


def _as_bool_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a (H, W) mask: ``{"size": [H, W], "counts": str}``."""
    mask = _as_bool_mask(mask)
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def decode_rle(rle: dict) -> np.ndarray:
    """Bool (H, W) mask from a COCO RLE.

    Accepts compressed RLE with ``counts`` as str or bytes, and uncompressed
    RLE with ``counts`` as a list of ints (as in some COCO files).
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"decode_rle: expected a dict with 'size' and 'counts', got {rle!r:.200}")
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    else:
        if isinstance(counts, str):
            counts = counts.encode("ascii")
        compressed = {"size": [height, width], "counts": counts}
    return _coco_decode(compressed).astype(bool)


# --------------------------------------------------------------------------- IoU and boxes


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|pred ∩ gt| / |pred ∪ gt|; both empty gives 1.0 (StAR's rule)."""
    pred = _as_bool_mask(pred, "pred")
    gt = _as_bool_mask(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"mask_iou: shapes differ, pred {pred.shape} vs gt {gt.shape}")
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union


def box_area(box: Sequence[float]) -> float:
    """Area of an inclusive box, (x1 − x0 + 1)·(y1 − y0 + 1); 0 if degenerate."""
    x0, y0, x1, y1 = box
    return max(0.0, x1 - x0 + 1) * max(0.0, y1 - y0 + 1)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two inclusive pixel boxes (x0, y0, x1, y1); width = x1 − x0 + 1.

    Degenerate boxes (x1 < x0 or y1 < y0) have area 0; if the union is 0 the
    IoU is 0.0.
    """
    if len(a) != 4 or len(b) != 4:
        raise ValueError(f"box_iou: boxes need 4 numbers, got {a!r} and {b!r}")
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(0.0, ix) * max(0.0, iy)
    union = box_area(a) + box_area(b) - inter
    if union <= 0:
        return 0.0
    return float(inter / union)


def box_from_mask(mask: np.ndarray) -> Box:
    """Inclusive box ``(x_min, y_min, x_max, y_max)`` of the mask's pixels.

    An empty mask has no box: raises ``ValueError``.
    """
    mask = _as_bool_mask(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        raise ValueError("box_from_mask: the mask is empty, so it has no box")
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def clip_box(box: Sequence[float], height: int, width: int) -> Box:
    """Round a box to ints and clip it into the image (inclusive bounds)."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    clip_x = lambda v: min(max(v, 0), width - 1)  # noqa: E731
    clip_y = lambda v: min(max(v, 0), height - 1)  # noqa: E731
    return clip_x(x0), clip_y(y0), clip_x(x1), clip_y(y1)


def box_to_mask(box: Sequence[float], height: int, width: int) -> np.ndarray:
    """Bool mask of an inclusive box, clipped to the image."""
    x0, y0, x1, y1 = clip_box(box, height, width)
    mask = np.zeros((height, width), bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def masks_union(masks: Iterable[np.ndarray], height: int | None = None, width: int | None = None) -> np.ndarray:
    """Union of masks; with no masks, an empty (height, width) mask (both needed then)."""
    out = None
    for m in masks:
        m = _as_bool_mask(m)
        if out is None:
            out = m.copy()
        else:
            if m.shape != out.shape:
                raise ValueError(f"masks_union: shapes differ, {m.shape} vs {out.shape}")
            out |= m
    if out is None:
        if height is None or width is None:
            raise ValueError("masks_union: no masks given, so height and width are needed")
        return np.zeros((height, width), bool)
    return out


# --------------------------------------------------------------------------- points (Seg-Zero)


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """Exact L2 distance of each mask pixel to the nearest non-mask pixel (float32, 0 outside the mask).

    The mask is padded by one pixel of background first, so the image border
    counts as the region's edge (as in F_sim).
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # OpenCV's result varies in the last bits with the buffer's memory alignment and the thread split (SIMD
    # paths), which flipped ties between equally deep pixels from run to run. The exact distance is
    # the root of an integer: snap to it (float32 error in d^2 stays far below 0.5 for any image size we use).
    dist = np.sqrt(np.rint(np.square(dist, dtype=np.float64))).astype(np.float32)
    return dist[1:-1, 1:-1]


def _snap_to_mask(mask: np.ndarray, x: int, y: int) -> tuple[int, int]:
    """The mask pixel nearest to (x, y) (first in raster order on ties)."""
    if mask[y, x]:
        return x, y
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
    return int(xs[i]), int(ys[i])


#: Rules for ``representative_points``: "padded" (seglib's default) and "segzero_code" (Seg-Zero's public data-preparation code).
POINT_RULES = ("padded", "segzero_code")


def representative_points(mask: np.ndarray, k: int = 2, rule: str = "padded") -> list[tuple[int, int]]:
    """Seg-Zero's representative points of a mask, as integer (x, y).

    - p1: the arg-max of the Euclidean distance transform (centre of the largest
      inscribed circle).
    - p2: the arg-max of the distance transform among the mask pixels whose
      distance from p1 is strictly greater than the median of those distances.
    - Fallback for p2 (no pixel is beyond the median, e.g. a one-pixel mask):
      the distance-transform maximum in a window of ±10 px around the centroid.
    - A point off the mask snaps to the nearest mask pixel.
    - Ties go to the first pixel in raster order (smallest y, then smallest x).

    ``rule`` says how the distance transform and the fallback are taken:

    - ``"padded"`` (default): the mask is padded with background first, so the
      image border is an edge (``distance_transform``); the fallback centroid
      is rounded and its window is rows/columns [c − 10, c + 10], inclusive.
    - ``"segzero_code"``: Seg-Zero's public data-preparation code. The distance
      is to the nearest background pixel *inside* the image (no padding: the
      border is not an edge, so a mask touching the border has its deepest
      pixels there); the fallback centroid is truncated to an integer and its
      window is [c − 10, c + 10), half-open. A mask that fills the whole
      image has no background pixel: then the padded transform is used.

    Example, 7 × 7 image with columns 0–3 set: ``"padded"`` gives (1, 1), (1, 4);
    ``"segzero_code"`` gives (0, 0), (0, 4).

    ``k=1`` gives ``[p1]`` (VisionReasoner); ``k=2`` gives ``[p1, p2]``.
    An empty mask raises ``ValueError``, as does an unknown ``rule``.
    """
    mask = _as_bool_mask(mask)
    if k not in (1, 2):
        raise ValueError(f"representative_points: k must be 1 or 2, got {k}")
    if rule not in POINT_RULES:
        raise ValueError(f"representative_points: rule must be one of {POINT_RULES}, got {rule!r}")
    if not mask.any():
        raise ValueError("representative_points: the mask is empty, so it has no points")
    if rule == "segzero_code" and not mask.all():
        from scipy import ndimage

        # exact EDT to the nearest background pixel of the image itself (float64 roots of integers: no ties flip)
        dist = ndimage.distance_transform_edt(mask)
    else:
        dist = distance_transform(mask)
    y1, x1 = np.unravel_index(int(np.argmax(dist)), dist.shape)
    p1 = _snap_to_mask(mask, int(x1), int(y1))
    if k == 1:
        return [p1]

    ys, xs = np.nonzero(mask)  # raster order
    d_from_p1 = np.hypot(xs - p1[0], ys - p1[1])
    far = d_from_p1 > np.median(d_from_p1)
    if far.any():
        cand_d = dist[ys[far], xs[far]]
        i = int(np.argmax(cand_d))
        p2 = (int(xs[far][i]), int(ys[far][i]))
    else:
        h, w = mask.shape
        if rule == "segzero_code":
            cx, cy = int(xs.mean()), int(ys.mean())
            ya, yb = max(cy - 10, 0), min(cy + 10, h) - 1
            xa, xb = max(cx - 10, 0), min(cx + 10, w) - 1
        else:
            cx, cy = int(round(xs.mean())), int(round(ys.mean()))
            ya, yb = max(cy - 10, 0), min(cy + 10, h - 1)
            xa, xb = max(cx - 10, 0), min(cx + 10, w - 1)
        window = dist[ya : yb + 1, xa : xb + 1]
        if window.size and (window.max() > 0 or rule == "segzero_code"):
            wy, wx = np.unravel_index(int(np.argmax(window)), window.shape)
            p2 = (xa + int(wx), ya + int(wy))
        else:
            p2 = (cx, cy)
    p2 = _snap_to_mask(mask, *p2)
    return [p1, p2]


# --------------------------------------------------------------------------- polygons (SimpleSeg)
#
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
    mask = _as_bool_mask(mask)
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
    mask |= _coco_decode(rles).astype(bool).any(axis=2)
    if outline:
        edges = np.zeros((height, width), np.uint8)
        # cv2 needs int32 points: 4 fractional bits (shift=4) keep sub-pixel vertices.
        limit = 2**26  # keep p·16 inside int32 for absurd coordinates
        pts = [np.clip(np.round(p * 16), -limit, limit).astype(np.int32) for p in flat]
        cv2.polylines(edges, pts, True, 1, 1, cv2.LINE_8, 4)
        mask |= edges.astype(bool)
    return mask


# --------------------------------------------------------------------------- overlay (SegAgent state image)


def overlay(
    image: np.ndarray, mask: np.ndarray, color: Sequence[int] = (0, 255, 0), alpha: float = 0.5
) -> np.ndarray:
    """Blend ``color`` over the mask pixels: out = round((1 − α)·image + α·color), uint8 RGB.

    Pixels off the mask are unchanged. Rounding is half-up (floor(v + 0.5)), so
    the result is exact and deterministic; with the defaults it is SegAgent's
    green, α = 0.5 state image.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"overlay: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    mask = _as_bool_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"overlay: mask shape {mask.shape} differs from image shape {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha}")
    out = image.copy()
    colour = np.asarray(color, dtype=np.float64).reshape(1, 3)
    blended = (1.0 - alpha) * image[mask].astype(np.float64) + alpha * colour
    out[mask] = np.clip(np.floor(blended + 0.5), 0, 255).astype(np.uint8)
    return out
