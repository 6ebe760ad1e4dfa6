"""The dense auxiliary loss of SFT for the embedded tiny policy (``seglib.train.pretrain_vision``).

The rows carry per-image-token targets (``dense_fields``: colour, shape, size, box,
objectness from the scene's instances, and ``target``: the tokens that hold the
queried object); ``DenseCollator`` stacks them beside trl's vision batch, and the
trainer class of ``dense_trainer_class`` adds ``dense_weight`` x the dense loss (a
head on the vision tokens) and ``target_weight`` x a BCE read from the language
model's last layer (``LastLayerTap``) to trl's text loss. ``attach_dense_heads``
puts both heads on a trainer and into its optimizer; they are dropped after training.
"""
from __future__ import annotations

import numpy as np
import torch

from seglib.train.pretrain_vision import DenseHead, ImageTokenTap, SceneObject, dense_loss, dense_targets

DENSE_KEYS = ("colour", "shape", "size", "box", "objectness", "target")


def dense_fields(objects: list[SceneObject], height: int, width: int, grid: int | None, sample=None) -> dict:
    """Dense per-token targets of one image (``dense_<key>`` lists); ``sample`` adds its queried target."""
    if grid is None:
        raise ValueError("dense targets need the token grid (pretrain_vision.grid_for(model, processor))")
    t = dense_targets(objects, height, width, grid)
    if sample is not None and sample.target_rles:
        union = sample.union_mask()
        t["target"] = dense_targets([SceneObject(union, (0, 0, 0, 0), None, None, None)], height, width, grid)["objectness"]
    else:
        t["target"] = np.zeros(grid * grid, np.float32)
    return {f"dense_{k}": t[k].tolist() for k in DENSE_KEYS}


class DenseCollator:
    """trl's vision collator plus the stacked dense targets (when the rows carry them)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, examples: list[dict]) -> dict:
        dense = None
        if "dense_objectness" in examples[0]:
            dense = {k: torch.as_tensor(np.stack([np.asarray(e[f"dense_{k}"]) for e in examples])) for k in DENSE_KEYS}
        clean = [{k: v for k, v in e.items() if not k.startswith("dense_") and k not in ("sample_id", "kind")}
                 for e in examples]
        out = self.base(clean)
        if dense is not None:
            out["dense_targets"] = dense
        return out


def dense_trainer_class():
    """trl's ``SFTTrainer`` subclass that adds the dense losses (and really restores weights on resume)."""
    from trl import SFTTrainer

    from seglib.models import reload_checkpoint_weights

    class DenseSFTTrainer(SFTTrainer):
        """trl's SFTTrainer; adds ``dense_weight`` × the dense image-token loss when the batch carries targets."""

        dense_weight: float = 0.0
        dense_head: DenseHead | None = None
        dense_tap: ImageTokenTap | None = None
        target_weight: float = 0.0
        target_head: torch.nn.Module | None = None
        lm_tap: "LastLayerTap | None" = None

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            reload_checkpoint_weights(self.model if model is None else model, resume_from_checkpoint)

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            self._signature_columns = list(self._signature_columns) + [f"dense_{k}" for k in DENSE_KEYS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            dense = inputs.pop("dense_targets", None)
            result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                          num_items_in_batch=num_items_in_batch)
            if dense is None or self.dense_head is None:
                return result
            loss = result[0] if return_outputs else result
            mode = "train" if model.training else "eval"
            tokens = self.dense_tap.tokens(inputs["input_ids"].shape[0])
            if self.dense_weight:
                dl = dense_loss(self.dense_head(tokens), {k: v.to(tokens.device) for k, v in dense.items()},
                                self.dense_head.box_bins)
                self._metrics[mode]["dense_loss"].append(float(dl.detach().item()))
                loss = loss + self.dense_weight * dl
            if self.target_weight and self.lm_tap is not None:
                image_id = self.processing_class.image_token_id
                hidden = self.lm_tap.hidden[inputs["input_ids"] == image_id].reshape(tokens.shape[0], tokens.shape[1], -1)
                tl = torch.nn.functional.binary_cross_entropy_with_logits(
                    self.target_head(hidden)[..., 0], dense["target"].to(hidden.device).float())
                self._metrics[mode]["target_loss"].append(float(tl.detach().item()))
                loss = loss + self.target_weight * tl
            return (loss, result[1]) if return_outputs else loss

    return DenseSFTTrainer


class LastLayerTap:
    """Captures the language model's last decoder layer output (B, L, D) with a forward hook."""

    def __init__(self, model):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        lm = base.model.language_model
        self.hidden = None
        self._handle = lm.layers[-1].register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.hidden = output[0] if isinstance(output, tuple) else output

    def remove(self) -> None:
        self._handle.remove()


def attach_dense_heads(trainer, model, settings) -> list:
    """Put the dense head (and, with ``settings.target_weight``, the target head) on ``trainer``.

    The heads train with the model: their parameters join the optimizer trl
    creates. Returns the hooks to remove after training.
    """
    tap = ImageTokenTap(model)
    device = next(model.parameters()).device
    head = DenseHead(model.config.get_text_config().hidden_size, settings.dense_box_bins).to(device)
    trainer.dense_weight, trainer.dense_head, trainer.dense_tap = settings.dense_weight, head, tap
    heads = list(head.parameters())
    hooks = [tap]
    if settings.target_weight > 0:
        lm_tap = LastLayerTap(model)
        target_head = torch.nn.Linear(model.config.get_text_config().hidden_size, 1).to(device)
        trainer.target_weight, trainer.target_head, trainer.lm_tap = settings.target_weight, target_head, lm_tap
        heads += list(target_head.parameters())
        hooks.append(lm_tap)
    trainer.create_optimizer()
    trainer.optimizer.add_param_group({"params": heads, "weight_decay": 0.0})
    return hooks
