"""Writing a SynthRef dataset folder (``generate``) and reading back dense labels (``label_maps``).

The folder is the COCO + refs layout of :mod:`seglib.data`; splits are disjoint
by image, and the same arguments give byte-identical files.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seglib.data.refer import file_split, mask_to_pixel_polygons, refer_ref_fields, write_refer_files
from seglib.data.sample import KINDS
from seglib.data.synthref.queries import image_specs, render
from seglib.data.synthref.scene import COLOURS, DIFFICULTIES, SHAPES, make_scene

REFER_SPLIT_BY = "synthref"  # the splitBy under which REFER / G_REFER find refs(synthref).p / grefs(synthref).json
SPLITS = ("train", "val", "test", "test_reasoning")
_CATEGORY_IDS = {s: i + 1 for i, s in enumerate(SHAPES)}  # COCO category id of each shape


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

    ``image_size`` is the square side in px. ``difficulty`` is "easy" | "medium" | "hard" | "parts" |
    "mixed" (see ``DIFFICULTIES``; "mixed" draws each image's tier); ``max_objects`` caps its object count. ``kinds`` limits the query kinds.
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
    shapes = tuple(shapes)
    tiers, fractions = _settings(difficulty, shapes, kinds, referring_forms, max_objects, split_fractions)
    if (out_dir / "refs.json").exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a dataset; choose a new folder")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    sizes = _split_sizes(n_images, fractions)
    split_of = _assign_splits(n_images, sizes, seed)

    images, annotations, refs = [], [], []
    split_kind: list[tuple[str, str]] = []  # seglib's split name and kind of each ref
    it = range(n_images)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="SynthRef")
    for i in it:
        rng = np.random.default_rng([seed, i])
        split = str(split_of[i])
        reasoning_here = "reasoning" in kinds and (split == "test_reasoning" or reasoning_in_train)
        tier = _image_tier(tiers, seed, i)
        cfg = tiers[tier][0]
        img, objects, specs = _draw_image(rng, image_size, cfg, shapes, split, kinds, reasoning_here,
                                          refs_per_image, p_multi, p_empty)
        image_id = i + 1
        file_name = f"{image_id:06d}.png"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
        (out_dir / "images" / file_name).write_bytes(buf.tobytes())
        images.append({"id": image_id, "file_name": file_name, "height": image_size, "width": image_size,
                       "split": file_split(split), **({"difficulty": tier} if len(tiers) > 1 else {})})
        ann_ids = _add_annotations(annotations, objects, image_id)
        for spec, targets in specs:
            refs.append(_ref(len(refs) + 1, image_id, file_name, split, spec, targets, objects, ann_ids, rng))
            split_kind.append((split, spec["kind"]))
    settings = {"n_images": n_images, "seed": seed, "image_size": image_size, "shapes": list(shapes),
                "max_objects": max_objects, "difficulty": difficulty, "kinds": list(kinds),
                "split_fractions": fractions, "reasoning_in_train": reasoning_in_train,
                "refs_per_image": refs_per_image, "p_multi": p_multi, "p_empty": p_empty,
                "referring_forms": (tiers[difficulty][0]["forms"] if len(tiers) == 1
                                    else {t: c["forms"] for t, (c, _w) in tiers.items()})}
    _write_folder(out_dir, images, annotations, refs, settings, seed, difficulty, image_size)
    counts: dict[str, dict[str, int]] = {}
    for split, kind in split_kind:
        counts.setdefault(split, {}).setdefault(kind, 0)
        counts[split][kind] += 1
    return {"out_dir": str(out_dir), "n_images": n_images, "n_annotations": len(annotations), "n_refs": len(refs),
            "images_per_split": {s: int(sizes.get(s, 0)) for s in SPLITS}, "refs_per_split_kind": counts,
            "images_per_tier": {t: sum(im.get("difficulty", difficulty) == t for im in images) for t in tiers},
            "seconds": round(time.time() - t0, 2)}


def _settings(difficulty: str, shapes: tuple[str, ...], kinds, referring_forms: dict[str, float] | None,
              max_objects: int | None, split_fractions: dict[str, float] | None
              ) -> tuple[dict[str, tuple[dict, float]], dict[str, float]]:
    """The scene config and weight of each tier (one tier, or the ``mix`` of a mixed difficulty) and the
    split fractions of ``generate``'s arguments, checked."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty {difficulty!r} unknown; choose from {sorted(DIFFICULTIES)}")
    bad = [s for s in shapes if s not in SHAPES] + [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown shape or kind {bad}; shapes: {SHAPES}, kinds: {KINDS}")
    mix = DIFFICULTIES[difficulty].get("mix", {difficulty: 1.0})
    tiers = {}
    for tier, weight in mix.items():
        cfg = dict(DIFFICULTIES[tier])
        if referring_forms is not None:
            cfg["forms"] = dict(referring_forms)
        if max_objects is not None:
            cfg["n_objects"] = (min(cfg["n_objects"][0], max_objects), max_objects)
        tiers[tier] = (cfg, float(weight))
    fractions = dict(split_fractions or {"train": 0.7, "val": 0.1, "test": 0.1, "test_reasoning": 0.1})
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; known: {SPLITS}")
    if "reasoning" not in kinds:
        fractions["test_reasoning"] = 0.0
    return tiers, fractions


def _image_tier(tiers: dict[str, tuple[dict, float]], seed: int, i: int) -> str:
    """The tier of image ``i``: the only one, or a draw by weight from the image's own stream (so the scene's
    stream, and with it every single-tier folder, stays as it was)."""
    names = list(tiers)
    if len(names) == 1:
        return names[0]
    w = np.array([tiers[t][1] for t in names])
    return names[int(np.random.default_rng([seed, i, 2_000_003]).choice(len(names), p=w / w.sum()))]


def _assign_splits(n_images: int, sizes: dict[str, int], seed: int) -> np.ndarray:
    """The split of each image index: a seeded permutation cut into ``sizes`` in ``SPLITS`` order."""
    order = np.random.default_rng([seed, 1_000_003]).permutation(n_images)
    split_of = np.empty(n_images, dtype=object)
    start = 0
    for s in SPLITS:
        split_of[order[start:start + sizes.get(s, 0)]] = s
        start += sizes.get(s, 0)
    return split_of


def _draw_image(rng, image_size, cfg, shapes, split, kinds, reasoning_here, refs_per_image, p_multi, p_empty):
    """(image, objects, [(spec, targets)]) of one image; redraws a scene that allows no query this split needs."""
    specs: list = []
    for _attempt in range(50):
        img, objects = make_scene(rng, image_size, cfg, shapes)
        if not objects:
            continue
        specs = image_specs(objects, image_size, split, kinds, reasoning_here, refs_per_image, p_multi,
                            p_empty, cfg, shapes, rng)
        if specs:
            break
    if not objects:
        raise ValueError(f"SynthRef could not place any object on a {image_size} px image; "
                         f"use a larger image_size (>= 48 px)")
    return img, objects, specs


def _add_annotations(annotations: list[dict], objects: list[dict], image_id: int) -> list[int]:
    """Append one COCO annotation per object (visible pixels as pixel-edge polygons); returns their ids."""
    ann_ids = []
    for o in objects:
        ann_id = len(annotations) + 1
        ann_ids.append(ann_id)
        ys, xs = np.nonzero(o["mask"])
        annotations.append({
            "id": ann_id, "image_id": image_id, "category_id": _CATEGORY_IDS[o["shape"]], "iscrowd": 0,
            "segmentation": mask_to_pixel_polygons(o["mask"]), "area": int(xs.size),
            "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
            "attributes": {k: o[k] for k in ("shape", "colour", "size", "center", "radius", "rotation_deg",
                                             "corners", "z", "full_area")},
        })
    return ann_ids


def _ref(ref_id: int, image_id: int, file_name: str, split: str, spec: dict, targets: set[int],
         objects: list[dict], ann_ids: list[int], rng: np.random.Generator) -> dict:
    """One refs.json entry: the rendered sentence and the refer / gRefCOCO fields."""
    text = render(spec, objects, rng)
    tids = [ann_ids[t] for t in sorted(targets)]
    return {"ref_id": ref_id, "image_id": image_id, "ann_ids": tids,
            **refer_ref_fields(tids, [_CATEGORY_IDS[objects[t]["shape"]] for t in sorted(targets)]),
            "split": file_split(split), "kind": spec["kind"], "spec": _clean_spec(spec, objects, ann_ids),
            "sentences": [{"sent": text, "raw": text, "sent_id": ref_id, "tokens": text.split()}],
            "sent_ids": [ref_id], "file_name": file_name}


def _write_folder(out_dir: Path, images: list, annotations: list, refs: list, settings: dict, seed: int,
                  difficulty: str, image_size: int) -> None:
    """instances.json, refs.json, the refer/grefer files and synthref.json (the settings)."""
    instances = {
        "info": {"description": "SynthRef", "seed": seed, "difficulty": difficulty, "image_size": image_size},
        "images": images, "annotations": annotations,
        "categories": [{"id": _CATEGORY_IDS[s], "name": s, "supercategory": "shape"} for s in SHAPES],
    }
    _dump(out_dir / "instances.json", instances)
    _dump(out_dir / "refs.json", refs)
    write_refer_files(out_dir, refs, REFER_SPLIT_BY)
    _dump(out_dir / "synthref.json", settings)


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, separators=(",", ":")))


def label_maps(data_dir: str | Path, image_id: int) -> dict[str, np.ndarray]:
    """Dense per-pixel labels of one SynthRef image, from its annotations' attributes.

    Returns int16 (H, W) maps ``shape`` (0 = background, else 1 + index in ``SHAPES``),
    ``colour`` (0, else 1 + index in ``COLOURS``) and ``instance`` (0, else the annotation id):
    targets for a dense auxiliary loss or a vision-tower pre-training stage.
    Reads ``instances.json`` each call; cache the result when calling per image in a loop.
    """
    from seglib.data.coco import segmentation_to_rle
    from seglib.masks import decode_rle

    inst = json.loads((Path(data_dir) / "instances.json").read_text())
    im = next((i for i in inst["images"] if i["id"] == image_id), None)
    if im is None:
        raise KeyError(f"{Path(data_dir) / 'instances.json'}: no image {image_id}")
    out = {k: np.zeros((im["height"], im["width"]), np.int16) for k in ("shape", "colour", "instance")}
    colour_names = list(COLOURS)
    for a in inst["annotations"]:
        if a["image_id"] != image_id:
            continue
        m = decode_rle(segmentation_to_rle(a["segmentation"], im["height"], im["width"], f"annotation {a['id']}"))
        out["shape"][m] = SHAPES.index(a["attributes"]["shape"]) + 1
        out["colour"][m] = colour_names.index(a["attributes"]["colour"]) + 1
        out["instance"][m] = a["id"]
    return out
