"""Box + points paradigm (Seg-Zero, VisionReasoner, StAR).

The policy writes a ``<think>`` block, then in ``<answer>`` tags either

* **segzero** style, one object (Seg-Zero)::

      <think>…</think><answer>{"bbox": [x0, y0, x1, y1], "points_1": [x, y], "points_2": [x, y]}</answer>

* **list** style, any number of objects (VisionReasoner / StAR)::

      <think>…</think><answer>[{"bbox_2d": [x0, y0, x1, y1], "point_2d": [x, y], "label": "…"}, …]</answer>

  ``[]`` answers "nothing matches" (StAR's empty targets).

Coordinates are integer pixels of the image as the model saw it: the image as
given (``resize=None``, the embedded default) or Seg-Zero's ``resize × resize``
image (840 at full scale); ``seglib.frames`` converts. Boxes are inclusive.

The SFT think block is a short **template** (``THINK_TEMPLATE``), not reasoning
written by anyone: state that wherever SFT results are shown.

``decode`` prompts a segmenter with each object's box and point(s) (labels
positive) in one ``predict_many`` call and takes the union of the masks; the
segmenter picks its arg-max-score mask per prompt.

Parser rules (``parse`` never raises, never evals; ``None`` = malformed):
  - the answer is the last complete ``<answer>…</answer>``; no tag at all means
    the whole text after any ``</think>``; an unclosed ``<answer>`` is truncated → ``None``;
  - answers over ``MAX_BOX_ANSWER_CHARS`` (16,384) characters → ``None``;
  - JSON, or JSON written with single quotes; NaN/Infinity, non-numbers, bools,
    non-finite or ``|v| > 1e5`` coordinates → ``None``;
  - a box with ``x1 < x0`` or ``y1 < y0`` → ``None`` (corners are not reordered);
  - extra keys are ignored; a non-string ``label`` → ``None`` (``parse_json_value(…, strict_label=False)``
    drops such a label instead and keeps the object: the StAR reward scores its box and point);
  - any malformed object makes the whole answer ``None`` (no partial answers);
  - coordinates outside the image are kept by ``parse`` (it does not know the
    image) and clipped to the image by ``decode``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from seglib import frames
from seglib.paradigms.text import MAX_BOX_ANSWER_CHARS, answer_span, as_numbers, loads_json

STYLES = ("segzero", "list")

# ---------------------------------------------------------------- templates (the one place for them)
PROMPT_TEMPLATES = {
    "segzero": (
        "Find \"{query}\" in the image. Think first in <think> </think>, then give one box and two points "
        "inside the object as JSON in <answer> </answer>: "
        "{{\"bbox\": [x0, y0, x1, y1], \"points_1\": [x, y], \"points_2\": [x, y]}}."
    ),
    "list": (
        "Find every object that matches \"{query}\". Think first in <think> </think>, then list the objects "
        "as JSON in <answer> </answer>: [{{\"bbox_2d\": [x0, y0, x1, y1], \"point_2d\": [x, y], "
        "\"label\": \"name\"}}], or [] if nothing matches."
    ),
    # compact: the query alone, for a tiny policy that must learn the format from targets.
    "compact": "{query}",
}
THINK_TEMPLATE = "<think>{count} matching object{plural}.</think>"
ANSWER_TEMPLATE = "<answer>{json}</answer>"
JSON_SEPARATORS = {False: (", ", ": "), True: (",", ":")}  # compact=False / True


@dataclass(frozen=True)
class BoxPoints:
    """One object: inclusive box ``(x0, y0, x1, y1)`` and points ``((x, y), …)`` in the model's frame."""

    box: tuple[float, float, float, float]
    points: tuple[tuple[float, float], ...] = ()
    label: str | None = None


@dataclass(frozen=True)
class Answer:
    """A parsed answer: the objects (possibly none) and the style they were written in."""

    objects: tuple[BoxPoints, ...]
    style: str = "list"


# ---------------------------------------------------------------- prompt and SFT target
def prompt(sample_or_query: Any, style: str = "segzero", template: str | None = None) -> str:
    """The user prompt: ``PROMPT_TEMPLATES[template or style]`` filled with the query.

    ``sample_or_query``: a ``seglib.data.Sample`` (its ``.query``) or the query string.
    """
    query = sample_or_query if isinstance(sample_or_query, str) else sample_or_query.query
    key = template or style
    if key not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown boxpoints prompt template {key!r}; expected one of {sorted(PROMPT_TEMPLATES)}")
    return PROMPT_TEMPLATES[key].format(query=query)


def objects_from_masks(masks: Sequence[np.ndarray], n_points: int = 2, label: str | None = None,
                       points_rule: str = "padded") -> list[BoxPoints]:
    """Ground-truth objects in image pixels: inclusive box and Seg-Zero's representative points per mask.

    Empty masks are skipped. ``n_points``: 2 (Seg-Zero) or 1 (VisionReasoner / StAR).
    ``points_rule``: ``seglib.masks.representative_points``'s ``rule`` ("padded", or
    "segzero_code" for Seg-Zero's public data-preparation code).
    """
    from seglib.masks import box_from_mask, representative_points

    out = []
    for m in masks:
        if not np.asarray(m).any():
            continue
        box = tuple(float(v) for v in box_from_mask(m))
        pts = tuple((float(x), float(y)) for x, y in representative_points(m, k=n_points, rule=points_rule))
        out.append(BoxPoints(box=box, points=pts, label=label))  # type: ignore[arg-type]
    return out


def _to_model(obj: BoxPoints, width: int, height: int, resize: int | None) -> tuple[list[int], list[list[int]]]:
    box = frames.to_resized(list(obj.box), width, height, resize)
    pts = [frames.to_resized(list(p), width, height, resize) for p in obj.points]
    return [int(round(v)) for v in box], [[int(round(v)) for v in p] for p in pts]


def answer_json(objects: Sequence[BoxPoints], width: int, height: int, style: str = "segzero",
                resize: int | None = None, compact: bool = False) -> str:
    """The JSON answer (no tags) for objects given in image pixels, written in the model's frame."""
    if style not in STYLES:
        raise ValueError(f"unknown boxpoints style {style!r}; expected one of {STYLES}")
    seps = JSON_SEPARATORS[bool(compact)]
    if style == "segzero":
        if len(objects) != 1:
            raise ValueError(f"the segzero style holds exactly one object, got {len(objects)}; use style='list'")
        box, pts = _to_model(objects[0], width, height, resize)
        if len(pts) < 1:
            raise ValueError("the segzero style needs at least one point per object")
        if len(pts) == 1:
            pts = pts * 2
        return json.dumps({"bbox": box, "points_1": pts[0], "points_2": pts[1]}, separators=seps)
    items = []
    for obj in objects:
        box, pts = _to_model(obj, width, height, resize)
        item: dict[str, Any] = {"bbox_2d": box}
        if pts:
            item["point_2d"] = pts[0]
        if obj.label is not None:
            item["label"] = obj.label
        items.append(item)
    return json.dumps(items, separators=seps)


def think_text(n_objects: int) -> str:
    """The templated think block (not model reasoning; say so where it is shown)."""
    return THINK_TEMPLATE.format(count=n_objects, plural="" if n_objects == 1 else "s")


def target_text(objects: Sequence[BoxPoints], width: int, height: int, style: str = "segzero",
                resize: int | None = None, think: bool = True, compact: bool = False) -> str:
    """SFT target: templated think block + ``<answer>JSON</answer>``.

    ``objects`` in image pixels (e.g. ``objects_from_masks``); ``resize`` the
    Seg-Zero frame (``None`` = image as given). Multi-object and empty targets
    need ``style="list"``. ``think=False`` drops the think block; ``compact``
    drops the spaces in the JSON.
    """
    body = ANSWER_TEMPLATE.format(json=answer_json(objects, width, height, style, resize, compact))
    return (think_text(len(objects)) + body) if think else body


def target_for_sample(sample: Any, style: str | None = None, resize: int | None = None, think: bool = True,
                      compact: bool = False, n_points: int | None = None, label: str | None = None,
                      points_rule: str = "padded") -> str:
    """``target_text`` for a ``seglib.data.Sample``.

    ``style=None`` picks ``segzero`` for one target and ``list`` otherwise.
    ``n_points`` defaults to 2 for segzero and 1 for list (the papers' choices).
    ``points_rule``: how the points are taken (``objects_from_masks``); an SFT
    options key like the others.
    """
    masks = sample.target_masks()
    style = style or ("segzero" if len(masks) == 1 else "list")
    n_points = n_points or (2 if style == "segzero" else 1)
    objs = objects_from_masks(masks, n_points=n_points, label=label, points_rule=points_rule)
    return target_text(objs, sample.width, sample.height, style=style, resize=resize, think=think, compact=compact)


# ---------------------------------------------------------------- parser
def _valid_box(v: Any) -> tuple[float, float, float, float] | None:
    box = as_numbers(v, 4)
    if box is None or box[2] < box[0] or box[3] < box[1]:
        return None
    return box  # type: ignore[return-value]


def _parse_item(item: Any, strict_label: bool = True) -> BoxPoints | None:
    if not isinstance(item, dict):
        return None
    box = _valid_box(item.get("bbox_2d"))
    if box is None:
        return None
    points: tuple = ()
    if "point_2d" in item:
        p = as_numbers(item["point_2d"], 2)
        if p is None:
            return None
        points = (p,)
    label = item.get("label")
    if label is not None and not isinstance(label, str):
        if strict_label:
            return None
        label = None
    return BoxPoints(box=box, points=points, label=label)


def parse_json_value(data: Any, strict_label: bool = True) -> Answer | None:
    """Structure already-decoded JSON (``dict`` = segzero style, ``list`` = list style), or ``None``.

    ``strict_label=False``: a non-string ``label`` is dropped (``label=None``) instead of
    making the answer ``None``.
    """
    if isinstance(data, dict) and "bbox" in data:
        box = _valid_box(data.get("bbox"))
        if box is None:
            return None
        points = []
        for key in ("points_1", "points_2"):
            if key in data:
                p = as_numbers(data[key], 2)
                if p is None:
                    return None
                points.append(p)
        return Answer(objects=(BoxPoints(box=box, points=tuple(points)),), style="segzero")
    if isinstance(data, dict) and "bbox_2d" in data:  # a single list item written without the list
        data = [data]
    if isinstance(data, list):
        objs = []
        for item in data:
            obj = _parse_item(item, strict_label)
            if obj is None:
                return None
            objs.append(obj)
        return Answer(objects=tuple(objs), style="list")
    return None


def parse(text: Any) -> Answer | None:
    """Text → ``Answer`` (coordinates in the model's frame) or ``None``; never raises. See module rules."""
    try:
        return parse_json_value(loads_json(answer_span(text), MAX_BOX_ANSWER_CHARS))
    except Exception:  # noqa: BLE001 - hostile input must never raise
        return None


# ---------------------------------------------------------------- decoding
def to_image_frame(answer: Answer, height: int, width: int, resize: int | None = None) -> list[BoxPoints]:
    """Objects in image pixels: back from the model frame, rounded and clipped to the image."""
    out = []
    for obj in answer.objects:
        box = frames.clip_box(frames.from_resized(list(obj.box), width, height, resize), width, height)
        pts = tuple(frames.clip_point(*frames.from_resized(list(p), width, height, resize), width, height)
                    for p in obj.points)
        out.append(BoxPoints(box=tuple(float(v) for v in box), points=tuple((float(x), float(y)) for x, y in pts),
                             label=obj.label))
    return out


def segmenter_prompts(objects: Sequence[BoxPoints]) -> list:
    """One ``seglib.segmenters.Prompt`` per object: its box and its points, all positive."""
    from seglib.segmenters import Prompt

    return [Prompt(points_xy=[(float(x), float(y)) for x, y in o.points], labels=[1] * len(o.points),
                   box_xyxy=tuple(float(v) for v in o.box)) for o in objects]


def decode(answer: Answer | None, height: int, width: int, segmenter: Any = None, image: np.ndarray | None = None,
           resize: int | None = None) -> np.ndarray:
    """Answer → bool (H, W) mask: union of the segmenter's masks for each object's box + points.

    ``image`` given: ``segmenter.set_image(image)`` first; otherwise the
    segmenter must already hold this image. ``None`` or ``[]`` → empty mask.
    """
    empty = np.zeros((height, width), bool)
    if answer is None or not answer.objects:
        return empty
    if segmenter is None:
        raise ValueError("boxpoints.decode needs a segmenter (build one with seglib.segmenters.build_segmenter)")
    if image is not None:
        segmenter.set_image(image)
    preds = segmenter.predict_many(segmenter_prompts(to_image_frame(answer, height, width, resize)))
    for p in preds:
        empty |= np.asarray(p.mask, bool)
    return empty
