"""SynthRef: a procedural referring / reasoning segmentation dataset.

The embedded stand-in for RefCOCO/+/g (referring expressions), ReasonSeg
(implicit "reasoning" queries, LISA/Seg-Zero), VisionReasoner's multi-object
queries and StAR's empty queries (ReasonSeg-X). It writes the COCO-style
folder that :func:`seglib.data.load_samples` reads (layout in
:mod:`seglib.data`): ``images/*.png``, ``instances.json`` (visible-part masks
as exact pixel-edge polygons), ``refs.json`` (refer / gRefCOCO fields plus
``ann_ids`` 0..n, ``kind`` and the query program ``spec`` each sentence was
checked with), and the two files the standard APIs read:

- ``refs(synthref).p``: the single-target refs for the refer API
  (lichengunc/refer ``REFER``): ``getRefIds``, ``getAnnIds``, ``loadRefs``,
  ``getRefBox`` and ``getMask`` work on them;
- ``grefs(synthref).json``: every ref for gRefCOCO's ``G_REFER`` (multi-target
  ``ann_id`` lists, no-target ``ann_id == [-1]`` with ``no_target`` true);
- ``instances.json`` also reads with pycocotools ``COCO`` / ``annToMask``.

Both APIs look in ``<data_root>/<dataset>/`` and accept only their own dataset
names, so point them at a folder that links the SynthRef folder under such a
name, e.g. ``ln -s <run>/data view/refcoco`` then
``REFER("view", "refcoco", "synthref")``; ``view/grefcoco`` and
``G_REFER("view", "grefcoco", "synthref")`` likewise. On disk the held-out
reasoning split is named ``"reasoning"`` so that refer's ``split="test"``
(which matches any name containing "test") leaves it out; seglib calls it
``"test_reasoning"``.

Scenes: a plain, gradient or textured background and 1-6 objects drawn from
ten shapes (convex: circle, square, triangle, hexagon; with a hole: ring;
concave or thin: star, crescent, cross, bar; irregular: blob) in several
colours, sizes, rotations and fills. Later objects occlude earlier ones; an
annotation holds only the visible pixels, and placements that would leave an
object mostly hidden are rejected. Masks are drawn without anti-aliasing and
the image takes the object's colour on exactly the mask's pixels.

Queries are programs over the scene (shape / colour / size filters, an
extreme position, a relation to a landmark, implicit properties) rendered to
text; each is evaluated against the scene and kept only if it selects exactly
its targets (ambiguous spatial cases are rejected). ``reasoning`` queries use
properties that the other kinds never name (holes, corners, rolling, things a
colour looks like) and by default appear only in the held-out
``test_reasoning`` split. Splits are disjoint by image. The same arguments
give byte-identical files.
"""
from __future__ import annotations

import json
import math
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seglib.data import file_split, mask_to_pixel_polygons, refer_ref_fields, write_refer_files

REFER_SPLIT_BY = "synthref"  # the splitBy under which REFER / G_REFER find refs(synthref).p / grefs(synthref).json

SHAPES = ("circle", "square", "triangle", "hexagon", "ring", "star", "crescent", "cross", "bar", "blob")
PLURAL = {"cross": "crosses"}
CORNERS = {"circle": 0, "ring": 0, "blob": 0, "crescent": 2, "triangle": 3, "square": 4, "bar": 4,
           "hexagon": 6, "star": 10, "cross": 12}
COLOURS = {
    "red": (215, 40, 40), "green": (50, 165, 60), "blue": (40, 80, 215), "yellow": (235, 205, 40),
    "orange": (240, 135, 30), "purple": (135, 60, 180), "pink": (240, 125, 185), "cyan": (40, 190, 210),
    "white": (240, 240, 240), "black": (35, 35, 35),
}
SPLITS = ("train", "val", "test", "test_reasoning")
KINDS = ("referring", "reasoning", "multi", "empty")

# Implicit properties for reasoning queries: name -> (test on an object, singular clause, plural clause or None).
# None of these words appears in referring/multi/empty sentences.
PROPERTIES: dict[str, tuple[Any, str, str | None]] = {
    "hole": (lambda o: o["shape"] == "ring", "with a hole through it", "with a hole through them"),
    "rollable": (lambda o: o["shape"] in ("circle", "ring"), "that you could roll across a table",
                 "that you could roll across a table"),
    "no_corners": (lambda o: o["shape"] in ("circle", "ring", "blob"), "without any corners", "without any corners"),
    "three_corners": (lambda o: o["shape"] == "triangle", "with exactly three corners", None),
    "six_sides": (lambda o: o["shape"] == "hexagon", "with six equal sides, like a honeycomb cell", None),
    "five_points": (lambda o: o["shape"] == "star", "with five pointed tips", None),
    "moon": (lambda o: o["shape"] == "crescent", "that looks like a thin slice of the moon", None),
    "plus": (lambda o: o["shape"] == "cross", "that looks like a plus sign", None),
    "stick": (lambda o: o["shape"] == "bar", "that is long and thin like a stick", None),
    "irregular": (lambda o: o["shape"] == "blob", "with an irregular, wobbly outline", None),
    "sky": (lambda o: o["colour"] == "blue", "coloured like a clear sky", "coloured like a clear sky"),
    "grass": (lambda o: o["colour"] == "green", "coloured like fresh grass", "coloured like fresh grass"),
    "tomato": (lambda o: o["colour"] == "red", "coloured like a ripe tomato", "coloured like ripe tomatoes"),
    "banana": (lambda o: o["colour"] == "yellow", "coloured like a ripe banana", "coloured like ripe bananas"),
    "pumpkin": (lambda o: o["colour"] == "orange", "coloured like a pumpkin", "coloured like pumpkins"),
    "plum": (lambda o: o["colour"] == "purple", "coloured like a plum", "coloured like plums"),
    "flamingo": (lambda o: o["colour"] == "pink", "coloured like a flamingo", "coloured like flamingos"),
    "snow": (lambda o: o["colour"] == "white", "coloured like fresh snow", "coloured like fresh snow"),
    "coal": (lambda o: o["colour"] == "black", "coloured like coal", "coloured like coal"),
}
SCENE_PROPERTIES = {"most_corners": "with the most corners"}  # relative to the scene

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
}
MIN_VISIBLE_PX = 12          # an object whose visible part is smaller is not placed
SPATIAL_MARGIN = 0.06        # × image size: closer centres make "left of"/"leftmost" ambiguous → rejected
EXTREMES = {"left": (0, -1), "right": (0, 1), "top": (1, -1), "bottom": (1, 1)}
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


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


def make_scene(rng: np.random.Generator, image_size: int, cfg: dict, shapes: tuple[str, ...]) -> tuple[np.ndarray, list[dict]]:
    """Draw one scene. Returns the uint8 RGB image and its objects (attributes + ``mask`` of visible pixels)."""
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
        rgb = np.array(COLOURS[colour], np.float32) + rng.uniform(-1, 1, 3) * cfg["colour_jitter"]
        _paint(img, m, rgb, str(rng.choice(cfg["fills"])), rng)
        objects.append({"shape": shape, "colour": colour, "size": size, "center": [round(float(cx), 2), round(float(cy), 2)],
                        "radius": round(r, 2), "rotation_deg": round(math.degrees(theta) % 360, 1),
                        "corners": CORNERS[shape], "z": len(objects), "mask": m, "full_area": int(m.sum())})
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects


# ----------------------------------------------------------------------------- query programs

def _matches(o: dict, spec: dict) -> bool:
    for key in ("shape", "colour", "size"):
        v = spec.get(key)
        if v is not None and o[key] != v:
            return False
    return all(PROPERTIES[p][0](o) for p in spec.get("properties", ()))


def evaluate(objects: list[dict], spec: dict, image_size: int) -> set[int] | None:
    """Indices of the objects ``spec`` selects, or None if a spatial part is ambiguous.

    ``spec`` keys: ``shape``, ``colour``, ``size`` (filters), ``properties`` (implicit filters),
    ``scene_property`` ("most_corners"), ``extreme`` ("left" | "right" | "top" | "bottom":
    the unique extreme candidate, at least ``SPATIAL_MARGIN`` × size ahead of the next),
    ``relation`` ({"rel": "left of" | "right of" | "above" | "below", "landmark": index}:
    candidates whose centre lies beyond the landmark's centre along that axis; a candidate
    within the margin of it makes the query ambiguous). Positions are the objects' drawn centres.
    """
    cand = [i for i, o in enumerate(objects) if _matches(o, spec)]
    if spec.get("scene_property") == "most_corners":
        c = sorted((o["corners"] for o in objects), reverse=True)
        if len(c) < 2 or c[0] < 3 or c[0] == c[1]:
            return None
        cand = [i for i in cand if objects[i]["corners"] == c[0]]
    return _spatial(objects, cand, spec, image_size)


def _spatial(objects: list[dict], cand: list[int], spec: dict, image_size: int) -> set[int] | None:
    margin = SPATIAL_MARGIN * image_size
    rel = spec.get("relation")
    if rel:
        axis, sign = RELATIONS[rel["rel"]]
        ref = objects[rel["landmark"]]["center"][axis]
        kept = []
        for i in cand:
            if i == rel["landmark"]:
                continue
            d = sign * (objects[i]["center"][axis] - ref)
            if abs(d) <= margin:
                return None
            if d > 0:
                kept.append(i)
        cand = kept
    if spec.get("extreme"):
        if len(cand) < 2:
            return None
        axis, sign = EXTREMES[spec["extreme"]]
        vals = sorted(((sign * objects[i]["center"][axis], i) for i in cand), reverse=True)
        if vals[0][0] - vals[1][0] < margin:
            return None
        cand = [vals[0][1]]
    return set(cand)


def _noun(spec: dict, plural: bool, rng: np.random.Generator) -> str:
    words = [w for w in (spec.get("size"), spec.get("colour")) if w]
    if spec.get("shape"):
        noun = PLURAL.get(spec["shape"], spec["shape"] + "s") if plural else spec["shape"]
    else:
        noun = "shapes" if plural else ("shape" if not words or rng.random() < 0.6 else "one")
    return " ".join(words + [noun])


_EXTREME_TEXT = {
    "left": ("the leftmost {n}", "the {n} on the far left", "the {n} furthest to the left"),
    "right": ("the rightmost {n}", "the {n} on the far right", "the {n} furthest to the right"),
    "top": ("the topmost {n}", "the {n} at the top", "the highest {n}"),
    "bottom": ("the lowest {n}", "the {n} at the bottom", "the bottommost {n}"),
}
_REL_TEXT = {"left of": ("left of", "to the left of"), "right of": ("right of", "to the right of"),
             "above": ("above",), "below": ("below", "under")}


def render(spec: dict, objects: list[dict], rng: np.random.Generator) -> str:
    """The sentence for a query program (kind decides singular/plural wording)."""
    kind = spec["kind"]
    plural = kind == "multi" or (kind == "reasoning" and spec.get("plural", False))
    if kind == "reasoning":
        clauses = [PROPERTIES[p][2 if plural else 1] for p in spec.get("properties", ())]
        if spec.get("scene_property"):
            clauses.append(SCENE_PROPERTIES[spec["scene_property"]])
        head = "all the shapes" if plural else str(rng.choice(["the shape", "the one", "the object"]))
        return head + " " + " and ".join(clauses)
    n = _noun(spec, plural, rng)
    if plural:
        text = f"both {n}" if spec.get("n_targets") == 2 and rng.random() < 0.3 else f"all the {n}"
    elif spec.get("extreme"):
        text = str(rng.choice(_EXTREME_TEXT[spec["extreme"]])).format(n=n)
    else:
        text = f"the {n}"
    rel = spec.get("relation")
    if rel:
        text += f" {rng.choice(_REL_TEXT[rel['rel']])} the {rel['landmark_text']}"
    return text


def _attr_specs(o: dict | None) -> list[dict]:
    """All subsets of {shape, colour, size} filled from ``o`` (None = no filter)."""
    keys = ("shape", "colour", "size")
    out = []
    for k in range(4):
        for sub in combinations(keys, k):
            out.append({key: o[key] for key in sub} if o else {})
    return out


def _landmark_text(objects: list[dict], j: int, S: int) -> str | None:
    for spec in ({"shape": objects[j]["shape"]}, {"colour": objects[j]["colour"]},
                 {"colour": objects[j]["colour"], "shape": objects[j]["shape"]},
                 {"size": objects[j]["size"], "colour": objects[j]["colour"], "shape": objects[j]["shape"]}):
        if evaluate(objects, spec, S) == {j}:
            words = [w for w in (spec.get("size"), spec.get("colour")) if w]
            return " ".join(words + [spec.get("shape", "shape")])
    return None


def referring_spec(objects: list[dict], t: int, S: int, rng: np.random.Generator,
                   landmark_texts: list[str | None] | None = None, weights: dict[str, float] | None = None) -> dict | None:
    """A program selecting exactly object ``t``: attributes, an extreme position or a relation.

    ``weights`` sets how often each form is chosen among those that single ``t`` out.
    """
    if landmark_texts is None:
        landmark_texts = [_landmark_text(objects, j, S) for j in range(len(objects))]
    forms: dict[str, list[dict]] = {"attr": [], "extreme": [], "relation": []}
    for spec in _attr_specs(objects[t]):
        cand = [i for i, o in enumerate(objects) if _matches(o, spec)]
        if cand == [t]:
            forms["attr"].append(spec)
        if len(cand) >= 2:
            for ex in EXTREMES:
                s = {**spec, "extreme": ex}
                if _spatial(objects, cand, s, S) == {t}:
                    forms["extreme"].append(s)
        for j, lt in enumerate(landmark_texts):
            if j == t or lt is None:
                continue
            for rel in RELATIONS:
                s = {**spec, "relation": {"rel": rel, "landmark": j, "landmark_text": lt}}
                if _spatial(objects, cand, s, S) == {t}:
                    forms["relation"].append(s)
    weights = weights or {"attr": 0.5, "extreme": 0.25, "relation": 0.25}
    avail = [f for f in forms if forms[f] and weights.get(f, 0) > 0]
    if not avail:
        return None
    p = np.array([weights[f] for f in avail])
    form = avail[int(rng.choice(len(avail), p=p / p.sum()))]
    return dict(forms[form][int(rng.integers(len(forms[form])))])


def multi_spec(objects: list[dict], S: int, rng: np.random.Generator) -> dict | None:
    found: dict[tuple, dict] = {}
    for o in objects:
        for spec in _attr_specs(o)[1:]:
            sel = evaluate(objects, spec, S)
            if sel and len(sel) >= 2:
                found[tuple(sorted(spec.items()))] = spec
    for j in range(len(objects)):
        lt = _landmark_text(objects, j, S)
        for rel in RELATIONS:
            s = {"relation": {"rel": rel, "landmark": j, "landmark_text": lt}}
            sel = evaluate(objects, s, S) if lt else None
            if sel and len(sel) >= 2:
                found[("rel", rel, j)] = s
    if not found:
        return None
    keys = sorted(found, key=str)
    return dict(found[keys[int(rng.integers(len(keys)))]])


def empty_spec(objects: list[dict], S: int, rng: np.random.Generator, colours: tuple[str, ...],
               shapes: tuple[str, ...]) -> dict | None:
    """A near-miss description: a colour or shape that is present, in a combination that is not."""
    present_c = {o["colour"] for o in objects}
    present_s = {o["shape"] for o in objects}
    cands = []
    for c in colours:
        for s in shapes:
            if (c in present_c or s in present_s) and evaluate(objects, {"colour": c, "shape": s}, S) == set():
                cands.append({"colour": c, "shape": s})
    for s in sorted(present_s):
        for size in ("small", "large"):
            if evaluate(objects, {"size": size, "shape": s}, S) == set():
                cands.append({"size": size, "shape": s})
    if not cands:
        return None
    return dict(cands[int(rng.integers(len(cands)))])


def reasoning_specs(objects: list[dict], S: int) -> list[dict]:
    """All implicit-property programs that select at least one object without ambiguity."""
    out = []
    if evaluate(objects, {"scene_property": "most_corners"}, S):
        out.append({"scene_property": "most_corners"})
    colour_props = [p for p in PROPERTIES if p in ("sky", "grass", "tomato", "banana", "pumpkin", "plum",
                                                   "flamingo", "snow", "coal")]
    shape_props = [p for p in PROPERTIES if p not in colour_props]
    for p in PROPERTIES:
        sel = evaluate(objects, {"properties": [p]}, S)
        if sel and (len(sel) == 1 or PROPERTIES[p][2]):
            out.append({"properties": [p], "plural": len(sel) > 1})
    for p in shape_props:
        for q in colour_props:
            sel = evaluate(objects, {"properties": [p, q]}, S)
            if sel and len(sel) == 1 and not evaluate(objects, {"properties": [p]}, S) == sel:
                out.append({"properties": [p, q], "plural": False})
    return out


# ----------------------------------------------------------------------------- dataset

def _split_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    names = [s for s in fractions if fractions[s] > 0]
    total = sum(fractions[s] for s in names)
    raw = {s: n * fractions[s] / total for s in names}
    sizes = {s: int(math.floor(raw[s])) for s in names}
    for s in sorted(names, key=lambda s: (-(raw[s] - sizes[s]), names.index(s)))[: n - sum(sizes.values())]:
        sizes[s] += 1
    if n >= len(names):  # every requested split gets at least one image
        for s in names:
            while sizes[s] == 0:
                donor = max(sizes, key=lambda k: sizes[k])
                sizes[donor] -= 1
                sizes[s] += 1
    return sizes


def _clean_spec(spec: dict, objects: list[dict], ann_ids: list[int]) -> dict:
    out = {k: v for k, v in spec.items() if k not in ("relation",)}
    if spec.get("relation"):
        out["relation"] = {"rel": spec["relation"]["rel"], "landmark_ann_id": ann_ids[spec["relation"]["landmark"]],
                           "landmark_text": spec["relation"]["landmark_text"]}
    return out


def generate(
    out_dir: str | Path,
    n_images: int,
    seed: int = 0,
    image_size: int = 112,
    shapes: tuple[str, ...] | list[str] = SHAPES,
    max_objects: int | None = None,
    difficulty: str = "easy",
    kinds: tuple[str, ...] | list[str] = KINDS,
    split_fractions: dict[str, float] | None = None,
    reasoning_in_train: bool = False,
    refs_per_image: int = 4,
    p_multi: float = 0.5,
    p_empty: float = 0.35,
    referring_forms: dict[str, float] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Write a SynthRef dataset to ``out_dir`` and return a summary.

    ``image_size`` is the square side in px. ``difficulty`` is "easy" | "medium" | "hard" (see
    ``DIFFICULTIES``); ``max_objects`` caps its object count. ``kinds`` limits the query kinds.
    ``split_fractions`` maps train/val/test/test_reasoning to shares of the images (default
    0.7/0.1/0.1/0.1). ``test_reasoning`` images carry only reasoning queries; other splits carry
    none unless ``reasoning_in_train``. Each image gets up to ``refs_per_image`` refs: one referring
    ref per object (shuffled), a multi ref with probability ``p_multi`` and an empty one with
    ``p_empty`` when such a query exists. ``referring_forms`` overrides the difficulty's weights of
    referring forms, e.g. ``{"attr": 1.0}`` for attribute-only referring queries (no "leftmost",
    no "left of the ring"). Refuses a folder that already holds a dataset.
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty {difficulty!r} unknown; choose from {sorted(DIFFICULTIES)}")
    shapes = tuple(shapes)
    bad = [s for s in shapes if s not in SHAPES] + [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown shape or kind {bad}; shapes: {SHAPES}, kinds: {KINDS}")
    cfg = dict(DIFFICULTIES[difficulty])
    if referring_forms is not None:
        cfg["forms"] = dict(referring_forms)
    if max_objects is not None:
        cfg["n_objects"] = (min(cfg["n_objects"][0], max_objects), max_objects)
    fractions = dict(split_fractions or {"train": 0.7, "val": 0.1, "test": 0.1, "test_reasoning": 0.1})
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; known: {SPLITS}")
    if "reasoning" not in kinds:
        fractions["test_reasoning"] = 0.0
    if (out_dir / "refs.json").exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset; choose a new folder")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)

    sizes = _split_sizes(n_images, fractions)
    order = np.random.default_rng([seed, 1_000_003]).permutation(n_images)
    split_of = np.empty(n_images, dtype=object)
    start = 0
    for s in SPLITS:
        split_of[order[start:start + sizes.get(s, 0)]] = s
        start += sizes.get(s, 0)

    images, annotations, refs = [], [], []
    split_kind: list[tuple[str, str]] = []  # seglib's split name and kind of each ref
    cat_ids = {s: i + 1 for i, s in enumerate(SHAPES)}
    it = range(n_images)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="SynthRef")
    for i in it:
        rng = np.random.default_rng([seed, i])
        split = str(split_of[i])
        reasoning_here = "reasoning" in kinds and (split == "test_reasoning" or reasoning_in_train)
        specs: list = []
        for _attempt in range(50):  # redraw a scene that allows no query of the kinds this split needs
            img, objects = make_scene(rng, image_size, cfg, shapes)
            if not objects:
                continue
            specs = _image_specs(objects, image_size, split, kinds, reasoning_here, refs_per_image, p_multi,
                                 p_empty, cfg, shapes, rng)
            if specs:
                break
        if not objects:
            raise ValueError(f"SynthRef could not place any object on a {image_size} px image; "
                             f"use a larger image_size (>= 48 px)")
        image_id = i + 1
        file_name = f"{image_id:06d}.png"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
        (out_dir / "images" / file_name).write_bytes(buf.tobytes())
        images.append({"id": image_id, "file_name": file_name, "height": image_size, "width": image_size,
                       "split": file_split(split)})
        ann_ids = []
        for o in objects:
            ann_id = len(annotations) + 1
            ann_ids.append(ann_id)
            ys, xs = np.nonzero(o["mask"])
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": cat_ids[o["shape"]], "iscrowd": 0,
                "segmentation": mask_to_pixel_polygons(o["mask"]), "area": int(xs.size),
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                "attributes": {k: o[k] for k in ("shape", "colour", "size", "center", "radius", "rotation_deg",
                                                 "corners", "z", "full_area")},
            })
        for spec, targets in specs:
            ref_id = len(refs) + 1
            text = render(spec, objects, rng)
            tids = [ann_ids[t] for t in sorted(targets)]
            refs.append({"ref_id": ref_id, "image_id": image_id, "ann_ids": tids,
                         **refer_ref_fields(tids, [cat_ids[objects[t]["shape"]] for t in sorted(targets)]),
                         "split": file_split(split), "kind": spec["kind"], "spec": _clean_spec(spec, objects, ann_ids),
                         "sentences": [{"sent": text, "raw": text, "sent_id": ref_id, "tokens": text.split()}],
                         "sent_ids": [ref_id], "file_name": file_name})
            split_kind.append((split, spec["kind"]))
    instances = {
        "info": {"description": "SynthRef", "seed": seed, "difficulty": difficulty, "image_size": image_size},
        "images": images, "annotations": annotations,
        "categories": [{"id": cat_ids[s], "name": s, "supercategory": "shape"} for s in SHAPES],
    }
    settings = {"n_images": n_images, "seed": seed, "image_size": image_size, "shapes": list(shapes),
                "max_objects": max_objects, "difficulty": difficulty, "kinds": list(kinds),
                "split_fractions": fractions, "reasoning_in_train": reasoning_in_train,
                "refs_per_image": refs_per_image, "p_multi": p_multi, "p_empty": p_empty,
                "referring_forms": cfg["forms"]}
    _dump(out_dir / "instances.json", instances)
    _dump(out_dir / "refs.json", refs)
    write_refer_files(out_dir, refs, REFER_SPLIT_BY)
    _dump(out_dir / "synthref.json", settings)
    counts: dict[str, dict[str, int]] = {}
    for split, kind in split_kind:
        counts.setdefault(split, {}).setdefault(kind, 0)
        counts[split][kind] += 1
    return {"out_dir": str(out_dir), "n_images": n_images, "n_annotations": len(annotations), "n_refs": len(refs),
            "images_per_split": {s: int(sizes.get(s, 0)) for s in SPLITS}, "refs_per_split_kind": counts,
            "seconds": round(time.time() - t0, 2)}


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, separators=(",", ":")))


def _image_specs(objects, S, split, kinds, reasoning_here, budget, p_multi, p_empty, cfg, shapes, rng):
    """(spec, target indices) pairs for one image, each checked against the scene."""
    out: list[tuple[dict, set[int]]] = []
    if split == "test_reasoning" or (reasoning_here and rng.random() < 0.3):
        cands = reasoning_specs(objects, S) if reasoning_here else []
        seen = set()
        for k in rng.permutation(len(cands)):
            spec = {**cands[int(k)], "kind": "reasoning"}
            sel = evaluate(objects, spec, S)
            key = tuple(sorted(sel))
            if key in seen:
                continue
            seen.add(key)
            out.append((spec, sel))
            if len(out) >= (budget if split == "test_reasoning" else 1):
                break
        if split == "test_reasoning":
            return out
    if "referring" in kinds:
        landmark_texts = [_landmark_text(objects, j, S) for j in range(len(objects))]
        for t in rng.permutation(len(objects)):
            if len(out) >= budget:
                break
            spec = referring_spec(objects, int(t), S, rng, landmark_texts, cfg.get("forms"))
            if spec is not None:
                out.append(({**spec, "kind": "referring"}, {int(t)}))
    if "multi" in kinds and len(out) < budget + 1 and rng.random() < p_multi:
        spec = multi_spec(objects, S, rng)
        if spec is not None:
            sel = evaluate(objects, spec, S)
            out.append(({**spec, "kind": "multi", "n_targets": len(sel)}, sel))
    if "empty" in kinds and rng.random() < p_empty:
        spec = empty_spec(objects, S, rng, tuple(cfg["colours"]), shapes)
        if spec is not None:
            out.append(({**spec, "kind": "empty"}, set()))
    return out



def label_maps(data_dir: str | Path, image_id: int) -> dict[str, np.ndarray]:
    """Dense per-pixel labels of one SynthRef image, from its annotations' attributes.

    Returns int16 (H, W) maps ``shape`` (0 = background, else 1 + index in ``SHAPES``),
    ``colour`` (0, else 1 + index in ``COLOURS``) and ``instance`` (0, else the annotation id):
    targets for a dense auxiliary loss or a vision-tower pre-training stage.
    Reads ``instances.json`` each call; cache the result when calling per image in a loop.
    """
    from seglib.data import rle_to_mask, segmentation_to_rle

    inst = json.loads((Path(data_dir) / "instances.json").read_text())
    im = next((i for i in inst["images"] if i["id"] == image_id), None)
    if im is None:
        raise KeyError(f"{Path(data_dir) / 'instances.json'}: no image {image_id}")
    out = {k: np.zeros((im["height"], im["width"]), np.int16) for k in ("shape", "colour", "instance")}
    colour_names = list(COLOURS)
    for a in inst["annotations"]:
        if a["image_id"] != image_id:
            continue
        m = rle_to_mask(segmentation_to_rle(a["segmentation"], im["height"], im["width"], f"annotation {a['id']}"))
        out["shape"][m] = SHAPES.index(a["attributes"]["shape"]) + 1
        out["colour"][m] = colour_names.index(a["attributes"]["colour"]) + 1
        out["instance"][m] = a["id"]
    return out


__all__ = ["COLOURS", "DIFFICULTIES", "KINDS", "PROPERTIES", "REFER_SPLIT_BY", "SHAPES", "SPLITS", "evaluate", "generate", "label_maps", "make_scene"]
