"""LoRA through peft: which layers get an adapter, adding one, and merging it back in fp32.

By default every linear layer of the language model is adapted and the vision
tower is left frozen and unadapted, as StAR does (r = alpha = 64).
"""
from __future__ import annotations

import torch


def _vision_module_names(model) -> list[str]:
    """Names of the modules that belong to the vision side (tower + projector/merger)."""
    names = []
    for name, _ in model.named_modules():
        leaf = name.split(".")
        if any(part in ("vision_tower", "visual", "vision_model", "multi_modal_projector") for part in leaf):
            names.append(name)
    return names


def lora_target_modules(model, include_vision: bool = False) -> list[str]:
    """All ``nn.Linear`` module names of the language model (and of the vision side if asked)."""
    vision = set(_vision_module_names(model))
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not name.endswith("lm_head"):
            if include_vision or name not in vision:
                out.append(name)
    return out


def add_lora(model, lora: dict):
    from peft import LoraConfig, get_peft_model

    lora = dict(lora)
    include_vision = bool(lora.pop("include_vision", False))
    lora.setdefault("r", 64)
    lora.setdefault("lora_alpha", 64)
    lora.setdefault("lora_dropout", 0.05)
    if not lora.get("target_modules"):
        lora["target_modules"] = lora_target_modules(model, include_vision=include_vision)
    return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))


def merged_for_saving(model, inplace: bool = False):
    """A LoRA model's weights merged into plain ones, computed in fp32.

    Merging in bf16 rounds ``W + BA`` to bf16 and drops most small updates; the
    merged model is fp32 and is saved as such. ``inplace=False`` merges a copy
    (the model keeps training or generating as it was); ``True`` casts and
    merges the model itself (after training, saves memory). A model without an
    adapter is returned unchanged.
    """
    import copy

    if not hasattr(model, "merge_and_unload"):
        return model
    target = model if inplace else copy.deepcopy(model)
    target.to(torch.float32)
    return target.merge_and_unload()
