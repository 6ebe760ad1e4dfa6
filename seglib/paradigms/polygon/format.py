"""Polygon paradigm (SimpleSeg): the policy writes the outline, no segmenter needed.

Answer text: a JSON list of polygons, each a list of ``[x, y]`` vertices in the
unit square (``x / W``, ``y / H``; ``seglib.frames.to_unit``), written with 3
decimals (fixed width, "0.250"), clockwise on screen, starting at the top-most
then left-most vertex (``seglib.masks.mask_to_polygons``)::

    [[[0.250,0.125],[0.750,0.125],[0.750,0.500],[0.250,0.500]]]

Orientation, with x to the right and y down: "clockwise" is clockwise as
seen on screen, a positive shoelace area ½·Σ(x_i·y_{i+1} − x_{i+1}·y_i) in
(x, y) with y down. The example above goes right along the top edge, then
down, then left: clockwise (area +0.1875 in the unit square). The paper asks
for clockwise vertices (``orientation="cw"``, the default). SimpleSeg's
released text is counter-clockwise on screen (1,690 of 1,690 polygons
checked); ``orientation="ccw"`` writes that order, so the example would read
``[[[0.250,0.125],[0.250,0.500],[0.750,0.500],[0.750,0.125]]]``. The parser
accepts either order, and decoding does not depend on it.

Decoding (``decode``) is pycocotools ``frPyObjects`` + ``decode``, as the
paper's code does, with no outline added (``outline=False``, the default);
``outline=True`` adds each polygon's edges drawn 1 px wide
(``seglib.masks.polygons_to_mask``). The option ``outline``
(``PolygonParadigm.Options``) switches it for evaluation and for the reward
(``seglib.paradigms.polygon.reward.simpleseg_score``) alike.

Several parts or objects give several polygons; an empty target is ``[]``.
``flat=True`` writes each polygon as ``[x, y, x, y, …]`` (fewer tokens).
Polygons come from ``mask_to_polygons(mask, epsilon_ratio)``: Douglas–Peucker
with ``epsilon = epsilon_ratio × perimeter`` (paper's best 0.005, the default
here; the released code used 0.001).

Parser rules (``parse`` never raises, never evals; ``None`` = malformed):
  - the answer is the last complete ``<answer>…</answer>`` if tags are present,
    else the whole text; single-quoted JSON is accepted;
  - a list of polygons; a bare list of ``[x, y]`` pairs is read as one polygon;
    each polygon is ``[[x, y], …]`` or flat ``[x, y, …]`` (even length);
  - a polygon with fewer than 3 vertices → ``None`` for the whole answer;
  - NaN/Infinity, non-numbers, bools, ``|v| > 1e5`` → ``None``;
  - more than ``MAX_VERTICES`` vertices in all → ``None``;
  - coordinates outside [0, 1] are **clipped** to the unit square (the image border);
  - self-intersecting polygons are kept by default and rasterised as
    pycocotools does (``is_simple`` tells them apart); ``parse(...,
    reject_self_intersecting=True)`` returns ``None`` for them instead. Douglas–Peucker
    itself can produce a self-intersection, so rejecting by default would make
    some ground-truth targets unparsable.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seglib import frames
from seglib.paradigms.text import answer_span, as_number, loads_json

#: Most vertices, over all polygons of one answer, that ``parse`` accepts.
MAX_VERTICES = 2000
DEFAULT_EPSILON_RATIO = 0.005

PROMPT_TEMPLATES = {
    "default": (
        "Outline \"{query}\" in the image. Answer with a JSON list of polygons, each a clockwise list of "
        "[x, y] vertices in [0, 1] with 3 decimals, or [] if nothing matches."
    ),
    "compact": "{query}",
}


# ---------------------------------------------------------------- prompt and SFT target
def prompt(sample_or_query: Any, template: str = "default") -> str:
    """The user prompt; ``sample_or_query`` is a ``Sample`` or the query string."""
    query = sample_or_query if isinstance(sample_or_query, str) else sample_or_query.query
    if template not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown polygon prompt template {template!r}; expected one of {sorted(PROMPT_TEMPLATES)}")
    return PROMPT_TEMPLATES[template].format(query=query)


def polygons_from_masks(masks: Sequence[np.ndarray], epsilon_ratio: float = DEFAULT_EPSILON_RATIO,
                        orientation: str = "cw") -> list[np.ndarray]:
    """All polygons (pixel (x, y), ``orientation`` "cw" | "ccw" on screen) of all target masks, in mask order."""
    from seglib.masks import mask_to_polygons

    out: list[np.ndarray] = []
    for m in masks:
        out.extend(mask_to_polygons(np.asarray(m, bool), epsilon_ratio=epsilon_ratio, orientation=orientation))
    return out


def answer_value(polygons_px: Sequence[np.ndarray], width: int, height: int,
                 decimals: int = frames.UNIT_DECIMALS, snap: int | None = None) -> list[np.ndarray]:
    """Pixel polygons → unit-square polygons rounded to ``decimals`` (what the text holds).

    ``snap``: vertices first rounded to the ``1 / snap`` lattice (``frames.snap_unit``),
    repeated vertices dropped; a polygon left with fewer than 3 vertices keeps its
    unsnapped vertices.
    """
    out = []
    for p in polygons_px:
        unit = frames.to_unit(p, width, height, decimals)
        if snap:
            snapped = frames.snap_unit(unit, int(snap))
            keep = np.any(snapped != np.roll(snapped, 1, axis=0), axis=1)
            if keep.sum() >= 3:
                unit = np.round(snapped[keep], decimals)
        out.append(unit)
    return out


def format_polygons(polygons_unit: Sequence[np.ndarray], flat: bool = False, compact: bool = True,
                    decimals: int = frames.UNIT_DECIMALS) -> str:
    """Unit-square polygons → answer text (no tags)."""
    sep = "," if compact else ", "
    polys = []
    for p in polygons_unit:
        p = np.asarray(p, float).reshape(-1, 2)
        nums = [(frames.format_unit(x, decimals), frames.format_unit(y, decimals)) for x, y in p]
        if flat:
            body = sep.join(f"{x}{sep}{y}" for x, y in nums)
        else:
            body = sep.join(f"[{x}{sep}{y}]" for x, y in nums)
        polys.append(f"[{body}]")
    return "[" + sep.join(polys) + "]"


def target_text(masks: Sequence[np.ndarray], width: int, height: int, epsilon_ratio: float = DEFAULT_EPSILON_RATIO,
                flat: bool = False, compact: bool = True, answer_tags: bool = False, snap: int | None = None,
                orientation: str = "cw") -> str:
    """SFT target for the target masks (``[]`` → ``"[]"``); ``answer_tags`` wraps it in ``<answer>`` tags.

    ``snap``: vertices on the ``1 / snap`` lattice (``answer_value``), still written with 3 decimals.
    ``orientation``: "cw" (default, the paper's) or "ccw" on screen (module docstring).
    """
    polys = polygons_from_masks(masks, epsilon_ratio, orientation)
    text = format_polygons(answer_value(polys, width, height, snap=snap), flat=flat, compact=compact)
    return f"<answer>{text}</answer>" if answer_tags else text


def target_for_sample(sample: Any, epsilon_ratio: float = DEFAULT_EPSILON_RATIO, think_box: int | None = None,
                      **kwargs: Any) -> str:
    """``target_text`` for a ``seglib.data.Sample`` (``target_for_masks`` on its target masks)."""
    return target_for_masks(sample.target_masks(), sample.width, sample.height, epsilon_ratio, think_box, **kwargs)


def target_for_masks(masks: Sequence[np.ndarray], width: int, height: int,
                     epsilon_ratio: float = DEFAULT_EPSILON_RATIO, think_box: int | None = None, **kwargs: Any) -> str:
    """SFT target for the target masks of one image (``target_text``'s keywords in ``kwargs``).

    ``think_box`` (our addition, not SimpleSeg's): a think block first holds
    the targets' boxes and points as boxpoints' list answer in the
    ``think_box`` × ``think_box`` frame (``<think>[{"bbox_2d": …}]</think>``),
    then the polygons in ``<answer>`` tags. A policy that already writes that
    list (notebook 03's ``sft_init``) starts its outline from where it found the object.
    """
    if not think_box:
        return target_text(masks, width, height, epsilon_ratio, **kwargs)
    from seglib.paradigms.boxpoints.format import answer_json, objects_from_masks

    objects = objects_from_masks(masks, n_points=1)
    located = answer_json(objects, width, height, style="list", resize=int(think_box), compact=True)
    answer = target_text(masks, width, height, epsilon_ratio, **{**kwargs, "answer_tags": True})
    return f"<think>{located}</think>{answer}"


# ---------------------------------------------------------------- geometry checks
def is_simple(polygon: np.ndarray) -> bool:
    """True when no two non-adjacent edges of the closed polygon cross or touch (O(n²), vectorised)."""
    p = np.asarray(polygon, float).reshape(-1, 2)
    n = len(p)
    if n < 4:
        return n == 3 and abs(np.cross(p[1] - p[0], p[2] - p[0])) > 0
    a, b = p, np.roll(p, -1, axis=0)  # edge i: a[i] → b[i]

    def orient(p0, p1, q):  # sign of cross((p1 - p0), (q - p0)), broadcast (n, 1) vs (1, n)
        return np.sign((p1[..., 0] - p0[..., 0]) * (q[..., 1] - p0[..., 1])
                       - (p1[..., 1] - p0[..., 1]) * (q[..., 0] - p0[..., 0]))

    A, B = a[:, None, :], b[:, None, :]
    C, D = a[None, :, :], b[None, :, :]
    o1, o2 = orient(A, B, C), orient(A, B, D)
    o3, o4 = orient(C, D, A), orient(C, D, B)
    cross = (o1 * o2 <= 0) & (o3 * o4 <= 0)
    # collinear, non-overlapping pairs pass the sign test; require bounding boxes to overlap
    overlap = ((np.minimum(A[..., 0], B[..., 0]) <= np.maximum(C[..., 0], D[..., 0]))
               & (np.minimum(C[..., 0], D[..., 0]) <= np.maximum(A[..., 0], B[..., 0]))
               & (np.minimum(A[..., 1], B[..., 1]) <= np.maximum(C[..., 1], D[..., 1]))
               & (np.minimum(C[..., 1], D[..., 1]) <= np.maximum(A[..., 1], B[..., 1])))
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    non_adjacent = (j > i + 1) & ~((i == 0) & (j == n - 1))
    return not bool((cross & overlap & non_adjacent).any())


# ---------------------------------------------------------------- parser
def _polygon(v: Any) -> np.ndarray | None:
    if not isinstance(v, list) or not v:
        return None
    if all(isinstance(q, list) for q in v):  # [[x, y], ...]
        if any(len(q) != 2 for q in v):
            return None
        nums = [as_number(c) for q in v for c in q]
    else:  # flat [x, y, x, y, ...]
        if len(v) % 2:
            return None
        nums = [as_number(c) for c in v]
    if any(c is None for c in nums) or len(nums) < 6:
        return None
    return np.clip(np.asarray(nums, float).reshape(-1, 2), 0.0, 1.0)


def _is_pair(q: Any) -> bool:
    return isinstance(q, list) and len(q) == 2 and all(as_number(c) is not None for c in q)


def parse_json_value(data: Any, reject_self_intersecting: bool = False) -> list[np.ndarray] | None:
    """Structure decoded JSON into unit-square polygons, or ``None`` (rules in the module docstring)."""
    if not isinstance(data, list):
        return None
    if data and all(_is_pair(q) for q in data):  # a bare list of pairs: one polygon
        data = [data]
    if sum(len(q) if isinstance(q, list) else 1 for q in data) > 2 * MAX_VERTICES:
        return None
    polys = []
    for v in data:
        p = _polygon(v)
        if p is None:
            return None
        polys.append(p)
    if sum(len(p) for p in polys) > MAX_VERTICES:
        return None
    if reject_self_intersecting and not all(is_simple(p) for p in polys):
        return None
    return polys


def parse(text: Any, reject_self_intersecting: bool = False) -> list[np.ndarray] | None:
    """Text → list of (n, 2) unit-square polygons (``[]`` = nothing) or ``None``; never raises."""
    try:
        span = answer_span(text)
        if span is None or span.count(",") > 4 * MAX_VERTICES:  # too many vertices: skip decoding the JSON
            return None
        return parse_json_value(loads_json(span), reject_self_intersecting)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        return None


# ---------------------------------------------------------------- decoding
def to_image_frame(answer: Sequence[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """Unit-square polygons → pixel (x, y) polygons (vertices on pixel centres, as mask_to_polygons)."""
    return [frames.from_unit(p, width, height) for p in answer]


def decode(answer: Sequence[np.ndarray] | None, height: int, width: int, segmenter: Any = None,
           image: np.ndarray | None = None, outline: bool = False) -> np.ndarray:
    """Polygons → bool (H, W) mask: rasterise each (pycocotools) and take the union. ``segmenter``/``image`` unused.

    ``outline``: False (default, pycocotools alone) or True (edges added 1 px wide; ``masks.polygons_to_mask``).
    """
    from seglib.masks import polygons_to_mask

    if not answer:
        return np.zeros((height, width), bool)
    return polygons_to_mask(to_image_frame(answer, height, width), height, width, outline=outline)
