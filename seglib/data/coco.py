"""The COCO + refs folder every loader shares: read it (``load_samples``) and write it (``write_dataset``).

Layout in :mod:`seglib.data`. ``load_samples`` gives one :class:`Sample` per
(ref, sentence) with ``sample_id = f"{ref_id}-{k}"``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

from pycocotools import mask as mask_utils

from seglib.data.refer import (file_split, mask_to_pixel_polygons, ref_ann_ids, refer_ref_fields, seglib_split,
                               write_refer_files)
from seglib.data.sample import DataError, Sample, sentence_text, target_box
from seglib.masks import decode_rle


def segmentation_to_rle(seg: Any, height: int, width: int, where: str) -> dict:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE) → compressed RLE with str counts.

    ``where`` names the file and annotation for the error message.
    """
    try:
        if isinstance(seg, list):
            polys = [list(map(float, p)) for p in seg]
            if not polys or any(len(p) < 6 or len(p) % 2 for p in polys):
                raise ValueError("polygon needs an even number (>= 6) of coordinates")
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
            if [int(v) for v in seg["size"]] != [height, width]:
                raise ValueError(f"RLE size {seg['size']} differs from the image's {[height, width]}")
            if isinstance(seg["counts"], list):
                rle = mask_utils.frPyObjects(seg, height, width)
            else:
                counts = seg["counts"]
                rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
                mask_utils.area(rle)  # validates the string
        else:
            raise ValueError(f"unknown segmentation of type {type(seg).__name__}")
        counts = rle["counts"]
        return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
    except (ValueError, TypeError, KeyError, UnicodeError) as err:
        raise DataError(f"{where}: malformed segmentation: {err}") from None


def read_json(path: Path) -> Any:
    """A JSON file's content; a missing or malformed file raises DataError naming it."""
    if not path.is_file():
        raise DataError(f"{path}: file missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def load_samples(data_dir: str | Path, split: str | Iterable[str] | None = None) -> list[Sample]:
    """Read a COCO-style dataset folder: one Sample per (ref, sentence), in refs.json order.

    ``split`` keeps only refs of that split (a name or several, seglib's names such as
    "test_reasoning"; the on-disk "reasoning" is accepted too); None keeps all. ``Sample.split`` is
    seglib's name. Refs may name targets as seglib's ``ann_ids``, refer's int ``ann_id`` or
    gRefCOCO's list ``ann_id`` / ``no_target``.
    ``meta`` holds ``ref_id``, ``image_id``, ``ann_ids``, ``sentence_index``,
    ``category_names`` of the targets and, where the annotations carry them
    (SynthRef), ``target_shapes`` / ``target_colours``; plus ``spec`` and
    ``ignore_rles`` when the ref has them.
    """
    data_dir = Path(data_dir)
    inst_path, refs_path = data_dir / "instances.json", data_dir / "refs.json"
    images, anns, categories, refs = _read_folder(data_dir, inst_path, refs_path)
    wanted = None if split is None else {seglib_split(x) for x in ([split] if isinstance(split, str) else split)}
    ann_rle = _ann_rle_reader(inst_path, images, anns)
    samples: list[Sample] = []
    for i, ref in enumerate(refs):
        try:
            ref_id, image_id = ref["ref_id"], int(ref["image_id"])
            ann_ids = ref_ann_ids(ref) if ("ann_ids" in ref or "ann_id" in ref) else []
            ref_split, sentences = seglib_split(str(ref["split"])), ref["sentences"]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{refs_path}: ref #{i} ({ref.get('ref_id') if isinstance(ref, dict) else ref!r}) "
                            f"is malformed: missing or bad {err}") from None
        if wanted is not None and ref_split not in wanted:
            continue
        im = images.get(image_id)
        if im is None:
            raise DataError(f"{refs_path}: ref {ref_id} names image {image_id}, which is not in {inst_path.name}")
        image_path = Path(im["file_name"])
        image_path = image_path if image_path.is_absolute() else data_dir / "images" / image_path
        if not image_path.is_file():
            raise DataError(f"{image_path}: image file missing for ref {ref_id} (image {image_id})")
        rles = []
        for a in ann_ids:
            rle = ann_rle(a, ref_id)
            if int(anns[a]["image_id"]) != image_id:
                raise DataError(f"{refs_path}: ref {ref_id} is on image {image_id} but its annotation {a} "
                                f"is on image {anns[a]['image_id']}")
            rles.append(rle)
        kind = ref.get("kind") or ("empty" if not ann_ids else "multi" if len(ann_ids) > 1 else "referring")
        meta = _ref_meta(ref, image_id, ann_ids, anns, categories, ann_rle)
        if not isinstance(sentences, list) or not sentences:
            raise DataError(f"{refs_path}: ref {ref_id} has no sentences")
        for k, s in enumerate(sentences):
            samples.append(Sample(
                sample_id=f"{ref_id}-{k}",
                image_path=str(image_path),
                query=sentence_text(s, f"{refs_path}: ref {ref_id} sentence {k}"),
                kind=kind,
                split=ref_split,
                height=int(im["height"]),
                width=int(im["width"]),
                target_rles=list(rles),
                meta={**meta, "sentence_index": k},
            ))
    return samples


def _read_folder(data_dir: Path, inst_path: Path, refs_path: Path) -> tuple[dict, dict, dict, list]:
    """(images by id, annotations by id, category names by id, refs) of a dataset folder, checked."""
    if not inst_path.is_file() and not refs_path.is_file():
        raise DataError(f"{data_dir}: no dataset here (no instances.json or refs.json). Run notebook 01 "
                        "(01_data_prep) for this run folder first, or point run_dir at a run that has data/.")
    instances, refs = read_json(inst_path), read_json(refs_path)
    if not isinstance(instances, dict) or not all(k in instances for k in ("images", "annotations")):
        raise DataError(f"{inst_path}: expected a COCO object with 'images' and 'annotations'")
    if not isinstance(refs, list):
        raise DataError(f"{refs_path}: expected a list of refs")
    try:
        images = {int(im["id"]): im for im in instances["images"]}
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{inst_path}: malformed image entry ({err})") from None
    anns: dict[int, dict] = {}
    for i, ann in enumerate(instances["annotations"]):
        if not isinstance(ann, dict) or "id" not in ann:
            raise DataError(f"{inst_path}: annotation #{i} has no id")
        anns[int(ann["id"])] = ann
    categories = {int(c["id"]): c.get("name", str(c["id"])) for c in instances.get("categories", [])}
    return images, anns, categories, refs


def _ann_rle_reader(inst_path: Path, images: dict, anns: dict) -> Callable[[int, Any], dict]:
    """``ann_rle(ann_id, ref_id)``: an annotation's mask as compressed RLE, checked and cached."""
    rle_cache: dict[int, dict] = {}

    def ann_rle(ann_id: int, ref_id: Any) -> dict:
        if ann_id not in rle_cache:
            ann = anns.get(ann_id)
            if ann is None:
                raise DataError(f"{inst_path}: ref {ref_id} names annotation {ann_id}, which does not exist")
            im = images.get(int(ann.get("image_id", -1)))
            if im is None:
                raise DataError(f"{inst_path}: annotation {ann_id} names image {ann.get('image_id')}, which does not exist")
            if "segmentation" not in ann:
                raise DataError(f"{inst_path}: annotation {ann_id} has no segmentation")
            rle_cache[ann_id] = segmentation_to_rle(ann["segmentation"], int(im["height"]), int(im["width"]),
                                                    f"{inst_path}: annotation {ann_id} (ref {ref_id})")
            if not mask_utils.area({**rle_cache[ann_id], "counts": rle_cache[ann_id]["counts"].encode("ascii")}):
                raise DataError(f"{inst_path}: annotation {ann_id} (ref {ref_id}) has an empty mask")
        return rle_cache[ann_id]

    return ann_rle


def _ref_meta(ref: dict, image_id: int, ann_ids: list[int], anns: dict, categories: dict,
              ann_rle: Callable[[int, Any], dict]) -> dict[str, Any]:
    """``Sample.meta`` shared by a ref's sentences (see :func:`load_samples`)."""
    ref_id = ref["ref_id"]
    meta: dict[str, Any] = {
        "ref_id": ref_id,
        "image_id": image_id,
        "ann_ids": ann_ids,
        "category_names": [categories.get(int(anns[a].get("category_id", -1)), None) for a in ann_ids],
    }
    attrs = [anns[a].get("attributes") for a in ann_ids]
    if ann_ids and all(isinstance(x, dict) for x in attrs):
        meta["target_shapes"] = [x.get("shape") for x in attrs]
        meta["target_colours"] = [x.get("colour") for x in attrs]
    if "spec" in ref:
        meta["spec"] = ref["spec"]
    if ref.get("ignore_ann_ids"):
        meta["ignore_rles"] = [ann_rle(int(a), ref_id) for a in ref["ignore_ann_ids"]]
    return meta


def write_dataset(samples: list[Sample], out_dir: str | Path, copy_images: bool = False,
                  segmentation: str = "rle", split_by: str = "seglib") -> Path:
    """Write samples (e.g. from a real-data loader) as a COCO-style folder that ``load_samples`` reads.

    Targets become annotations (one per target RLE; shared by sentences of one ref). Images are
    referenced by absolute path unless ``copy_images``. Refs carry the refer / gRefCOCO fields
    (:func:`refer_ref_fields`, ``sent_id`` numbered from 1, ``tokens`` = the sentence split at
    whitespace) and the on-disk split names (:data:`FILE_SPLITS`); ``refs(<split_by>).p`` and
    ``grefs(<split_by>).json`` are written beside refs.json (:func:`write_refer_files`).
    ``segmentation``: "rle" (compressed RLE dicts: compact; pycocotools ``COCO.annToMask`` reads
    them, the refer/grefer ``getMask`` do not) or "polygons" (exact pixel-edge polygons,
    :func:`mask_to_pixel_polygons`: every one of those APIs reads them, at several times the size
    on large images).
    """
    import shutil

    if segmentation not in ("rle", "polygons"):
        raise ValueError(f"segmentation {segmentation!r}: choose 'rle' or 'polygons'")
    out_dir = Path(out_dir)
    if (out_dir / "refs.json").exists():
        raise DataError(f"{out_dir}: a dataset is already there; choose a new folder")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images: dict[str, dict] = {}
    annotations: list[dict] = []
    refs: dict[Any, dict] = {}
    ann_key: dict[tuple, int] = {}

    def add_ann(image_id: int, rle: dict, extra: dict) -> int:
        key = (image_id, rle["counts"])
        if key not in ann_key:
            ann_key[key] = len(annotations) + 1
            m = decode_rle(rle)
            box = target_box(m)
            annotations.append({"id": ann_key[key], "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "segmentation": mask_to_pixel_polygons(m) if segmentation == "polygons" else rle,
                                "area": int(mask_utils.area({**rle, "counts": rle["counts"].encode()})),
                                "bbox": [box[0], box[1], box[2] - box[0] + 1, box[3] - box[1] + 1], **extra})
        return ann_key[key]

    n_sent = 0
    for s in samples:
        if s.image_path not in images:
            src = Path(s.image_path)
            name = src.name if copy_images else str(src.resolve())
            if copy_images:
                shutil.copyfile(src, out_dir / "images" / name)
            images[s.image_path] = {"id": len(images) + 1, "file_name": name, "height": s.height, "width": s.width}
        image_id = images[s.image_path]["id"]
        ref_id = s.meta.get("ref_id", s.sample_id)
        if ref_id not in refs:
            ann_ids = [add_ann(image_id, r, {}) for r in s.target_rles]
            refs[ref_id] = {
                "ref_id": ref_id, "image_id": image_id, "split": file_split(s.split), "kind": s.kind,
                "sentences": [], "sent_ids": [], "file_name": Path(images[s.image_path]["file_name"]).name,
                "ann_ids": ann_ids, **refer_ref_fields(ann_ids, [1] * len(ann_ids)),
            }
            if s.meta.get("ignore_rles"):
                refs[ref_id]["ignore_ann_ids"] = [add_ann(image_id, r, {"ignore": True}) for r in s.meta["ignore_rles"]]
        n_sent += 1
        refs[ref_id]["sentences"].append({"sent": s.query, "raw": s.query, "tokens": s.query.split(), "sent_id": n_sent})
        refs[ref_id]["sent_ids"].append(n_sent)
    instances = {"images": list(images.values()), "annotations": annotations,
                 "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}
    (out_dir / "instances.json").write_text(json.dumps(instances, sort_keys=True))
    (out_dir / "refs.json").write_text(json.dumps(list(refs.values()), sort_keys=True))
    write_refer_files(out_dir, list(refs.values()), split_by)
    return out_dir
