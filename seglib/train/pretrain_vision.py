"""Dense vision pre-training for the tiny embedded policy (a stage of our recipe, not of the papers).

Real VLMs start from a vision encoder pre-trained on billions of images; the
tiny policy starts from random weights, and text loss alone does not teach it
*where* things are (our probe: box IoU 0.02-0.10 after 1,500 steps). This
stage gives the image tokens that knowledge directly. For every image token
(a cell of the token grid) the target names the object it holds:

- objectness (binary cross-entropy);
- colour, shape and size class of that object (cross-entropy; class 0 = background);
- the object's box: each coordinate as one of ``box_bins`` bins (cross-entropy,
  on object tokens only), or with ``box_bins=0`` normalised to [0, 1] (L1).
  Bins give features that say "x0 is in bin 7" in a form a linear read-out,
  such as the language model's choice of the next number token, can use.

A linear head reads these from the *projected* image tokens, i.e. the
features the language model receives, so the language model can match a
query's words to tokens and copy the box. ``pretrain_vision`` trains the
vision tower + projector alone on the training images; ``DenseAux`` adds the
same loss to SFT (joint training). The head is dropped after training: the
saved policy is a plain image-text-to-text checkpoint.

Targets come from the dataset's ``instances.json`` (all objects of an image,
with their ``attributes``), not from the referring query.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from seglib.data.synthref import SHAPES  # the scene vocabulary the dense targets name
from seglib.data.synthref import COLOURS as _SCENE_COLOURS

COLOURS = tuple(_SCENE_COLOURS)  # colour names, in SynthRef's order
SIZES = ("small", "large")
MIN_COVER = 0.15  # a token holds an object if the object covers at least this share of its cell
BOX_BINS = 28  # default bins per box coordinate (4 px at 112 px)


@dataclass
class SceneObject:
    mask: np.ndarray  # bool (H, W), visible pixels
    box: tuple[int, int, int, int]  # inclusive x0, y0, x1, y1
    colour: str | None
    shape: str | None
    size: str | None
    z: int = 0


def scene_objects(data_dir: str | Path) -> dict[str, list[SceneObject]]:
    """Every object of every image of a COCO-style folder, keyed by the image's path (as ``Sample.image_path``)."""
    from seglib.data import segmentation_to_rle
    from seglib.masks import decode_rle

    data_dir = Path(data_dir)
    inst = json.loads((data_dir / "instances.json").read_text())
    images = {int(im["id"]): im for im in inst["images"]}
    out: dict[str, list[SceneObject]] = {}
    for im in images.values():
        p = Path(im["file_name"])
        out[str(p if p.is_absolute() else data_dir / "images" / p)] = []
    for ann in inst["annotations"]:
        im = images[int(ann["image_id"])]
        p = Path(im["file_name"])
        key = str(p if p.is_absolute() else data_dir / "images" / p)
        rle = segmentation_to_rle(ann["segmentation"], int(im["height"]), int(im["width"]), f"annotation {ann['id']}")
        mask = decode_rle(rle)
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        attrs = ann.get("attributes") or {}
        out[key].append(SceneObject(mask, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())),
                                    attrs.get("colour"), attrs.get("shape"), attrs.get("size"), int(attrs.get("z", 0))))
    return out


def token_grid(model) -> int:
    """Side of the square image-token grid the language model receives."""
    cfg = model.config
    vc = cfg.vision_config
    if getattr(cfg, "model_type", "") in ("qwen2_5_vl", "qwen2_vl"):
        raise ValueError("token_grid: pass grid explicitly for Qwen2-VL models (it depends on the processor)")
    return int(vc.image_size) // int(vc.patch_size)


def dense_targets(objects: Sequence[SceneObject], height: int, width: int, grid: int) -> dict[str, np.ndarray]:
    """Per-token targets on a ``grid`` x ``grid`` token grid (raster order) for one image.

    A token holds the object covering the largest share of its cell (at least
    ``MIN_COVER``); ties go to the object drawn on top. Returns ``colour``,
    ``shape``, ``size`` (int, 0 = background), ``box`` (float, x0/W, y0/H,
    x1/W, y1/H) and ``objectness`` (float 0/1), each flattened to grid*grid.
    """
    n = grid * grid
    colour = np.zeros(n, np.int64)
    shape = np.zeros(n, np.int64)
    size = np.zeros(n, np.int64)
    box = np.zeros((n, 4), np.float32)
    obj = np.zeros(n, np.float32)
    best = np.full(n, MIN_COVER - 1e-9)
    ys = (np.arange(grid + 1) * height / grid).round().astype(int)
    xs = (np.arange(grid + 1) * width / grid).round().astype(int)
    for o in sorted(objects, key=lambda o: o.z):
        integral = np.pad(o.mask.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        area = (ys[1:, None] - ys[:-1, None]) * (xs[None, 1:] - xs[None, :-1])
        cover = (integral[ys[1:, None], xs[None, 1:]] - integral[ys[:-1, None], xs[None, 1:]]
                 - integral[ys[1:, None], xs[None, :-1]] + integral[ys[:-1, None], xs[None, :-1]]) / np.maximum(area, 1)
        cover = cover.reshape(-1)
        sel = cover >= best
        best[sel] = cover[sel]
        colour[sel] = COLOURS.index(o.colour) + 1 if o.colour in COLOURS else 0
        shape[sel] = SHAPES.index(o.shape) + 1 if o.shape in SHAPES else 0
        size[sel] = SIZES.index(o.size) + 1 if o.size in SIZES else 0
        box[sel] = np.array([o.box[0] / width, o.box[1] / height, (o.box[2] + 1) / width, (o.box[3] + 1) / height])
        obj[sel] = 1.0
    return {"colour": colour, "shape": shape, "size": size, "box": box, "objectness": obj}


def head_size(box_bins: int = BOX_BINS) -> int:
    return 1 + (len(COLOURS) + 1) + (len(SHAPES) + 1) + (len(SIZES) + 1) + 4 * (box_bins or 1)


def dense_loss(logits: torch.Tensor, targets: dict[str, torch.Tensor], box_bins: int = BOX_BINS) -> torch.Tensor:
    """Sum of the per-token losses; ``logits`` is (B, N, head_size(box_bins)), targets (B, N[, 4])."""
    i = 0
    obj = targets["objectness"].float()
    loss = F.binary_cross_entropy_with_logits(logits[..., 0], obj)
    i = 1
    for key, k in (("colour", len(COLOURS) + 1), ("shape", len(SHAPES) + 1), ("size", len(SIZES) + 1)):
        loss = loss + F.cross_entropy(logits[..., i:i + k].reshape(-1, k), targets[key].reshape(-1).long())
        i += k
    box = targets["box"].float()
    if box_bins:
        # x0, y0 are inclusive starts, x1, y1 exclusive ends in [0, 1]: bin of the first / last pixel
        bins = torch.cat([box[..., :2] * box_bins, box[..., 2:] * box_bins - 1e-4], -1).floor().long()
        bins = bins.clamp(0, box_bins - 1)
        lg = logits[..., i:i + 4 * box_bins].reshape(*logits.shape[:-1], 4, box_bins)
        per = F.cross_entropy(lg.reshape(-1, box_bins), bins.reshape(-1), reduction="none").reshape(bins.shape).mean(-1)
    else:
        per = 5.0 * (torch.sigmoid(logits[..., i:i + 4]) - box).abs().mean(-1)
    return loss + (per * obj).sum() / obj.sum().clamp(min=1.0)


class ImageTokenTap:
    """Captures the projected image tokens (what the language model receives) with a forward hook.

    LLaVA-style models: the output of ``multi_modal_projector``; Qwen2-VL
    models: the output of the vision tower's ``merger`` (raster order while the
    vision window covers the whole image, as in the tiny config).
    """

    def __init__(self, model):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        inner = getattr(base, "model", base)
        if hasattr(inner, "multi_modal_projector"):
            module = inner.multi_modal_projector
        elif hasattr(inner, "visual") and hasattr(inner.visual, "merger"):
            module = inner.visual.merger
        else:
            raise ValueError(f"ImageTokenTap: no projector/merger found on {type(base).__name__}")
        self.features: torch.Tensor | None = None
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.features = output

    def tokens(self, batch_size: int) -> torch.Tensor:
        f = self.features
        if f is None:
            raise RuntimeError("ImageTokenTap: no image tokens captured yet")
        return f.reshape(batch_size, -1, f.shape[-1])

    def remove(self) -> None:
        self._handle.remove()


class DenseHead(torch.nn.Module):
    """Linear read-out of the dense targets from the image tokens."""

    def __init__(self, dim: int, box_bins: int = BOX_BINS):
        super().__init__()
        self.box_bins = box_bins
        self.proj = torch.nn.Linear(dim, head_size(box_bins))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens)


def image_features(model, processor, pil_images: list) -> None:
    """Run only the vision side of ``model`` on ``pil_images`` (the tap captures the tokens)."""
    enc = processor.image_processor(images=pil_images, return_tensors="pt")
    device = next(model.parameters()).device
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", base)
    if "image_grid_thw" in enc:
        inner.get_image_features(pixel_values=enc["pixel_values"].to(device), image_grid_thw=enc["image_grid_thw"].to(device))
    else:
        inner.get_image_features(pixel_values=enc["pixel_values"].to(device))


def grid_for(model, processor) -> int:
    """Token-grid side for this model + processor at the processor's input size."""
    cfg = model.config
    if hasattr(processor.image_processor, "merge_size"):
        ip = processor.image_processor
        side = int(math.sqrt(ip.max_pixels if getattr(ip, "max_pixels", None) else ip.size["longest_edge"]))
        return side // (ip.patch_size * ip.merge_size)
    return int(cfg.vision_config.image_size) // int(cfg.vision_config.patch_size)


def pretrain_vision(
    model,
    processor,
    images: Sequence[np.ndarray],
    objects: Sequence[Sequence[SceneObject]],
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 25,
    box_bins: int = BOX_BINS,
) -> list[dict]:
    """Train the vision tower + projector on the dense targets; returns the loss log.

    ``images[i]`` (uint8 RGB) holds ``objects[i]``. One-cycle learning rate.
    The language model is untouched; the head is discarded afterwards.
    """
    from PIL import Image

    if steps <= 0:
        return []
    grid = grid_for(model, processor)
    tap = ImageTokenTap(model)
    device = next(model.parameters()).device
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", base)
    vision_modules = [m for name in ("vision_tower", "multi_modal_projector", "visual") if (m := getattr(inner, name, None)) is not None]
    params = [p for m in vision_modules for p in m.parameters()]
    dim = model.config.get_text_config().hidden_size
    head = DenseHead(dim, box_bins).to(device)
    opt = torch.optim.AdamW(params + list(head.parameters()), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    targets = [dense_targets(objs, im.shape[0], im.shape[1], grid) for im, objs in zip(images, objects)]
    pils = [Image.fromarray(im) for im in images]
    rng = np.random.default_rng(seed)
    log: list[dict] = []
    t0 = time.time()
    was_training = model.training
    model.train()
    try:
        for step in tqdm(range(steps), desc="dense vision pre-training"):
            idx = rng.integers(0, len(pils), batch_size)
            image_features(model, processor, [pils[i] for i in idx])
            batch_t = {k: torch.as_tensor(np.stack([targets[i][k] for i in idx])).to(device) for k in targets[0]}
            loss = dense_loss(head(tap.tokens(len(idx))), batch_t, box_bins)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if step % log_every == 0 or step == steps - 1:
                log.append({"step": step, "dense_loss": float(loss.item()), "seconds": time.time() - t0})
    finally:
        tap.remove()
        model.train(was_training)
    return log


def pretrain_on_folder(model, processor, data_dir: str | Path, split: str = "train", steps: int = 100,
                       batch_size: int = 16, lr: float = 1e-3, seed: int = 0, max_images: int | None = None,
                       box_bins: int = BOX_BINS) -> list[dict]:
    """``pretrain_vision`` on every image of ``split`` in a COCO-style folder (all objects, not just targets)."""
    from seglib.data import load_samples, read_image

    paths = sorted({s.image_path for s in load_samples(data_dir, split)})[:max_images]
    scene = scene_objects(data_dir)
    images = [read_image(p) for p in paths]
    return pretrain_vision(model, processor, images, [scene[p] for p in paths], steps, batch_size, lr, seed,
                           box_bins=box_bins)
