"""The sample record and the one on-disk dataset format every loader shares.

A sample is (image, query, target masks) with 0, 1 or several targets
(METHODS.md, "Data preparation"; VisionReasoner/StAR multi-object and StAR's
empty queries). The on-disk format is COCO plus refer-style referring
expressions, the layout of RefCOCO/+/g (Yu et al. 2016, Mao et al. 2016):

``data_dir/``
    ``images/``          the image files (``file_name`` in ``instances.json``;
                         an absolute ``file_name`` points outside the folder,
                         used when real data is exported without copying images)
    ``instances.json``   COCO: ``images``, ``annotations`` (``segmentation`` as
                         RLE with ``counts`` a str, polygons or uncompressed RLE
                         are accepted too; only the visible part of an occluded
                         object), ``categories``
    ``refs.json``        list of ``{ref_id, image_id, ann_ids (0..n), split,
                         kind, sentences: [{sent, ...}]}``; optional ``spec``
                         (the query program SynthRef checked the sentence with)
                         and ``ignore_ann_ids`` (ReasonSeg's ignore label)

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


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask, ``counts`` as str (json-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    counts = rle["counts"]
    obj = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(obj).astype(bool)


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

    ``split`` keeps only refs of that split (a name or several); None keeps all.
    ``meta`` holds ``ref_id``, ``image_id``, ``ann_ids``, ``sentence_index``,
    ``category_names`` of the targets and, where the annotations carry them
    (SynthRef), ``target_shapes`` / ``target_colours``; plus ``spec`` and
    ``ignore_rles`` when the ref has them.
    """
    data_dir = Path(data_dir)
    inst_path, refs_path = data_dir / "instances.json", data_dir / "refs.json"
    instances, refs = _read_json(inst_path), _read_json(refs_path)
    if not isinstance(instances, dict) or not all(k in instances for k in ("images", "annotations")):
        raise DataError(f"{inst_path}: expected a COCO object with 'images' and 'annotations'")
    if not isinstance(refs, list):
        raise DataError(f"{refs_path}: expected a list of refs")
    wanted = None if split is None else ({split} if isinstance(split, str) else set(split))

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
            ann_ids = [int(a) for a in ref.get("ann_ids", [ref["ann_id"]] if "ann_id" in ref else [])]
            ref_split, sentences = str(ref["split"]), ref["sentences"]
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


def write_dataset(samples: list[Sample], out_dir: str | Path, copy_images: bool = False) -> Path:
    """Write samples (e.g. from a real-data loader) as a COCO-style folder that ``load_samples`` reads.

    Targets become annotations (one per target RLE; shared by sentences of one ref).
    Images are referenced by absolute path unless ``copy_images``.
    """
    import shutil

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
            box = box_of(rle_to_mask(rle))
            annotations.append({"id": ann_key[key], "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "segmentation": rle, "area": int(mask_utils.area({**rle, "counts": rle["counts"].encode()})),
                                "bbox": [box[0], box[1], box[2] - box[0] + 1, box[3] - box[1] + 1], **extra})
        return ann_key[key]

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
            refs[ref_id] = {
                "ref_id": ref_id, "image_id": image_id, "split": s.split, "kind": s.kind, "sentences": [],
                "ann_ids": [add_ann(image_id, r, {}) for r in s.target_rles],
            }
            if s.meta.get("ignore_rles"):
                refs[ref_id]["ignore_ann_ids"] = [add_ann(image_id, r, {"ignore": True}) for r in s.meta["ignore_rles"]]
        refs[ref_id]["sentences"].append({"sent": s.query})
    instances = {"images": list(images.values()), "annotations": annotations,
                 "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}
    (out_dir / "instances.json").write_text(json.dumps(instances, sort_keys=True))
    (out_dir / "refs.json").write_text(json.dumps(list(refs.values()), sort_keys=True))
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
    elif dataset == "reasonseg":
        from seglib.data.reasonseg import load_reasonseg

        samples = load_reasonseg(data_root, max_images=n_images)
    else:
        raise DataError(f"dataset {dataset!r} unknown; choose synthref, refcoco or reasonseg")
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
        kinds.setdefault(r["split"], {}).setdefault(r.get("kind", "referring"), 0)
        kinds[r["split"]][r.get("kind", "referring")] += n
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
    "KINDS",
    "Sample",
    "box_of",
    "dataset_statistics",
    "gallery_samples",
    "load_samples",
    "mask_to_rle",
    "prepare_dataset",
    "read_image",
    "rle_to_mask",
    "segmentation_to_rle",
    "to_hf_dataset",
    "to_hf_rows",
    "write_dataset",
]
