"""The embedded tiny policy: random weights from a config, saved like a real checkpoint.

A tokenizer trained on the task's own text (``seglib.models.tokenizer``), an
image processor and a chat template are saved beside the weights, and
``load_policy`` reloads them as it would any checkpoint. Two architectures:

- ``"llava"`` (default): a CLIP vision tower (learned *absolute* position
  embeddings), a two-layer projector and a Llama language model;
- ``"qwen2_5_vl"``: Qwen2.5-VL's own class with a tiny config (2-D RoPE in the
  vision tower, M-RoPE in the language model: no absolute positions).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import torch

from seglib.models.tokenizer import IMAGE_TOKEN_LLAVA, QWEN_SPECIAL, chat_template, train_tokenizer

DEFAULT_TINY_PARAMS: dict[str, Any] = {
    "arch": "llava",
    "image_size": 112,  # the side the processor resizes every image to
    "patch_size": 14,  # llava: 8x8 tokens at 112 px; qwen2_5_vl: patch 14, merge 2 -> 28 px tokens
    "vision_hidden": 128,
    "vision_layers": 3,
    "vision_heads": 4,
    "text_hidden": 192,
    "text_layers": 4,
    "text_heads": 4,
    "vocab_size": 600,
    "split_digits": True,  # every digit its own token; False keeps digit runs whole ("27" one token if learnt)
    "number_tokens": 0,  # > 0: the integers 0..N-1 are taught to the BPE trainer, so each is one token
    "text_first": False,  # chat template puts the query before the image tokens
    "max_position_embeddings": 1024,
    "seed": 0,
}

_QWEN_IMAGE_MARKUP = "<|vision_start|><|image_pad|><|vision_end|>"


def _text_fields(p: dict, tokenizer) -> dict:
    """The language model's config fields, shared by both architectures."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=p["text_hidden"],
        intermediate_size=4 * p["text_hidden"],
        num_hidden_layers=p["text_layers"],
        num_attention_heads=p["text_heads"],
        num_key_value_heads=p["text_heads"],
        max_position_embeddings=p["max_position_embeddings"],
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def _llava_config(p: dict, tokenizer):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    n_side = p["image_size"] // p["patch_size"]
    vision = CLIPVisionConfig(
        hidden_size=p["vision_hidden"],
        intermediate_size=4 * p["vision_hidden"],
        num_hidden_layers=p["vision_layers"],
        num_attention_heads=p["vision_heads"],
        image_size=p["image_size"],
        patch_size=p["patch_size"],
        projection_dim=p["vision_hidden"],
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=LlamaConfig(**_text_fields(p, tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN_LLAVA),
        image_seq_length=n_side * n_side,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )


def _qwen_config(p: dict, tokenizer):
    from transformers import Qwen2_5_VLConfig

    head_dim = p["text_hidden"] // p["text_heads"]
    # M-RoPE sections (temporal, height, width) in units of rotary pairs; they must sum to head_dim / 2.
    half = head_dim // 2
    hw = (half - half // 4) // 2
    section = [half - 2 * hw, hw, hw]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    text = _text_fields(p, tokenizer)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section}
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(
            depth=p["vision_layers"],
            hidden_size=p["vision_hidden"],
            intermediate_size=4 * p["vision_hidden"],
            num_heads=p["vision_heads"],
            patch_size=p["patch_size"],
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=p["image_size"],
            out_hidden_size=p["text_hidden"],
            fullatt_block_indexes=list(range(p["vision_layers"])),
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def _build_llava(p: dict, train_texts: Iterable[str]):
    """(tokenizer, processor, model) of the tiny Llava."""
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = train_tokenizer(train_texts, p["vocab_size"], [IMAGE_TOKEN_LLAVA], p["split_digits"], p["number_tokens"])
    side = p["image_size"]
    image_processor = CLIPImageProcessor(
        size={"height": side, "width": side},
        do_center_crop=False,
        do_resize=True,
        resample=3,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=p["patch_size"],
        vision_feature_select_strategy="default",
        chat_template=chat_template(IMAGE_TOKEN_LLAVA, p["text_first"]),
        image_token=IMAGE_TOKEN_LLAVA,
        num_additional_image_tokens=1,
    )
    return tokenizer, processor, LlavaForConditionalGeneration(_llava_config(p, tokenizer))


def _build_qwen(p: dict, train_texts: Iterable[str]):
    """(tokenizer, processor, model) of the tiny Qwen2.5-VL."""
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = train_tokenizer(train_texts, p["vocab_size"], QWEN_SPECIAL, p["split_digits"], p["number_tokens"])
    side = p["image_size"]
    unit = p["patch_size"] * 2
    if side % unit:
        raise ValueError(f"build_tiny_policy: image_size {side} must be a multiple of patch_size*2 = {unit}")
    image_processor = Qwen2VLImageProcessor(
        min_pixels=side * side,
        max_pixels=side * side,
        patch_size=p["patch_size"],
        merge_size=2,
        temporal_patch_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen2VLVideoProcessor(patch_size=p["patch_size"], merge_size=2, temporal_patch_size=2)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
        chat_template=chat_template(_QWEN_IMAGE_MARKUP, p["text_first"]),
    )
    return tokenizer, processor, Qwen2_5_VLForConditionalGeneration(_qwen_config(p, tokenizer))


_BUILDERS = {"llava": _build_llava, "qwen2_5_vl": _build_qwen}


def build_tiny_policy(params: dict | None, train_texts: Iterable[str], out_dir: str | Path) -> str:
    """Build the embedded tiny policy and save it to ``out_dir`` like a real checkpoint.

    ``params`` overrides ``DEFAULT_TINY_PARAMS`` (``arch`` "llava" | "qwen2_5_vl",
    ``image_size`` the processor's input side, ``patch_size``, widths and depths,
    ``vocab_size`` of the trained tokenizer). ``train_texts`` are the prompts and
    answers of the task (the tokenizer is trained on them). Returns ``out_dir``.
    """
    p = dict(DEFAULT_TINY_PARAMS)
    unknown = set(params or {}) - set(p)
    if unknown:
        raise ValueError(f"build_tiny_policy: unknown params {sorted(unknown)}; valid: {sorted(p)}")
    p.update(params or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(p["seed"]))
    build = _BUILDERS.get(p["arch"])
    if build is None:
        raise ValueError(f"build_tiny_policy: arch must be 'llava' or 'qwen2_5_vl', got {p['arch']!r}")
    tokenizer, processor, model = build(p, train_texts)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / "tiny_params.json").write_text(json.dumps(p, indent=1))
    return str(out_dir)
