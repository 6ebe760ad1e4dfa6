"""The sample record: (image, query, target masks) with 0, 1 or several targets.

METHODS.md, "Data preparation" (VisionReasoner/StAR multi-object and StAR's
empty queries). Masks are ``np.ndarray[bool]`` (H, W) via :mod:`seglib.masks`;
images are uint8 RGB (H, W, 3); boxes are inclusive ``[x0, y0, x1, y1]``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from seglib.masks import box_from_mask, decode_rle, masks_union

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
        return [decode_rle(r) for r in self.target_rles]

    def union_mask(self) -> np.ndarray:
        """Union of the target masks; all False for an empty query."""
        return masks_union(self.target_masks(), self.height, self.width)

    def target_boxes(self) -> list[list[int]]:
        """Inclusive ``[x0, y0, x1, y1]`` per target (pixel bounds of each mask)."""
        return [target_box(m) for m in self.target_masks()]

    def to_dict(self) -> dict:
        """JSON-ready fields (``from_dict`` reads them back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(**{k: d[k] for k in ("sample_id", "image_path", "query", "kind", "split", "height", "width")},
                   target_rles=list(d.get("target_rles", [])), meta=dict(d.get("meta", {})))


EMPTY_BOX = [0, 0, -1, -1]  # the inclusive box written for a target whose mask is empty (a degenerate polygon)


def target_box(mask: np.ndarray) -> list[int]:
    """Inclusive ``[x0, y0, x1, y1]`` of a target mask (:func:`seglib.masks.box_from_mask`); :data:`EMPTY_BOX` if empty."""
    return list(box_from_mask(mask)) if mask.any() else list(EMPTY_BOX)


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


def sentence_text(sentence: Any, where: str, plain_ok: bool = True) -> str:
    """The text of one refer-style sentence (``{"sent": ...}``, or a plain str when ``plain_ok``).

    ``where`` names the file, ref and sentence for the DataError.
    """
    text = sentence.get("sent") if isinstance(sentence, dict) else (sentence if plain_ok else None)
    if not isinstance(text, str):
        raise DataError(f"{where} has no 'sent' text")
    return text
