"""The segmenter interface (SAM2 image predictor's life cycle) and its prompt / prediction records.

Backends subclass :class:`Segmenter`; conventions are in :mod:`seglib.segmenters`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class Prompt:
    """One prompt on the current image. ``mask_logits``: a previous ``Prediction.logits`` or None."""

    points_xy: Sequence[Sequence[float]] = field(default_factory=list)
    labels: Sequence[int] = field(default_factory=list)
    box_xyxy: Sequence[float] | None = None
    mask_logits: np.ndarray | None = None


@dataclass
class Prediction:
    """The chosen mask (bool (H, W)), its score (backend confidence, higher is better) and
    logits to feed back as ``mask_logits`` at the next step (backend-specific shape)."""

    mask: np.ndarray
    score: float
    logits: np.ndarray


def image_key(image: np.ndarray) -> tuple:
    """Identity of an image's content: shape, dtype and a BLAKE2b digest of its bytes.

    Hashing a 1024x1024 RGB image takes a few ms, far below any encoder; unlike
    ``id()`` it cannot be fooled by an array edited in place or a recycled id.
    """
    data = np.ascontiguousarray(image)
    return (data.shape, str(data.dtype), hashlib.blake2b(data.data, digest_size=16).hexdigest())


def check_image(image: Any) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"segmenter: expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    return image


class Segmenter:
    """Base class: the ``set_image`` cache and prompt checking; backends implement
    ``_encode(image)`` and ``_predict_batch(prompts) -> list[Prediction]``."""

    name = "base"

    def __init__(self) -> None:
        self._image_key: tuple | None = None
        self.image_hw: tuple[int, int] | None = None
        self.encode_count = 0  # how many times an image was actually encoded (cache misses)

    # -- life cycle --------------------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> bool:
        """Make ``image`` current. Returns True if it was encoded, False on a cache hit
        (the same content as the current image is never encoded twice in a row)."""
        image = check_image(image)
        key = image_key(image)
        if key == self._image_key:
            return False
        self._image_key = None  # stays unset if encoding fails
        self._encode(image)
        self._image_key = key
        self.image_hw = (int(image.shape[0]), int(image.shape[1]))
        self.encode_count += 1
        return True

    def clear_cache(self) -> None:
        """Forget the current image: the next ``set_image`` encodes even the same image."""
        self._image_key = None

    def predict(
        self,
        points_xy: Sequence[Sequence[float]] = (),
        labels: Sequence[int] = (),
        box_xyxy: Sequence[float] | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> Prediction:
        """The best mask for one prompt on the current image."""
        return self.predict_many([Prompt(list(points_xy), list(labels), box_xyxy, mask_logits)])[0]

    def predict_many(self, prompts: Sequence[Prompt]) -> list[Prediction]:
        """One ``Prediction`` per prompt, in order, all on the current image."""
        if self._image_key is None:
            raise RuntimeError(f"{type(self).__name__}: call set_image(image) before predict")
        prompts = [self._check_prompt(p, i) for i, p in enumerate(prompts)]
        if not prompts:
            return []
        return self._predict_batch(prompts)

    # -- backend hooks -------------------------------------------------------------------------
    def _encode(self, image: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_batch(self, prompts: list[Prompt]) -> list[Prediction]:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------
    def _check_prompt(self, prompt: Prompt, index: int = 0) -> Prompt:
        h, w = self.image_hw
        pts = np.asarray(prompt.points_xy, dtype=np.float64).reshape(-1, 2) if len(prompt.points_xy) else np.zeros((0, 2))
        labels = np.asarray(prompt.labels, dtype=np.int64).reshape(-1)
        if len(pts) != len(labels):
            raise ValueError(f"prompt {index}: {len(pts)} points but {len(labels)} labels")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"prompt {index}: labels must be 1 (positive) or 0 (negative), got {labels.tolist()}")
        if not np.isfinite(pts).all():
            raise ValueError(f"prompt {index}: points must be finite numbers")
        pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
        pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
        box = None
        if prompt.box_xyxy is not None:
            box = np.asarray(prompt.box_xyxy, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all():
                raise ValueError(f"prompt {index}: box must be 4 finite numbers [x0, y0, x1, y1], got {prompt.box_xyxy!r}")
            x0, x1 = sorted(np.clip(box[[0, 2]], 0, w - 1))
            y0, y1 = sorted(np.clip(box[[1, 3]], 0, h - 1))
            box = np.array([x0, y0, x1, y1])
        return Prompt(pts, labels, box, prompt.mask_logits)
