"""The sample record and the one on-disk dataset format every loader shares.

A sample is (image, query, target masks) with 0, 1 or several targets
(METHODS.md, "Data preparation"; VisionReasoner/StAR multi-object and StAR's
empty queries). The on-disk format is COCO plus refer-style referring
expressions, the layout of RefCOCO/+/g (Yu et al. 2016, Mao et al. 2016), with
multi-target and no-target refs laid out as gRefCOCO does (Liu et al. 2023):

``data_dir/``
    ``images/``          the image files (``file_name`` in ``instances.json``;
                         an absolute ``file_name`` points outside the folder,
                         used when real data is exported without copying images)
    ``instances.json``   COCO: ``images``, ``annotations``, ``categories``;
                         ``segmentation`` is a list of polygons (SynthRef writes
                         exact pixel-edge polygons, see
                         :func:`mask_to_pixel_polygons`), compressed RLE with
                         ``counts`` a str, or uncompressed RLE; only the visible
                         part of an occluded object
    ``refs.json``        list of refs ``{ref_id, image_id, ann_id, category_id,
                         no_target, split, sentences: [{sent, raw, tokens,
                         sent_id}], sent_ids, file_name}`` plus seglib's own
                         ``ann_ids`` (0..n), ``kind``, optional ``spec`` (the
                         query program SynthRef checked the sentence with) and
                         ``ignore_ann_ids`` (ReasonSeg's ignore label)
    ``refs(<split_by>).p``  the single-target refs, unchanged, as a protocol-2
                         pickle of plain data: the file the refer API reads
    ``grefs(<split_by>).json``  every ref in gRefCOCO's layout: the file the
                         grefer API reads

Standard fields of a ref (:func:`refer_ref_fields`): one target → ``ann_id``
and ``category_id`` are ints (refer's layout); several → lists of the targets'
ids (gRefCOCO's); none → ``ann_id == category_id == [-1]`` and ``no_target``
true (gRefCOCO's rule). ``grefs`` writes single targets as one-element lists,
as gRefCOCO does.

Why polygons: the refer and grefer ``getMask`` index ``segmentation[0]``, so a
single RLE dict fails there, while pycocotools' ``COCO.annToMask`` rejects a
list of compressed RLE dicts. Polygons are the one segmentation all three read;
tracing pixel edges makes them decode to exactly the drawn mask.

Split names: the refer API's ``getRefIds(split="test")`` returns every ref
whose split name contains "test" (and ``"testA"`` every name containing "A"),
so the held-out reasoning split is written as ``"reasoning"``
(:data:`FILE_SPLITS`); seglib calls it ``"test_reasoning"`` everywhere else
(params, notebooks, evaluation) and :func:`load_samples` maps it back. Old
folders that wrote ``"test_reasoning"`` load unchanged.

``load_samples`` gives one :class:`Sample` per (ref, sentence) with
``sample_id = f"{ref_id}-{k}"``. Masks are ``np.ndarray[bool]`` (H, W); images
are uint8 RGB (H, W, 3); boxes are inclusive ``[x0, y0, x1, y1]``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pycocotools import mask as mask_utils

KINDS = ("referring", "reasoning", "multi", "empty")

# seglib split name -> the name written in refs.json / instances.json (see the module docstring).
FILE_SPLITS = {"test_reasoning": "reasoning"}
_SEGLIB_SPLITS = {v: k for k, v in FILE_SPLITS.items()}
NO_TARGET_ID = -1  # gRefCOCO's ann_id / category_id of a ref that names nothing


def file_split(split: str) -> str:
    """The split name written to disk for seglib's ``split`` ("test_reasoning" → "reasoning")."""
    return FILE_SPLITS.get(split, split)


def seglib_split(name: str) -> str:
    """seglib's split name for a name read from disk ("reasoning" → "test_reasoning"; others unchanged)."""
    return _SEGLIB_SPLITS.get(name, name)


class DataError(ValueError):
    """Bad dataset input; the message names the file and the ref/ann/image id."""


@dataclass
class Sample:
    """One (image, query, targets) triple. ``target_rles`` holds one COCO RLE per target ([] = empty)."""

    sample_id: str
    image_path: str
    query: str
    kind: str
    split: str
    height: int
    width: int
    target_rles: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def image(self) -> np.ndarray:
        """The image as uint8 RGB (H, W, 3). A missing or truncated file raises DataError naming it."""
        return read_image(self.image_path, what=f"sample {self.sample_id} (ref {self.meta.get('ref_id')})",
                          expect_hw=(self.height, self.width))

    def target_masks(self) -> list[np.ndarray]:
        """One bool (H, W) mask per target object."""
        return [rle_to_mask(r) for r in self.target_rles]

    def union_mask(self) -> np.ndarray:
        """Union of the target masks; all False for an empty query."""
        out = np.zeros((self.height, self.width), dtype=bool)
        for m in self.target_masks():
            out |= m
        return out

    def target_boxes(self) -> list[list[int]]:
        """Inclusive ``[x0, y0, x1, y1]`` per target (pixel bounds of each mask)."""
        return [box_of(m) for m in self.target_masks()]

    def to_dict(self) -> dict:
        """JSON-ready fields (``from_dict`` reads them back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(**{k: d[k] for k in ("sample_id", "image_path", "query", "kind", "split", "height", "width")},
                   target_rles=list(d.get("target_rles", [])), meta=dict(d.get("meta", {})))


def read_image(path: str | Path, what: str = "", expect_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file strictly (a truncated file is an error, not a half-grey picture)."""
    from PIL import Image

    path = Path(path)
    label = f" for {what}" if what else ""
    if not path.is_file():
        raise DataError(f"{path}: image file missing{label}")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot read image{label}: {err}") from None
    if expect_hw is not None and tuple(arr.shape[:2]) != tuple(expect_hw):
        raise DataError(f"{path}: image is {arr.shape[1]}x{arr.shape[0]} but the annotation says "
                        f"{expect_hw[1]}x{expect_hw[0]}{label}")
    return arr


def check_images(samples: Iterable["Sample"], max_listed: int = 20) -> int:
    """Open every distinct image of ``samples`` once and report all bad ones together.

    Raises DataError listing each missing, unreadable or wrongly sized file (up to ``max_listed``,
    then a count), so a dataset with several broken images is mended in one pass, not one per rerun.
    Returns the number of images checked.
    """
    problems, seen = [], {}
    for s in samples:
        if s.image_path in seen:
            continue
        seen[s.image_path] = True
        try:
            read_image(s.image_path, what=f"sample {s.sample_id}", expect_hw=(s.height, s.width))
        except DataError as err:
            problems.append(str(err))
    if problems:
        listed = "\n  ".join(problems[:max_listed])
        more = f"\n  ... and {len(problems) - max_listed} more" if len(problems) > max_listed else ""
        raise DataError(f"{len(problems)} of {len(seen)} images cannot be used:\n  {listed}{more}")
    return len(seen)


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask, ``counts`` as str (json-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    counts = rle["counts"]
    obj = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(obj).astype(bool)


def mask_to_pixel_polygons(mask: np.ndarray) -> list[list[int]]:
    """COCO polygons that decode (pycocotools ``frPyObjects`` + ``merge``) to exactly ``mask``.

    Each polygon is an axis-aligned rectangle on pixel corners, ``[x0, y0, x1, y0, x1, y1, x0, y1]``
    (x right, y down, integers; pixel (x, y) is the unit square [x, x+1] × [y, y+1]), covering one
    run of mask pixels in a row, stacked over the consecutive rows where that run is the same.
    The rectangles are disjoint, so refer's ``getMask`` (which sums the parts) gives 0/1 too.
    Ordered by (top row, x0). An empty mask gives [].
    """
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    pad = np.zeros((h, w + 2), np.int8)
    pad[:, 1:-1] = m
    edges = np.diff(pad, axis=1)
    opened: dict[tuple[int, int], int] = {}
    prev: set[tuple[int, int]] = set()
    rects: list[list[int]] = []
    for y in range(h + 1):
        runs = set(zip(np.flatnonzero(edges[y] == 1).tolist(), np.flatnonzero(edges[y] == -1).tolist())) if y < h else set()
        for x0, x1 in prev - runs:
            y0 = opened.pop((x0, x1))
            rects.append([x0, y0, x1, y0, x1, y, x0, y])
        for r in runs - prev:
            opened[r] = y
        prev = runs
    return sorted(rects, key=lambda r: (r[1], r[0]))


def refer_ref_fields(ann_ids: list[int], category_ids: list[int]) -> dict:
    """A ref's standard fields ``ann_id``, ``category_id``, ``no_target`` (refer / gRefCOCO layout).

    One target → ints (the refer API reads it unchanged); several → lists; none → ``[-1]`` each and
    ``no_target`` true, gRefCOCO's rule for a no-target expression.
    """
    if not ann_ids:
        return {"ann_id": [NO_TARGET_ID], "category_id": [NO_TARGET_ID], "no_target": True}
    if len(ann_ids) == 1:
        return {"ann_id": int(ann_ids[0]), "category_id": int(category_ids[0]), "no_target": False}
    return {"ann_id": [int(a) for a in ann_ids], "category_id": [int(c) for c in category_ids], "no_target": False}


def ref_ann_ids(ref: dict) -> list[int]:
    """Target annotation ids of a ref in any of the layouts: seglib's ``ann_ids``, refer's int
    ``ann_id``, gRefCOCO's list ``ann_id`` (``[-1]`` or ``no_target`` → no target)."""
    if "ann_ids" in ref:
        return [int(a) for a in ref["ann_ids"]]
    if ref.get("no_target"):
        return []
    a = ref["ann_id"]
    ids = [int(x) for x in a] if isinstance(a, list) else [int(a)]
    return [x for x in ids if x != NO_TARGET_ID]


def write_refer_files(out_dir: str | Path, refs: list[dict], split_by: str) -> None:
    """Write ``refs(<split_by>).p`` (single-target refs, unchanged, protocol-2 pickle of plain data) and
    ``grefs(<split_by>).json`` (every ref, ``ann_id``/``category_id`` always lists) beside refs.json.

    The refs are taken through JSON first, so the pickle holds only dicts, lists, str, int, float,
    bool and None, and the bytes do not depend on object identity.
    """
    import pickle

    out_dir = Path(out_dir)
    plain = json.loads(json.dumps(refs, sort_keys=True))
    single = [r for r in plain if not r.get("no_target") and not isinstance(r.get("ann_id"), list)]
    (out_dir / f"refs({split_by}).p").write_bytes(pickle.dumps(single, protocol=2))
    grefs = []
    for r in plain:
        g = dict(r)
        for key in ("ann_id", "category_id"):
            if not isinstance(g[key], list):
                g[key] = [g[key]]
        grefs.append(g)
    (out_dir / f"grefs({split_by}).json").write_text(json.dumps(grefs, sort_keys=True, separators=(",", ":")))


def box_of(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return [0, 0, -1, -1]
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


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


def _read_json(path: Path) -> Any:
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
    if not inst_path.is_file() and not refs_path.is_file():
        raise DataError(f"{data_dir}: no dataset here (no instances.json or refs.json). Run notebook 01 "
                        "(01_data_prep) for this run folder first, or point run_dir at a run that has data/.")
    instances, refs = _read_json(inst_path), _read_json(refs_path)
    if not isinstance(instances, dict) or not all(k in instances for k in ("images", "annotations")):
        raise DataError(f"{inst_path}: expected a COCO object with 'images' and 'annotations'")
    if not isinstance(refs, list):
        raise DataError(f"{refs_path}: expected a list of refs")
    wanted = None if split is None else {seglib_split(x) for x in ([split] if isinstance(split, str) else split)}

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
        if not isinstance(sentences, list) or not sentences:
            raise DataError(f"{refs_path}: ref {ref_id} has no sentences")
        for k, s in enumerate(sentences):
            text = s.get("sent") if isinstance(s, dict) else s
            if not isinstance(text, str):
                raise DataError(f"{refs_path}: ref {ref_id} sentence {k} has no 'sent' text")
            samples.append(Sample(
                sample_id=f"{ref_id}-{k}",
                image_path=str(image_path),
                query=text,
                kind=kind,
                split=ref_split,
                height=int(im["height"]),
                width=int(im["width"]),
                target_rles=list(rles),
                meta={**meta, "sentence_index": k},
            ))
    return samples


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
            m = rle_to_mask(rle)
            box = box_of(m)
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


def to_hf_rows(samples: list[Sample]) -> list[dict]:
    """Rows for 🤗 ``datasets``: image (path), query, kind, split, size, target RLEs and inclusive boxes."""
    return [{
        "sample_id": s.sample_id,
        "image": s.image_path,
        "query": s.query,
        "kind": s.kind,
        "split": s.split,
        "height": s.height,
        "width": s.width,
        "target_rles": [dict(r) for r in s.target_rles],
        "boxes_xyxy": s.target_boxes(),
    } for s in samples]


def to_hf_dataset(samples: list[Sample]):
    """A ``datasets.Dataset`` of :func:`to_hf_rows` with the image column decoded lazily by ``datasets.Image``."""
    import datasets

    rows = to_hf_rows(samples)
    ds = datasets.Dataset.from_list(rows)
    return ds.cast_column("image", datasets.Image())



def prepare_dataset(
    dataset: str,
    out_dir: str | Path,
    seed: int = 0,
    n_images: int | None = 60,
    image_size: int = 112,
    difficulty: str = "easy",
    reasoning_in_train: bool = False,
    data_root: str | Path | None = None,
    refcoco_dataset: str = "refcocog",
    refcoco_split_by: str = "umd",
    image_dir: str | Path | None = None,
    reasonseg_root: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Write the run's dataset folder (notebook 01) and return a short summary.

    - ``dataset="synthref"``: generate ``n_images`` SynthRef images. A folder already holding the
      same SynthRef settings is kept as it is (re-running gives the same files); other settings → error.
    - ``dataset="refcoco"``: the refer layout under ``data_root`` (``refcoco_dataset``,
      ``refcoco_split_by``, ``image_dir``); ``n_images`` caps the images (None = all).
    - ``dataset="grefcoco"``: gRefCOCO in grefer's layout under ``data_root`` (``refcoco_split_by``
      "unc" if left at "umd"; images under ``data_root/images/train2014`` unless ``image_dir``).
    - ``dataset="reasonseg"``: ReasonSeg under ``data_root``.
    - ``reasonseg_root`` (real data only) appends ReasonSeg val/test as splits
      ``val_reasoning`` / ``test_reasoning``, the out-of-domain reasoning test.
    Real images are referenced by absolute path, not copied.
    """
    out_dir = Path(out_dir)
    if dataset == "synthref":
        from seglib.data import synthref

        settings_file = out_dir / "synthref.json"
        if settings_file.is_file():
            old = json.loads(settings_file.read_text())
            want = {"n_images": n_images, "seed": seed, "image_size": image_size, "difficulty": difficulty,
                    "reasoning_in_train": reasoning_in_train}
            if any(old.get(k) != v for k, v in want.items()):
                raise DataError(f"{out_dir}: holds a SynthRef dataset with other settings "
                                f"({ {k: old.get(k) for k in want} }); choose a new run folder")
            return {"out_dir": str(out_dir), "reused": True, "n_images": n_images}
        return synthref.generate(out_dir, n_images, seed, image_size=image_size, difficulty=difficulty,
                                 reasoning_in_train=reasoning_in_train, progress=progress)
    if data_root is None:
        raise DataError(f"dataset {dataset!r} needs data_root (the folder holding the data)")
    if dataset == "refcoco":
        from seglib.data.refcoco import load_refcoco

        samples = load_refcoco(data_root, refcoco_dataset, refcoco_split_by, image_dir=image_dir, max_images=n_images)
    elif dataset == "grefcoco":
        from seglib.data.refcoco import load_grefcoco

        samples = load_grefcoco(data_root, "unc" if refcoco_split_by == "umd" else refcoco_split_by,
                                image_dir=image_dir, max_images=n_images)
    elif dataset == "reasonseg":
        from seglib.data.reasonseg import load_reasonseg

        samples = load_reasonseg(data_root, max_images=n_images)
    else:
        raise DataError(f"dataset {dataset!r} unknown; choose synthref, refcoco, grefcoco or reasonseg")
    if reasonseg_root is not None and dataset != "reasonseg":
        from seglib.data.reasonseg import load_reasonseg

        extra = load_reasonseg(reasonseg_root, splits=("val", "test"), max_images=n_images)
        for smp in extra:
            smp.split = f"{smp.split}_reasoning"
        samples += extra
    if (out_dir / "refs.json").is_file():
        return {"out_dir": str(out_dir), "reused": True}
    write_dataset(samples, out_dir)
    return {"out_dir": str(out_dir), "n_samples": len(samples)}


def dataset_statistics(data_dir: str | Path, epsilons: Iterable[float] = (0.001, 0.005, 0.01), max_masks: int = 400) -> dict:
    """Counts for notebook 01's figures: objects per image, query kinds per split, mask areas, polygon sizes.

    ``mask_area_fraction``: each annotation's pixel count / image area. ``polygon_vertices``: for each
    Douglas–Peucker ``epsilon_ratio``, the total vertex count of each of the first ``max_masks``
    annotations' polygons (SimpleSeg's token budget grows with it).
    """
    from seglib.masks import mask_to_polygons

    data_dir = Path(data_dir)
    inst, refs = _read_json(data_dir / "instances.json"), _read_json(data_dir / "refs.json")
    hw = {im["id"]: (int(im["height"]), int(im["width"])) for im in inst["images"]}
    per_image: dict[int, int] = {im["id"]: 0 for im in inst["images"]}
    areas = []
    vertices: dict[float, list[int]] = {float(e): [] for e in epsilons}
    for k, ann in enumerate(a for a in inst["annotations"] if not a.get("ignore")):
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
        h, w = hw[ann["image_id"]]
        rle = segmentation_to_rle(ann["segmentation"], h, w, f"{data_dir / 'instances.json'}: annotation {ann['id']}")
        areas.append(float(mask_utils.area({**rle, "counts": rle["counts"].encode()})) / (h * w))
        if k < max_masks:
            m = rle_to_mask(rle)
            for e in vertices:
                vertices[e].append(int(sum(len(p) for p in mask_to_polygons(m, epsilon_ratio=e))))
    kinds: dict[str, dict[str, int]] = {}
    for r in refs:
        n = len(r.get("sentences", [])) or 1
        split = seglib_split(r["split"])
        kinds.setdefault(split, {}).setdefault(r.get("kind", "referring"), 0)
        kinds[split][r.get("kind", "referring")] += n
    return {"objects_per_image": list(per_image.values()), "samples_per_split_kind": kinds,
            "mask_area_fraction": areas, "polygon_vertices": vertices}



def gallery_samples(samples: list[Sample], n: int, seed: int = 0) -> list[Sample]:
    """``n`` samples for a figure, taking the query kinds in turn (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list[Sample]] = {}
    for i in rng.permutation(len(samples)):
        by_kind.setdefault(samples[int(i)].kind, []).append(samples[int(i)])
    order = [k for k in KINDS if k in by_kind] + sorted(k for k in by_kind if k not in KINDS)
    picked: list[Sample] = []
    while len(picked) < n and any(by_kind.values()):
        for k in order:
            if by_kind[k] and len(picked) < n:
                picked.append(by_kind[k].pop(0))
    return picked


__all__ = [
    "DataError",
    "FILE_SPLITS",
    "KINDS",
    "NO_TARGET_ID",
    "Sample",
    "box_of",
    "check_images",
    "dataset_statistics",
    "file_split",
    "gallery_samples",
    "load_samples",
    "mask_to_pixel_polygons",
    "mask_to_rle",
    "prepare_dataset",
    "read_image",
    "ref_ann_ids",
    "refer_ref_fields",
    "rle_to_mask",
    "seglib_split",
    "segmentation_to_rle",
    "to_hf_dataset",
    "to_hf_rows",
    "write_dataset",
    "write_refer_files",
]
