"""Stand-in datasets: RefCOCOg (umd) in the refer layout and ReasonSeg's labelme-style folders, random images
(see :mod:`seglib.fullscale`)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

#: (width, height) of the stand-in RefCOCOg images: COCO's common sizes, landscape, portrait and square.
REFCOCOG_SIZES = [(640, 480), (640, 427), (480, 640), (500, 375), (612, 612)]
_WORDS = ["man", "woman", "dog", "cat", "car", "chair", "cup", "umbrella", "horse", "bus"]
_COLOURS = ["red", "blue", "green", "white", "black", "yellow"]


def _random_image(rng: np.random.Generator, width: int, height: int):
    from PIL import Image

    base = rng.integers(40, 200, size=3)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = base
    noise = rng.integers(-20, 20, size=(height, width, 1))
    return Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8))


def _polygon(rng: np.random.Generator, width: int, height: int, n: int = 8) -> list[float]:
    """A star-shaped polygon inside the image, as COCO's flat [x1, y1, x2, y2, ...] list (px)."""
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    r = rng.uniform(0.1, 0.25) * min(width, height)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.0, n)
    xs = np.clip(cx + rad * np.cos(ang), 0, width - 1)
    ys = np.clip(cy + rad * np.sin(ang), 0, height - 1)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def _draw_polygon(img, poly: list[float], colour: tuple[int, int, int]):
    from PIL import ImageDraw

    ImageDraw.Draw(img).polygon([(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)], fill=colour)


def build_refcocog_standin(data_root: str | Path, image_dir: str | Path | None = None,
                           refs_per_split: dict[str, int] | None = None, seed: int = 0) -> dict[str, str]:
    """RefCOCOg (umd) in the refer layout under ``data_root``; returns the paths written.

    One ref per image, two sentences per ref (as many RefCOCOg refs have); images cycle through
    :data:`REFCOCOG_SIZES`. ``image_dir`` defaults to the refer layout's
    ``data_root/images/mscoco/images/train2014``.
    """
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    root = Path(data_root)
    ds = root / "refcocog"
    ds.mkdir(parents=True, exist_ok=True)
    img_dir = Path(image_dir) if image_dir else root / "images" / "mscoco" / "images" / "train2014"
    img_dir.mkdir(parents=True, exist_ok=True)
    counts = refs_per_split or {"train": 10, "val": 5, "test": 5}
    images, anns, refs = [], [], []
    k = 0
    for split, n in counts.items():
        for _ in range(n):
            width, height = REFCOCOG_SIZES[k % len(REFCOCOG_SIZES)]
            image_id, ann_id, ref_id = 100000 + k, 900000 + k, 5000 + k
            file_name = f"COCO_train2014_{image_id:012d}.jpg"
            img = _random_image(rng, width, height)
            poly = _polygon(rng, width, height)
            colour = _COLOURS[k % len(_COLOURS)]
            _draw_polygon(img, poly, tuple(int(c) for c in rng.integers(0, 255, 3)))
            img.save(img_dir / file_name, quality=90)
            rle = mask_utils.frPyObjects([poly], height, width)
            area = float(mask_utils.area(mask_utils.merge(rle)))
            xs, ys = poly[0::2], poly[1::2]
            cat = k % len(_WORDS) + 1
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            anns.append({"id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": [poly],
                         "area": area, "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                         "iscrowd": 0})
            word = _WORDS[cat - 1]
            sents = [f"the {colour} {word} in the picture", f"a {word} that is {colour}"]
            sent_ids = [2 * k, 2 * k + 1]
            refs.append({"ref_id": ref_id, "ann_id": ann_id, "image_id": image_id, "split": split,
                         "category_id": cat, "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                         "sent_ids": sent_ids,
                         "sentences": [{"sent": s, "raw": s, "tokens": s.split(), "sent_id": i}
                                       for s, i in zip(sents, sent_ids)]})
            k += 1
    categories = [{"id": i + 1, "name": w, "supercategory": "thing"} for i, w in enumerate(_WORDS)]
    with open(ds / "refs(umd).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)  # the refer toolkit's files are Python 2 pickles
    (ds / "instances.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                   "categories": categories}))
    return {"data_root": str(root), "refs": str(ds / "refs(umd).p"), "instances": str(ds / "instances.json"),
            "image_dir": str(img_dir)}


def _labelme_shape(label: str, flat: list[float], shape_type: str = "polygon") -> dict:
    """One labelme shape (ReasonSeg's annotation format) from flat ``[x0, y0, x1, y1, ...]`` points."""
    return {"label": label, "points": [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)],
            "group_id": None, "shape_type": shape_type, "flags": {}}


def build_reasonseg_standin(root: str | Path, per_split: dict[str, int] | None = None, seed: int = 1) -> str:
    """ReasonSeg's labelme-style layout under ``root``: ``<split>/<name>.jpg`` + ``<name>.json``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    counts = per_split or {"train": 2, "val": 3, "test": 3}
    k = 0
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            width, height = REFCOCOG_SIZES[(k + 2) % len(REFCOCOG_SIZES)]
            name = f"{k:04d}_{rng.integers(10**8, 10**9)}"
            img = _random_image(rng, width, height)
            target = _polygon(rng, width, height)
            _draw_polygon(img, target, (220, 40, 40))
            shapes = [_labelme_shape("target", target)]
            if k % 2:
                shapes.append(_labelme_shape("ignore", _polygon(rng, width, height, n=5)))
            word = _WORDS[k % len(_WORDS)]
            anno = {"text": [f"what in this picture could someone ride or sit on, like a {word}?"],
                    "is_sentence": True, "shapes": shapes}
            img.save(root / split / f"{name}.jpg", quality=90)
            (root / split / f"{name}.json").write_text(json.dumps(anno))
            k += 1
    return str(root)
