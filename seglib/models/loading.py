"""Loading a policy: (model, processor) from a hub name or a local folder, for inference or training.

Full scale loads ``Qwen/Qwen2.5-VL-3B-Instruct`` (or any image-text-to-text
checkpoint transformers supports) through ``AutoModelForImageTextToText`` and
``AutoProcessor``, with the checkpoint's own chat template. A folder holding a
saved peft adapter is loaded onto its base model (``ADAPTER_MODES``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from seglib.models.lora import add_lora


def _looks_like_path(name: str) -> bool:
    """A local folder rather than a hub id ("Org/name"): absolute, relative with ./ or ../, ~, or 3+ parts."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") >= 2 or "\\" in name


#: How ``load_policy`` treats a folder holding a saved peft adapter (``adapter_config.json``):
#: ``"frozen"`` loads it for inference; ``"trainable"`` loads it with its LoRA weights trainable (training
#: continues the same adapter, the base stays frozen); ``"merge"`` merges it into the base in fp32 and returns
#: plain weights (full fine-tuning then trains every parameter; a ``lora`` dict puts a new adapter on top).
ADAPTER_MODES = ("frozen", "trainable", "merge")


def _set_max_pixels(processor, max_pixels: int | None) -> None:
    """Cap a dynamic-resolution image processor (Qwen-style ``size["longest_edge"]``, in pixels per image).

    Processors with a fixed input size (the tiny llava's CLIP) are left alone.
    The cap is kept when the processor is saved with a checkpoint.
    """
    if max_pixels is None:
        return
    ip = getattr(processor, "image_processor", None)
    size = getattr(ip, "size", None)
    try:
        longest, shortest = size["longest_edge"], size["shortest_edge"]
    except (TypeError, KeyError):
        return
    if longest is None or getattr(ip, "merge_size", None) is None:
        return
    max_pixels = int(max_pixels)
    if max_pixels < int(shortest or 0):
        raise ValueError(f"max_pixels {max_pixels} is below the processor's min_pixels {shortest}")
    size["longest_edge"] = max_pixels


def load_policy(
    name_or_path: str | Path,
    lora: dict | None = None,
    device: str = "cpu",
    dtype: torch.dtype | str | None = None,
    adapter: str = "frozen",
    max_pixels: int | None = None,
):
    """Load (model, processor) from a HF name or local folder through the Auto classes.

    ``lora``: None for full weights, or a dict of peft ``LoraConfig`` fields
    (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``). Without
    ``target_modules`` every linear layer of the language model is adapted and
    the vision tower is left out (StAR); ``include_vision=True`` adds it.
    A folder holding a saved peft adapter (``adapter_config.json``) is loaded
    onto its base model as ``adapter`` says (``ADAPTER_MODES``; ``"frozen"``
    with a ``lora`` dict counts as ``"merge"``: the new adapter goes on the merged
    weights). ``dtype`` None keeps the checkpoint's own (``"auto"``).
    ``max_pixels`` caps a dynamic-resolution processor's image size (Qwen2.5-VL:
    pixels per image; 28 x 28 pixels make one image token), None keeps it.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if adapter not in ADAPTER_MODES:
        raise ValueError(f"adapter must be one of {ADAPTER_MODES}, got {adapter!r}")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    path = Path(str(name_or_path)).expanduser()
    if not path.exists() and _looks_like_path(str(name_or_path)):
        raise FileNotFoundError(f"policy checkpoint {name_or_path} does not exist")
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        if adapter == "trainable" and lora:
            raise ValueError(f"{path}: adapter='trainable' continues the saved adapter; a new lora dict "
                             f"({lora}) would need adapter='merge'")
        mode = "merge" if (lora and adapter == "frozen") else adapter
        cfg = json.loads((path / "adapter_config.json").read_text())
        base_dtype = torch.float32 if mode == "merge" else dtype  # the merge runs in fp32
        base, processor = load_policy(cfg["base_model_name_or_path"], None, device, base_dtype)
        model = PeftModel.from_pretrained(base, str(path), is_trainable=mode == "trainable")
        if (path / "processor_config.json").exists() or (path / "tokenizer_config.json").exists():
            processor = AutoProcessor.from_pretrained(str(path))
            processor.tokenizer.padding_side = "left"
        if mode == "merge":
            model = model.merge_and_unload()
            model.requires_grad_(True)  # plain weights, as from_pretrained gives them (peft had frozen the base)
            if dtype is not None and dtype != torch.float32:
                model = model.to(dtype)
            if lora:
                model = add_lora(model, lora)
        _set_max_pixels(processor, max_pixels)
        model.seglib_source = str(path)
        return model, processor
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = AutoModelForImageTextToText.from_pretrained(str(name_or_path), **kwargs)
    processor = AutoProcessor.from_pretrained(str(name_or_path))
    processor.tokenizer.padding_side = "left"
    _set_max_pixels(processor, max_pixels)
    model.to(device)
    if lora:
        model = add_lora(model, lora)
    model.seglib_source = str(name_or_path)
    return model, processor


def require_trainable(model, source: str | Path | None = None) -> int:
    """The number of trainable parameter elements; raises ValueError naming ``source`` when there are none."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n == 0:
        where = source if source is not None else getattr(model, "seglib_source", "the policy")
        raise ValueError(f"{where}: no parameter requires grad, training would change nothing (a LoRA "
                         "checkpoint loaded frozen? load it with adapter='trainable' or 'merge')")
    return n


def load_for_training(
    name_or_path: str | Path,
    lora: dict | None = None,
    device: str = "cpu",
    adapter: str = "merge",
    max_pixels: int | None = None,
):
    """(model, processor) ready to train: fp32 master weights wherever weights are trained.

    Full fine-tuning (no adapter left trainable) loads every weight in fp32:
    mixed precision is then the trainer's bf16 autocast, while the optimiser
    updates fp32 weights (bf16 weights updated in place lose updates smaller
    than their 8-bit mantissa's step, e.g. most of lr 1e-6). With a LoRA
    adapter (a new one, or the source's with ``adapter="trainable"``) the frozen
    base keeps the checkpoint's dtype and peft keeps the adapter in fp32.
    An adapter source follows ``adapter`` (``ADAPTER_MODES``; default
    ``"merge"``: merged in fp32, then fully fine-tuned, or a new ``lora`` on
    top). Raises ValueError naming the checkpoint when nothing would train.
    """
    path = Path(str(name_or_path)).expanduser()
    is_adapter = (path / "adapter_config.json").exists()
    if adapter == "frozen":
        raise ValueError(f"{name_or_path}: adapter='frozen' trains nothing; use 'trainable' or 'merge'")
    uses_lora = bool(lora) or (is_adapter and adapter == "trainable")
    dtype = None if uses_lora else torch.float32
    model, processor = load_policy(name_or_path, lora=lora, device=device, dtype=dtype, adapter=adapter,
                                   max_pixels=max_pixels)
    model.to(device)
    require_trainable(model, name_or_path)
    return model, processor


def reload_checkpoint_weights(model: Any, checkpoint: str | Path) -> None:
    """Put a checkpoint's weights into ``model`` through ``from_pretrained`` (with its key conversion).

    transformers 5.23's ``Trainer`` resume reads ``model.safetensors`` without
    the key conversion ``from_pretrained`` applies to vision-language models
    (huggingface/transformers#43701): the saved keys
    (``language_model.model.…``) do not match the module names
    (``model.language_model.…``), are skipped, and training silently restarts
    from the initial weights. A LoRA checkpoint (adapter files) is left to
    the Trainer, which loads adapters by name.
    """
    from transformers import AutoModelForImageTextToText

    checkpoint = Path(checkpoint)
    inner = model.module if hasattr(model, "module") else model
    if hasattr(inner, "peft_config") or not (checkpoint / "config.json").exists():
        return
    dtype = next(inner.parameters()).dtype
    fresh = AutoModelForImageTextToText.from_pretrained(str(checkpoint), dtype=dtype)
    missing, unexpected = inner.load_state_dict(fresh.state_dict(), strict=False)
    if unexpected or [k for k in missing if not k.endswith("lm_head.weight")]:
        raise RuntimeError(f"{checkpoint}: weights do not fit the model (missing {missing[:3]}, unexpected "
                           f"{unexpected[:3]})")
    del fresh
