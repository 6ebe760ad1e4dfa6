"""SAM2.1 backend: ``build_sam2`` + ``SAM2ImagePredictor`` from the ``sam2`` package.

Follows the prompting of Seg-Zero and StAR: box and points in, ``multimask_output=True``,
keep the mask with the highest predicted IoU. SegAgent's click loop feeds the
previous step's low-resolution logits back as ``mask_input``; ``Prediction.logits``
is exactly that array, shape (1, S/4, S/4) (256 x 256 for the 1024 px model).

Prompts are given in pixels of the original image; the predictor scales them to
the model's input frame (x * S / W, y * S / H) itself. Inclusive pixel boxes go in
unchanged: SAM2 builds its own box prompts the same way (``sam2.utils.misc.mask_to_box``
gives the min/max pixel indices of the mask), and its prompt encoder adds 0.5 to
centre every coordinate on its pixel. ``predict_many`` sends
prompts of the same structure (number of points, box or not, logits or not) to
the mask decoder as one batch (point_coords (B, N, 2), point_labels (B, N),
box (B, 4), mask_input (B, 1, S/4, S/4)) so the results equal one-by-one calls;
prompts of different structure go in separate batches instead of being padded.
``decode_batch_size`` caps a batch. Default (None): all prompts of a structure in
one call on a GPU, one prompt per call on CPU, where batching buys nothing: 8
box+point prompts at 1024 px cost the same CPU time either way (hiera-t, one
thread), and on a busy machine the batch of 8 took 3.5 s of wall time against
2.6 s for 8 single calls (memory-bound). bench/segmenter_cache.py prints both.
"""
from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np

import seglib  # noqa: F401  (makes torchvision importable beside CPU torch; sam2 needs it)
from seglib.segmenters.base import Prediction, Prompt, Segmenter

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_l.yaml"


def default_decode_batch_size(device: str) -> int:
    """Prompts per mask-decoder call: 1 on CPU (memory-bound), 0 = all at once elsewhere."""
    return 1 if str(device).startswith("cpu") else 0


class SAM2Segmenter(Segmenter):
    """SAM2 image predictor with an image-embedding cache and batched prompts.

    ``config``: a config name inside the sam2 package (``configs/sam2.1/sam2.1_hiera_t.yaml``);
    ``checkpoint``: path to the ``.pt`` file, or None for random weights (drawn from a fixed
    seed without touching the global RNG; for tests, the masks mean nothing);
    ``image_size``: override the model's input side (default: the config's, 1024), e.g. a
    small value for fast CPU tests; ``multimask``: ask for 3 masks and keep the best score;
    ``decode_batch_size``: most prompts per decoder call (0 = all; None = all on GPU, 1 on CPU).
    """

    name = "sam2"

    def __init__(
        self,
        config: str = DEFAULT_CONFIG,
        checkpoint: str | None = None,
        device: str = "cpu",
        image_size: int | None = None,
        multimask: bool = True,
        decode_batch_size: int | None = None,
        mask_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        import torch
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        overrides = [f"++model.image_size={int(image_size)}"] if image_size else []
        if checkpoint is None:
            warnings.warn(f"SAM2 {config}: no checkpoint given, using random weights (tests only)", stacklevel=2)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = build_sam2(config, None, device=device, hydra_overrides_extra=overrides)
        else:
            from pathlib import Path

            if not Path(checkpoint).is_file():
                raise FileNotFoundError(
                    f"sam2_checkpoint: {checkpoint} is not a file. Set the parameter sam2_checkpoint to a SAM2.1 "
                    f".pt file matching sam2_config={config!r}, or use segmenter: classic.")
            model = build_sam2(config, str(checkpoint), device=device, hydra_overrides_extra=overrides)
        self.predictor = SAM2ImagePredictor(model, mask_threshold=mask_threshold)
        side = int(model.image_size)
        # the predictor hard-codes the backbone feature sizes of the 1024 px model
        self.predictor._bb_feat_sizes = [(side // 4, side // 4), (side // 8, side // 8), (side // 16, side // 16)]
        self.image_size = side
        self.low_res_side = side // 4
        self.multimask = multimask
        if decode_batch_size is None:
            decode_batch_size = default_decode_batch_size(device)
        self.decode_batch_size = int(decode_batch_size)  # 0 = no cap
        self.device = device

    def _encode(self, image: np.ndarray) -> None:
        self.predictor.set_image(image)

    def _predict_batch(self, prompts: list[Prompt]) -> list[Prediction]:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, p in enumerate(prompts):
            groups[(len(p.points_xy), p.box_xyxy is not None, p.mask_logits is not None)].append(i)
        out: list[Prediction | None] = [None] * len(prompts)
        for (n_points, has_box, has_mask), idx in groups.items():
            # a batch needs points or a box (sam2 repeats the image only for point batches)
            step = self.decode_batch_size or len(idx)
            if n_points == 0 and not has_box:
                step = 1
            for start in range(0, len(idx), step):
                chunk = idx[start : start + step]
                for i, pred in zip(chunk, self._decode([prompts[i] for i in chunk], n_points, has_box, has_mask)):
                    out[i] = pred
        return out  # type: ignore[return-value]

    def _decode(self, prompts: list[Prompt], n_points: int, has_box: bool, has_mask: bool) -> list[Prediction]:
        b = len(prompts)
        coords = labels = box = mask_input = None
        if n_points:
            coords = np.stack([np.asarray(p.points_xy, np.float32) for p in prompts])  # (B, N, 2)
            labels = np.stack([np.asarray(p.labels, np.int32) for p in prompts])  # (B, N)
        if has_box:
            box = np.stack([np.asarray(p.box_xyxy, np.float32) for p in prompts])  # (B, 4)
        if has_mask:
            mask_input = np.stack([self._low_res(p.mask_logits) for p in prompts])  # (B, 1, s, s)
        if b == 1:  # the predictor's single-prompt shapes
            coords = None if coords is None else coords[0]
            labels = None if labels is None else labels[0]
            box = None if box is None else box[0]
            mask_input = None if mask_input is None else mask_input[0]
        masks, scores, low_res = self.predictor.predict(
            point_coords=coords,
            point_labels=labels,
            box=box,
            mask_input=mask_input,
            multimask_output=self.multimask,
        )
        h, w = self.image_hw
        masks = np.asarray(masks).reshape(b, -1, h, w)
        scores = np.asarray(scores).reshape(b, -1)
        low_res = np.asarray(low_res).reshape(b, -1, self.low_res_side, self.low_res_side)
        best = scores.argmax(axis=1)  # Seg-Zero / StAR: the highest-scoring of the multimask outputs
        return [
            Prediction(
                mask=masks[k, best[k]].astype(bool),
                score=float(scores[k, best[k]]),
                logits=low_res[k, best[k]][None].astype(np.float32),
            )
            for k in range(b)
        ]

    def _low_res(self, logits: np.ndarray) -> np.ndarray:
        arr = np.asarray(logits, dtype=np.float32)
        s = self.low_res_side
        if arr.size != s * s:
            raise ValueError(
                f"SAM2 mask_logits must be the previous Prediction.logits, shape (1, {s}, {s}); got {arr.shape}"
            )
        return arr.reshape(1, s, s)
