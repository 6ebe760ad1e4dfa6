"""SynthRef scenes: a background and 1-6 shapes, with each object's visible-pixel mask.

Ten shapes (convex: circle, square, triangle, hexagon; with a hole: ring;
concave or thin: star, crescent, cross, bar; irregular: blob) in several
colours, sizes, rotations and fills (``DIFFICULTIES`` sets the mix). Later
objects occlude earlier ones; an object's ``mask`` holds only its visible
pixels, and placements that would leave an object mostly hidden are rejected.
Masks are drawn without anti-aliasing and the image takes the object's colour
on exactly the mask's pixels.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "hexagon", "ring", "star", "crescent", "cross", "bar", "blob")
PLURAL = {"cross": "crosses"}
CORNERS = {"circle": 0, "ring": 0, "blob": 0, "crescent": 2, "triangle": 3, "square": 4, "bar": 4,
           "hexagon": 6, "star": 10, "cross": 12}
COLOURS = {
    "red": (215, 40, 40), "green": (50, 165, 60), "blue": (40, 80, 215), "yellow": (235, 205, 40),
    "orange": (240, 135, 30), "purple": (135, 60, 180), "pink": (240, 125, 185), "cyan": (40, 190, 210),
    "white": (240, 240, 240), "black": (35, 35, 35),
}

DIFFICULTIES: dict[str, dict[str, Any]] = {
    # Easy: for tiny VLMs trained from scratch in minutes. Few large objects, distinct solid colours
    # and shapes, no occlusion, plain or gradient backgrounds, mostly attribute referring queries.
    # ``forms``: how often a referring query uses attributes / an extreme position / a relation.
    "easy": dict(n_objects=(1, 3), p_small=0.2, r_small=(0.09, 0.12), r_large=(0.16, 0.23),
                 colours=("red", "green", "blue", "yellow", "purple", "white"), distinct_colours=True,
                 distinct_shapes=True, backgrounds=("plain", "gradient"), fills=("solid",), colour_jitter=0,
                 min_visible=1.0, separation=1.1, forms={"attr": 0.8, "extreme": 0.1, "relation": 0.1}),
    "medium": dict(n_objects=(1, 4), p_small=0.35, r_small=(0.08, 0.11), r_large=(0.14, 0.21),
                   colours=("red", "green", "blue", "yellow", "orange", "purple", "pink", "white"),
                   distinct_colours=False, distinct_shapes=False, backgrounds=("plain", "gradient", "noise"),
                   fills=("solid", "shaded"), colour_jitter=12, min_visible=0.75, separation=0.6,
                   forms={"attr": 0.5, "extreme": 0.25, "relation": 0.25}),
    "hard": dict(n_objects=(1, 6), p_small=0.45, r_small=(0.06, 0.09), r_large=(0.12, 0.2),
                 colours=tuple(COLOURS), distinct_colours=False, distinct_shapes=False,
                 backgrounds=("plain", "gradient", "noise", "stripes", "checker"),
                 fills=("solid", "shaded", "stripes", "noise"), colour_jitter=20, min_visible=0.5, separation=0.3,
                 forms={"attr": 0.4, "extreme": 0.3, "relation": 0.3}),
    # Parts: objects made of 2-4 parts (sectors or bands) in distinct colours, so that one click grows one
    # part and the weightless segmenter needs several clicks; neighbours may touch and share part colours,
    # noisy fills and backgrounds, partial occlusion, thin bars. ``colour`` (what queries name) is the
    # colour of the object's largest part. ``parts``: number of parts (inclusive range), layouts, and the
    # smallest share of the object's area a part may take.
    "parts": dict(n_objects=(1, 4), p_small=0.3, r_small=(0.09, 0.12), r_large=(0.15, 0.22),
                  colours=("red", "green", "blue", "yellow", "orange", "purple", "pink", "white"),
                  distinct_colours=False, distinct_shapes=False, backgrounds=("plain", "gradient", "noise"),
                  fills=("solid", "noise"), colour_jitter=10, min_visible=0.7, separation=0.5,
                  parts=dict(n=(2, 4), layouts=("sectors", "bands"), min_share=0.15),
                  forms={"attr": 0.6, "extreme": 0.2, "relation": 0.2}),
    # Mixed: each image draws its tier from ``mix`` (weights), on a seeded stream of its own, so one data set
    # holds easy scenes (where tiny policies learn to localise) and part-based ones (where the segmenter
    # needs several clicks). The image's entry in instances.json names its tier (``difficulty``).
    "mixed": dict(mix={"easy": 0.5, "parts": 0.5}),
}
MIN_VISIBLE_PX = 12          # an object whose visible part is smaller is not placed


# ----------------------------------------------------------------------------- drawing

def _shape_parts(shape: str, r: float, theta: float, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """Polygons (vertices relative to the centre, (x, y)) with a fill value: 1 draws, 0 erases."""
    def ngon(n: int, rad: float, phase: float = 0.0) -> np.ndarray:
        a = phase + np.arange(n) * 2 * np.pi / n
        return np.stack([rad * np.cos(a), rad * np.sin(a)], 1)

    def rot(p: np.ndarray) -> np.ndarray:
        c, s = math.cos(theta), math.sin(theta)
        return p @ np.array([[c, s], [-s, c]])

    n_circ = max(24, int(r * 1.5))
    if shape == "circle":
        return [(ngon(n_circ, r), 1)]
    if shape == "ring":
        return [(ngon(n_circ, r), 1), (ngon(n_circ, 0.5 * r), 0)]
    if shape == "square":
        return [(rot(ngon(4, r, np.pi / 4)), 1)]
    if shape == "triangle":
        return [(rot(ngon(3, r, -np.pi / 2)), 1)]
    if shape == "hexagon":
        return [(rot(ngon(6, r)), 1)]
    if shape == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        return [(rot(np.stack([rad * np.cos(a), rad * np.sin(a)], 1)), 1)]
    if shape == "crescent":
        off = rot(np.array([[0.45 * r, 0.0]]))[0]
        return [(ngon(n_circ, r), 1), (ngon(n_circ, 0.85 * r) + off, 0)]
    if shape == "cross":
        w = 0.32 * r
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r), (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        return [(rot(np.array(pts, float)), 1)]
    if shape == "bar":
        w = max(1.6, 0.16 * r)
        return [(rot(np.array([(-r, -w), (r, -w), (r, w), (-r, w)], float)), 1)]
    if shape == "blob":
        phi = np.arange(28) * 2 * np.pi / 28
        rad = np.ones_like(phi)
        for k in (2, 3, 4):
            rad += rng.uniform(0.06, 0.18) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        rad = r * rad / rad.max()
        return [(np.stack([rad * np.cos(phi), rad * np.sin(phi)], 1), 1)]
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _raster(parts: list[tuple[np.ndarray, int]], cx: float, cy: float, size: int) -> np.ndarray:
    canvas = np.zeros((size, size), np.uint8)
    for pts, value in parts:
        poly = np.round(pts + (cx, cy)).astype(np.int32)
        cv2.fillPoly(canvas, [poly], int(value), lineType=cv2.LINE_8)  # no anti-aliasing: mask = drawn pixels
    return canvas.astype(bool)


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(95, 165) + rng.uniform(-15, 15, 3)
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    if kind == "plain":
        return img
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5))[..., None]
    img += ramp * rng.uniform(25, 50, 3)
    if kind == "noise":
        low = rng.normal(0, 1, (8, 8, 3)).astype(np.float32)
        img += cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC) * 10
    elif kind == "stripes":
        f = rng.uniform(6, 14)
        b = rng.uniform(0, np.pi)
        img += (np.sin(2 * np.pi * f * (np.cos(b) * xx + np.sin(b) * yy)) * 10)[..., None]
    elif kind == "checker":
        n = int(rng.integers(6, 12))
        img += (((xx * n).astype(int) + (yy * n).astype(int)) % 2 * 16 - 8)[..., None]
    return img


def _paint(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray, fill: str, rng: np.random.Generator) -> None:
    ys, xs = np.nonzero(mask)
    col = np.broadcast_to(rgb.astype(np.float32), (ys.size, 3))
    if fill == "shaded":
        a = rng.uniform(0, 2 * np.pi)
        t = np.cos(a) * xs + np.sin(a) * ys
        t = (t - t.min()) / max(1.0, float(np.ptp(t)))
        col = col * (0.8 + 0.35 * t)[:, None]
    elif fill == "stripes":
        a, f = rng.uniform(0, np.pi), rng.uniform(0.25, 0.5)
        col = col * (1 + 0.15 * np.sin(f * (np.cos(a) * xs + np.sin(a) * ys)))[:, None]
    elif fill == "noise":
        col = col * (1 + rng.normal(0, 0.07, ys.size))[:, None]
    img[ys, xs] = col


def _split_parts(m: np.ndarray, cx: float, cy: float, spec: dict, rng: np.random.Generator) -> list[np.ndarray]:
    """Cut mask ``m`` into ``spec["n"]`` parts (largest first) that tile it exactly.

    "sectors" cut by angle around (cx, cy) from a random start, "bands" by position along a random
    direction. Each part's planned share of the area is at least ``spec["min_share"]``; the cuts are
    thresholds on the angle / position, so pixels on a cut line all go to the same part.
    """
    lo, hi = spec["n"]
    k = int(rng.integers(lo, hi + 1))
    shares = spec["min_share"] + (1 - k * spec["min_share"]) * rng.dirichlet(np.full(k, 3.0))
    ys, xs = np.nonzero(m)
    if str(rng.choice(spec["layouts"])) == "sectors":
        t = (np.arctan2(ys - cy, xs - cx) - rng.uniform(0, 2 * np.pi)) % (2 * np.pi)
    else:
        b = rng.uniform(0, np.pi)
        t = np.cos(b) * xs + np.sin(b) * ys
    ranks = np.minimum((np.cumsum(shares)[:-1] * xs.size).astype(int), xs.size - 1)
    which = np.searchsorted(np.sort(t)[ranks], t, side="right")
    parts = []
    for j in range(k):
        part = np.zeros_like(m)
        part[ys[which == j], xs[which == j]] = True
        if part.any():
            parts.append(part)
    return sorted(parts, key=lambda p: -int(p.sum()))


def _paint_parts(img: np.ndarray, m: np.ndarray, cx: float, cy: float, colour: str, cfg: dict,
                 rng: np.random.Generator) -> list[dict]:
    """Paint an object of several parts: the largest takes ``colour``, the others distinct colours of the tier.
    Returns the parts as ``{"colour", "mask"}`` (their masks tile ``m``)."""
    masks = _split_parts(m, cx, cy, cfg["parts"], rng)
    others = [str(c) for c in rng.permutation([c for c in cfg["colours"] if c != colour])]
    fill = str(rng.choice(cfg["fills"]))
    parts = []
    for name, pm in zip([colour] + others, masks):
        rgb = np.array(COLOURS[name], np.float32) + rng.uniform(-1, 1, 3) * cfg["colour_jitter"]
        _paint(img, pm, rgb, fill, rng)
        parts.append({"colour": name, "mask": pm})
    return parts


def make_scene(rng: np.random.Generator, image_size: int, cfg: dict, shapes: tuple[str, ...]) -> tuple[np.ndarray, list[dict]]:
    """Draw one scene. Returns the uint8 RGB image and its objects (attributes + ``mask`` of visible pixels;
    with ``cfg["parts"]`` also ``parts``: ``{"colour", "mask"}`` per part, largest first, masks tiling ``mask``)."""
    S = image_size
    img = _background(str(rng.choice(cfg["backgrounds"])), S, rng)
    lo, hi = cfg["n_objects"]
    n = int(rng.integers(lo, hi + 1))
    colours = list(cfg["colours"])
    if cfg["distinct_colours"]:
        colours = list(rng.permutation(colours))
    shape_pool = list(rng.permutation(shapes)) if cfg["distinct_shapes"] else list(shapes)
    objects: list[dict] = []
    for k in range(n):
        if cfg["distinct_colours"] and k >= len(colours) or cfg["distinct_shapes"] and k >= len(shape_pool):
            break
        shape = shape_pool[k] if cfg["distinct_shapes"] else str(rng.choice(shape_pool))
        colour = colours[k] if cfg["distinct_colours"] else str(rng.choice(colours))
        size = "small" if rng.random() < cfg["p_small"] else "large"
        r = float(rng.uniform(*cfg["r_" + size])) * S
        theta = float(rng.uniform(0, 2 * np.pi))
        parts = _shape_parts(shape, r, theta, rng)
        placed = None
        for _ in range(30):
            cx, cy = rng.uniform(r + 1, S - 2 - r, 2)
            ok = True
            for o in objects:
                d = math.hypot(cx - o["center"][0], cy - o["center"][1])
                need = (r + o["radius"]) * (1.0 if o["colour"] == colour else cfg["separation"]) + (3 if o["colour"] == colour else 0)
                if d < need:
                    ok = False
                    break
            if not ok:
                continue
            m = _raster(parts, cx, cy, S)
            if m.sum() < MIN_VISIBLE_PX:
                continue
            for o in objects:
                vis = int((o["mask"] & ~m).sum())
                if vis < cfg["min_visible"] * o["full_area"] or vis < MIN_VISIBLE_PX:
                    ok = False
                    break
            if ok:
                placed = (cx, cy, m)
                break
        if placed is None:
            continue
        cx, cy, m = placed
        for o in objects:
            o["mask"] &= ~m
            for part in o.get("parts", ()):
                part["mask"] &= ~m
        obj = {"shape": shape, "colour": colour, "size": size, "center": [round(float(cx), 2), round(float(cy), 2)],
               "radius": round(r, 2), "rotation_deg": round(math.degrees(theta) % 360, 1),
               "corners": CORNERS[shape], "z": len(objects), "mask": m, "full_area": int(m.sum())}
        if "parts" in cfg:
            obj["parts"] = _paint_parts(img, m, cx, cy, colour, cfg, rng)
        else:
            rgb = np.array(COLOURS[colour], np.float32) + rng.uniform(-1, 1, 3) * cfg["colour_jitter"]
            _paint(img, m, rgb, str(rng.choice(cfg["fills"])), rng)
        objects.append(obj)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects
