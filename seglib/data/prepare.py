"""Notebook 01's entry points: ``prepare_dataset`` (SynthRef or a real dataset → the run's folder),
statistics and gallery picks for its figures, and 🤗 ``datasets`` rows."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
from pycocotools import mask as mask_utils

from seglib.data.coco import read_json, segmentation_to_rle, write_dataset
from seglib.data.refer import seglib_split
from seglib.data.sample import KINDS, DataError, Sample
from seglib.masks import decode_rle


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
        return _prepare_synthref(out_dir, n_images, seed, image_size, difficulty, reasoning_in_train, progress)
    if data_root is None:
        raise DataError(f"dataset {dataset!r} needs data_root (the folder holding the data)")
    load = _REAL_LOADERS.get(dataset)
    if load is None:
        raise DataError(f"dataset {dataset!r} unknown; choose synthref, refcoco, grefcoco or reasonseg")
    samples = load(data_root, n_images, refcoco_dataset, refcoco_split_by, image_dir)
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


def _prepare_synthref(out_dir: Path, n_images: int | None, seed: int, image_size: int, difficulty: str,
                      reasoning_in_train: bool, progress: bool) -> dict:
    """Generate SynthRef into ``out_dir``, or keep a folder already holding the same settings."""
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


def _load_refcoco(data_root, n_images, refcoco_dataset, refcoco_split_by, image_dir) -> list[Sample]:
    from seglib.data.refcoco import load_refcoco

    return load_refcoco(data_root, refcoco_dataset, refcoco_split_by, image_dir=image_dir, max_images=n_images)


def _load_grefcoco(data_root, n_images, refcoco_dataset, refcoco_split_by, image_dir) -> list[Sample]:
    from seglib.data.refcoco import load_grefcoco

    return load_grefcoco(data_root, "unc" if refcoco_split_by == "umd" else refcoco_split_by,
                         image_dir=image_dir, max_images=n_images)


def _load_reasonseg(data_root, n_images, refcoco_dataset, refcoco_split_by, image_dir) -> list[Sample]:
    from seglib.data.reasonseg import load_reasonseg

    return load_reasonseg(data_root, max_images=n_images)


#: The real datasets ``prepare_dataset`` reads: name → loader(data_root, n_images, refcoco_dataset,
#: refcoco_split_by, image_dir) -> samples.
_REAL_LOADERS = {"refcoco": _load_refcoco, "grefcoco": _load_grefcoco, "reasonseg": _load_reasonseg}


def dataset_statistics(data_dir: str | Path, epsilons: Iterable[float] = (0.001, 0.005, 0.01), max_masks: int = 400) -> dict:
    """Counts for notebook 01's figures: objects per image, query kinds per split, mask areas, polygon sizes.

    ``mask_area_fraction``: each annotation's pixel count / image area. ``polygon_vertices``: for each
    Douglas–Peucker ``epsilon_ratio``, the total vertex count of each of the first ``max_masks``
    annotations' polygons (SimpleSeg's token budget grows with it).
    """
    from seglib.masks import mask_to_polygons

    data_dir = Path(data_dir)
    inst, refs = read_json(data_dir / "instances.json"), read_json(data_dir / "refs.json")
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
            m = decode_rle(rle)
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
