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
  union). Orientation and decoding are spelled out in ``seglib.masks.polygons``.
- ``overlay``: the green, α = 0.5 state image that SegAgent's policy sees.

Modules: ``rle``, ``iou`` (the IoU rule, boxes), ``points``, ``polygons``, ``blend`` (overlay).
"""
from seglib.masks.blend import overlay
from seglib.masks.iou import (
    Box,
    box_area,
    box_from_mask,
    box_iou,
    box_iou_matrix,
    iou_from_counts,
    mask_iou,
    mask_iou_matrix,
    masks_union,
    overlap_counts,
)
from seglib.masks.points import POINT_RULES, distance_transform, representative_points
from seglib.masks.polygons import ORIENTATIONS, mask_to_polygons, polygon_signed_area, polygons_to_mask
from seglib.masks.rle import as_bool_mask, decode_rle, encode_rle

__all__ = [
    "Box",
    "ORIENTATIONS",
    "POINT_RULES",
    "as_bool_mask",
    "box_area",
    "box_from_mask",
    "box_iou",
    "box_iou_matrix",
    "decode_rle",
    "distance_transform",
    "encode_rle",
    "iou_from_counts",
    "mask_iou",
    "mask_iou_matrix",
    "mask_to_polygons",
    "masks_union",
    "overlap_counts",
    "overlay",
    "polygon_signed_area",
    "polygons_to_mask",
    "representative_points",
]
