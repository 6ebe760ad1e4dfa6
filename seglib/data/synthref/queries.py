"""SynthRef queries: programs over a scene, evaluated against it, and rendered to text.

A program filters by shape / colour / size, may take an extreme position or a
relation to a landmark, or names implicit properties (reasoning queries). Each
is evaluated against the scene and kept only if it selects exactly its targets
(ambiguous spatial cases are rejected). Reasoning properties use words that the
other kinds never use (holes, corners, rolling, things a colour looks like).
"""
from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from seglib.data.synthref.scene import PLURAL

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
SPATIAL_MARGIN = 0.06        # × image size: closer centres make "left of"/"leftmost" ambiguous → rejected
EXTREMES = {"left": (0, -1), "right": (0, 1), "top": (1, -1), "bottom": (1, 1)}
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}



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


def image_specs(objects, S, split, kinds, reasoning_here, budget, p_multi, p_empty, cfg, shapes, rng):
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
