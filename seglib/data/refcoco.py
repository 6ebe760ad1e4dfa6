"""RefCOCO / RefCOCO+ / RefCOCOg in the refer layout (Yu et al. 2016; Mao et al. 2016) and
gRefCOCO in its grefer layout (Liu et al. 2023, GRES) → Samples.

The refer toolkit's layout, as the full-scale papers (Seg-Zero, SegAgent,
SimpleSeg) read it::

    data_root/
        refcocog/refs(umd).p         (refcoco, refcoco+: refs(unc).p; refcoco also refs(google).p)
        refcocog/instances.json      COCO train2014 instances (polygons or RLE)
        images/mscoco/images/train2014/COCO_train2014_000000xxxxxx.jpg

Each ref is ``{ref_id, ann_id, image_id, split, category_id, sentences: [{sent, tokens,
raw, sent_id}], sent_ids, file_name}``; one Sample is made per (ref, sentence), with
``sample_id = f"{ref_id}-{k}"``, kind "referring" and one target mask (the ref's
annotation, decoded from its COCO segmentation).

gRefCOCO (:func:`load_grefcoco`), as its ``grefer`` API reads it::

    data_root/
        grefcoco/grefs(unc).json     (or grefs(unc).p)
        grefcoco/instances.json
        images/train2014/COCO_train2014_000000xxxxxx.jpg

Its refs have the refer fields, but ``ann_id`` and ``category_id`` are lists
(several targets), a no-target ref has ``ann_id == [-1]`` and ``no_target``
true, and the splits are train / val / testA / testB. Kind: "empty" for a
no-target ref, "multi" for several targets, else "referring".

The refs file is a Python pickle because that is the format's own choice (the
refer toolkit ships it so). Unpickling untrusted data can run code, so this
loader (1) only opens a pickle that lies inside the dataset root the user
configured, after resolving symlinks, and (2) unpickles with an Unpickler that
refuses every global, so only plain dicts, lists, strings and numbers load.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Iterable

from seglib.data.coco import segmentation_to_rle
from seglib.data.refer import NO_TARGET_ID
from seglib.data.sample import DataError, Sample, sentence_text


class _PlainUnpickler(pickle.Unpickler):
    """Loads only built-in containers and scalars; any class or function reference is refused."""

    def find_class(self, module: str, name: str):  # noqa: D401
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: refs pickles hold only plain data")


def load_refs_pickle(refs_file: str | Path, data_root: str | Path) -> list[dict]:
    """Read a refer ``refs(*).p`` that must lie inside ``data_root`` (symlinks resolved)."""
    root = Path(data_root).resolve()
    path = Path(refs_file)
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_relative_to(root):
        raise DataError(f"{refs_file}: refusing to unpickle a refs file outside the configured dataset root {root} "
                        f"(it resolves to {path})")
    if not path.is_file():
        raise DataError(f"{path}: refs pickle missing")
    try:
        with open(path, "rb") as f:
            refs = _PlainUnpickler(f, encoding="utf-8").load()
    except (pickle.UnpicklingError, EOFError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read refs pickle: {err}") from None
    if not isinstance(refs, list):
        raise DataError(f"{path}: expected a list of refs, got {type(refs).__name__}")
    return refs


def load_refcoco(
    data_root: str | Path,
    dataset: str = "refcocog",
    split_by: str = "umd",
    refs_file: str | Path | None = None,
    instances_file: str | Path | None = None,
    image_dir: str | Path | None = None,
    splits: str | Iterable[str] | None = None,
    max_images: int | None = None,
) -> list[Sample]:
    """Samples of one refer dataset. Paths default to the refer layout under ``data_root``.

    ``splits`` keeps refs of those splits (e.g. "val" or ["testA", "testB"]); ``max_images``
    keeps the refs of the first N distinct images (in refs order) for quick looks.
    A missing image or a malformed annotation raises DataError naming the file and the ref/ann id.
    """
    root = Path(data_root)
    refs_path = Path(refs_file) if refs_file else root / dataset / f"refs({split_by}).p"
    inst_path = Path(instances_file) if instances_file else root / dataset / "instances.json"
    img_dir = Path(image_dir) if image_dir else root / "images" / "mscoco" / "images" / "train2014"
    refs = load_refs_pickle(refs_path, root)
    images, anns, cats = _read_instances(inst_path)
    return _samples_from_refs(refs, images, anns, cats, img_dir, refs_path, inst_path, splits, max_images,
                              f"{dataset}({split_by})", skip_crowd=False, grouped=False)


def _read_instances(inst_path: Path) -> tuple[dict, dict, dict]:
    if not inst_path.is_file():
        raise DataError(f"{inst_path}: COCO instances file missing")
    try:
        instances = json.loads(inst_path.read_text())
        images = {int(im["id"]): im for im in instances["images"]}
        anns = {int(a["id"]): a for a in instances["annotations"]}
        cats = {int(c["id"]): c.get("name") for c in instances.get("categories", [])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"{inst_path}: not a COCO instances file ({err!r})") from None
    return images, anns, cats


def load_grefcoco(
    data_root: str | Path,
    split_by: str = "unc",
    refs_file: str | Path | None = None,
    instances_file: str | Path | None = None,
    image_dir: str | Path | None = None,
    splits: str | Iterable[str] | None = None,
    max_images: int | None = None,
    skip_crowd: bool = True,
) -> list[Sample]:
    """Samples of gRefCOCO (multi-target and no-target expressions). Paths default to grefer's layout.

    ``refs_file`` defaults to ``grefcoco/grefs(<split_by>).json``, or the ``.p`` pickle when only that
    exists (read with the plain-data unpickler, inside ``data_root``). ``skip_crowd``: leave crowd
    annotations out of the targets, as grefer's ``getMaskByRef`` and ReLA's loader do; the kind
    still follows the ref's ``ann_id`` list. ``splits`` / ``max_images`` as in :func:`load_refcoco`.
    ``meta["no_target"]`` keeps the flag.
    """
    root = Path(data_root)
    if refs_file is not None:
        refs_path = Path(refs_file)
    else:
        refs_path = root / "grefcoco" / f"grefs({split_by}).json"
        if not refs_path.is_file() and refs_path.with_suffix(".p").is_file():
            refs_path = refs_path.with_suffix(".p")
    inst_path = Path(instances_file) if instances_file else root / "grefcoco" / "instances.json"
    img_dir = Path(image_dir) if image_dir else root / "images" / "train2014"
    if refs_path.suffix == ".p":
        refs = load_refs_pickle(refs_path, root)
    else:
        if not refs_path.is_file():
            raise DataError(f"{refs_path}: gRefCOCO refs file missing")
        try:
            refs = json.loads(refs_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{refs_path}: not valid JSON ({err})") from None
        if not isinstance(refs, list):
            raise DataError(f"{refs_path}: expected a list of refs")
    images, anns, cats = _read_instances(inst_path)
    return _samples_from_refs(refs, images, anns, cats, img_dir, refs_path, inst_path, splits, max_images,
                              f"grefcoco({split_by})", skip_crowd=skip_crowd, grouped=True)


def _samples_from_refs(refs: list, images: dict, anns: dict, cats: dict, img_dir: Path, refs_path: Path,
                       inst_path: Path, splits, max_images: int | None, dataset_label: str, skip_crowd: bool,
                       grouped: bool) -> list[Sample]:
    """One Sample per (ref, sentence). ``grouped``: gRefCOCO refs (``ann_id`` a list, ``no_target``);
    otherwise refer's refs (one int ``ann_id``)."""
    wanted = None if splits is None else ({splits} if isinstance(splits, str) else set(splits))
    kept_images: list[int] = []
    samples: list[Sample] = []
    for i, ref in enumerate(refs):
        try:
            ref_id, image_id = ref["ref_id"], int(ref["image_id"])
            raw_ids = ref["ann_id"] if isinstance(ref["ann_id"], list) else [ref["ann_id"]]
            ann_ids = [int(a) for a in raw_ids if int(a) != NO_TARGET_ID]
            split, sentences = str(ref["split"]), ref["sentences"]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{refs_path}: ref #{i} is malformed (missing or bad {err})") from None
        no_target = (bool(ref.get("no_target", False)) or not ann_ids) if grouped else False
        if no_target and ann_ids:
            raise DataError(f"{refs_path}: ref {ref_id} has no_target set but names annotations {ann_ids}")
        if wanted is not None and split not in wanted:
            continue
        if image_id not in kept_images:
            if max_images is not None and len(kept_images) >= max_images:
                continue
            kept_images.append(image_id)
        im = images.get(image_id)
        if im is None:
            raise DataError(f"{inst_path}: ref {ref_id} names image {image_id}, which is not in the instances file")
        image_path = img_dir / im["file_name"]
        if not image_path.is_file():
            raise DataError(f"{image_path}: image file missing for ref {ref_id} (image {image_id})")
        h, w = int(im["height"]), int(im["width"])
        rles, kept_ids = [], []
        for a in ann_ids:
            ann = anns.get(a)
            if ann is None:
                raise DataError(f"{inst_path}: ref {ref_id} names annotation {a}, which is not in the instances file")
            if int(ann.get("image_id", -1)) != image_id:
                raise DataError(f"{inst_path}: annotation {a} is on image {ann.get('image_id')}, "
                                f"but ref {ref_id} says image {image_id}")
            if skip_crowd and ann.get("iscrowd"):
                continue
            rles.append(segmentation_to_rle(ann.get("segmentation"), h, w, f"{inst_path}: annotation {a} (ref {ref_id})"))
            kept_ids.append(a)
        kind = "empty" if no_target else "multi" if len(ann_ids) > 1 else "referring"
        for k, sent in enumerate(sentences):
            text = sentence_text(sent, f"{refs_path}: ref {ref_id} sentence {k}", plain_ok=False)
            samples.append(Sample(
                sample_id=f"{ref_id}-{k}", image_path=str(image_path), query=text, kind=kind,
                split=split, height=h, width=w, target_rles=list(rles),
                meta={"ref_id": ref_id, "image_id": image_id, "ann_ids": kept_ids, "sentence_index": k,
                      "sent_id": sent.get("sent_id"),
                      "category_names": [cats.get(int(anns[a].get("category_id", -1))) for a in kept_ids],
                      "dataset": dataset_label, **({"no_target": no_target} if grouped else {})},
            ))
    return samples


__all__ = ["load_grefcoco", "load_refcoco", "load_refs_pickle"]
