"""COCO RLE through pycocotools, with ``counts`` as ``str`` (JSON-ready), and the (H, W) bool-mask check."""
from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as coco_mask


def coco_decode(rles) -> np.ndarray:
    """pycocotools ``decode``, quiet about its numpy-2 ``__array__(copy=...)`` DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        return coco_mask.decode(rles)


def as_bool_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """``mask`` as a bool (H, W) array; anything not 2-D raises ValueError naming ``name``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a (H, W) mask: ``{"size": [H, W], "counts": str}``."""
    mask = as_bool_mask(mask)
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def decode_rle(rle: dict) -> np.ndarray:
    """Bool (H, W) mask from a COCO RLE.

    Accepts compressed RLE with ``counts`` as str or bytes, and uncompressed
    RLE with ``counts`` as a list of ints (as in some COCO files).
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"decode_rle: expected a dict with 'size' and 'counts', got {rle!r:.200}")
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    else:
        if isinstance(counts, str):
            counts = counts.encode("ascii")
        compressed = {"size": [height, width], "counts": counts}
    return coco_decode(compressed).astype(bool)
