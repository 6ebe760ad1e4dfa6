"""The policy: a multimodal LLM (image + text in, text out) and its processor.

- ``loading``: ``load_policy`` / ``load_for_training`` through the Auto classes
  (full scale: ``Qwen/Qwen2.5-VL-3B-Instruct``, with the checkpoint's own chat
  template), peft adapters, ``reload_checkpoint_weights``.
- ``lora``: LoRA through peft, by default on every linear layer of the language
  model with the vision tower frozen and unadapted, as StAR does (r = alpha = 64).
- ``generation``: ``generate`` (left padding, explicit settings), ``to_pil``.
- ``tiny`` / ``tokenizer``: the embedded default, a tiny model built from a
  config with random weights (``build_tiny_policy``): a tokenizer trained on the
  task's own text, an image processor, a chat template, all saved like a real
  checkpoint and reloaded by ``load_policy``. Nothing downstream knows it is
  tiny. The embedded recipe found that the vision tower's absolute position
  embeddings matter for localisation (see notebook 03 and
  ``seglib.train.pretrain_vision``).
"""
from seglib.models.generation import (
    _generation_config,
    chat_prompt,
    eos_token_ids,
    generate,
    generation_settings,
    to_pil,
)
from seglib.models.loading import (
    ADAPTER_MODES,
    load_for_training,
    load_policy,
    reload_checkpoint_weights,
    require_trainable,
)
from seglib.models.lora import add_lora, lora_target_modules, merged_for_saving
from seglib.models.tiny import DEFAULT_TINY_PARAMS, build_tiny_policy
from seglib.models.tokenizer import CHAT_SPECIAL, IMAGE_TOKEN_LLAVA, QWEN_SPECIAL, chat_template, train_tokenizer

__all__ = [
    "ADAPTER_MODES",
    "CHAT_SPECIAL",
    "DEFAULT_TINY_PARAMS",
    "IMAGE_TOKEN_LLAVA",
    "QWEN_SPECIAL",
    "add_lora",
    "build_tiny_policy",
    "chat_prompt",
    "chat_template",
    "eos_token_ids",
    "generate",
    "generation_settings",
    "load_for_training",
    "load_policy",
    "lora_target_modules",
    "merged_for_saving",
    "reload_checkpoint_weights",
    "require_trainable",
    "to_pil",
    "train_tokenizer",
]
