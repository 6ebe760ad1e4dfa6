"""The SegAgent state image: a colour blended over the mask's pixels."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seglib.masks.rle import as_bool_mask


def overlay(
    image: np.ndarray, mask: np.ndarray, color: Sequence[int] = (0, 255, 0), alpha: float = 0.5
) -> np.ndarray:
    """Blend ``color`` over the mask pixels: out = round((1 − α)·image + α·color), uint8 RGB.

    Pixels off the mask are unchanged. Rounding is half-up (floor(v + 0.5)), so
    the result is exact and deterministic; with the defaults it is SegAgent's
    green, α = 0.5 state image.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"overlay: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    mask = as_bool_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"overlay: mask shape {mask.shape} differs from image shape {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha}")
    out = image.copy()
    colour = np.asarray(color, dtype=np.float64).reshape(1, 3)
    blended = (1.0 - alpha) * image[mask].astype(np.float64) + alpha * colour
    out[mask] = np.clip(np.floor(blended + 0.5), 0, 255).astype(np.uint8)
    return out
