"""ReasonSeg (LISA, Lai et al. 2024; the benchmark of Seg-Zero, VisionReasoner and StAR) → Samples.

Layout: ``data_root/{train,val,test}/<name>.jpg`` with ``<name>.json`` beside it::

    {"text": ["query", ...], "is_sentence": true,
     "shapes": [{"label": "target" | "ignore" | "flag", "points": [[x, y], ...], ...}, ...]}

The mask follows LISA's reader: "flag" shapes are skipped; the others are drawn
largest first (area of the filled polygon), each filled and outlined 1 px with
OpenCV on integer points, "ignore" labels as the ignore value and the rest as
target, so a small shape drawn later overrides a larger one. The target is one
mask (ReasonSeg does not separate objects): ``target_rles`` holds it, or is
empty when no target pixel remains; the ignore region goes to
``meta["ignore_rles"]``. One Sample per text, ``sample_id = f"{name}-{k}"``,
kind "reasoning"; ``meta["is_sentence"]`` keeps the long/short flag.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from seglib.data.sample import DataError, Sample
from seglib.masks import encode_rle

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _read_json(path: Path) -> dict:
    try:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            return json.loads(path.read_text(encoding="cp1252"))  # some ReasonSeg files are cp1252
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def reasonseg_masks(anno: dict, height: int, width: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(target, ignore) bool masks from a ReasonSeg annotation, by LISA's drawing rule."""
    TARGET, IGNORE = 1, 255
    polys = []
    for i, shape in enumerate(anno.get("shapes", [])):
        try:
            label = str(shape["label"])
            pts = np.asarray(shape["points"], dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.isfinite(pts).all():
                raise ValueError("points must be a list of at least 3 finite [x, y] pairs")
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{where}: shape #{i} is malformed ({err})") from None
        if label.lower() == "flag":
            continue
        pts = pts.astype(np.int32)
        tmp = np.zeros((height, width), np.uint8)
        cv2.polylines(tmp, [pts], True, 1, 1)
        cv2.fillPoly(tmp, [pts], 1)
        polys.append((int(tmp.sum()), i, pts, IGNORE if "ignore" in label.lower() else TARGET))
    mask = np.zeros((height, width), np.uint8)
    for _, _, pts, value in sorted(polys, key=lambda p: (-p[0], p[1])):
        cv2.polylines(mask, [pts], True, value, 1)
        cv2.fillPoly(mask, [pts], value)
    return mask == TARGET, mask == IGNORE


def load_reasonseg(
    data_root: str | Path,
    splits: str | Iterable[str] = ("train", "val", "test"),
    max_images: int | None = None,
) -> list[Sample]:
    """Samples of ReasonSeg's split folders (missing split folders are skipped, none at all is an error)."""
    from PIL import Image

    root = Path(data_root)
    splits = [splits] if isinstance(splits, str) else list(splits)
    found = [s for s in splits if (root / s).is_dir()]
    if not found:
        raise DataError(f"{root}: none of the split folders {splits} exists")
    samples: list[Sample] = []
    for split in found:
        jsons = sorted((root / split).glob("*.json"))
        if max_images is not None:
            jsons = jsons[:max_images]
        for jp in jsons:
            image_path = next((jp.with_suffix(s) for s in IMAGE_SUFFIXES if jp.with_suffix(s).is_file()), None)
            if image_path is None:
                raise DataError(f"{jp}: no image beside it (looked for {jp.stem}{{{','.join(IMAGE_SUFFIXES)}}})")
            try:
                with Image.open(image_path) as im:
                    width, height = im.size
            except OSError as err:
                raise DataError(f"{image_path}: cannot read image for {jp.name}: {err}") from None
            anno = _read_json(jp)
            texts = anno.get("text") if isinstance(anno, dict) else None
            if isinstance(texts, str):
                texts = [texts]
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                raise DataError(f"{jp}: 'text' must be a non-empty list of strings")
            target, ignore = reasonseg_masks(anno, height, width, str(jp))
            rles = [encode_rle(target)] if target.any() else []
            meta = {"ref_id": jp.stem, "image_id": jp.stem, "ann_ids": [0] if rles else [],
                    "is_sentence": bool(anno.get("is_sentence", False)), "dataset": "reasonseg"}
            if ignore.any():
                meta["ignore_rles"] = [encode_rle(ignore)]
            for k, text in enumerate(texts):
                samples.append(Sample(sample_id=f"{jp.stem}-{k}", image_path=str(image_path), query=text,
                                      kind="reasoning", split=split, height=height, width=width,
                                      target_rles=list(rles), meta={**meta, "sentence_index": k}))
    return samples


__all__ = ["load_reasonseg", "reasonseg_masks"]
