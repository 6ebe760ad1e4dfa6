"""The policy: a multimodal LLM (image + text in, text out) and its processor.

Full scale loads ``Qwen/Qwen2.5-VL-3B-Instruct`` (or any image-text-to-text
checkpoint transformers supports) through ``AutoModelForImageTextToText`` and
``AutoProcessor``, with the checkpoint's own chat template. LoRA goes through
peft; by default it adapts every linear layer of the language model and leaves
the vision tower frozen and unadapted, as StAR does (r = alpha = 64).

The embedded default is a tiny model built from a config with random weights
(``build_tiny_policy``): a tokenizer trained on the task's own text with the
``tokenizers`` library, an image processor, a chat template, all saved like a
real checkpoint and reloaded by ``load_policy``. Nothing downstream knows it
is tiny. Two tiny architectures are available:

- ``"llava"`` (default): a CLIP vision tower (learned *absolute* position
  embeddings), a two-layer projector and a Llama language model;
- ``"qwen2_5_vl"``: Qwen2.5-VL's own class with a tiny config (2-D RoPE in the
  vision tower, M-RoPE in the language model: no absolute positions).

The embedded recipe found that the absolute position embeddings matter for
localisation (see notebook 03 and ``seglib.train.pretrain_vision``).

``generate`` pads on the left and passes the attention mask, so a sample's
greedy output does not depend on the batch it was run in.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

IMAGE_TOKEN_LLAVA = "<image>"
QWEN_SPECIAL = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
CHAT_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# A ChatML template (the format Qwen2.5-VL uses) with {% generation %} markers
# around the assistant's text so trl can mask everything else from the loss.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{% else %}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{{ '<|im_end|>' }}{% endgeneration %}"
    "{% else %}"
    "__USER_PARTS__"
    "{{ '<|im_end|>' }}"
    "{% endif %}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# user content in the order given (image, then text: the usual VLM layout) ...
_USER_PARTS_IN_ORDER = (
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '__IMAGE__' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
)
# ... or the text first, then the image: with causal attention the image tokens can then read the query
_USER_PARTS_TEXT_FIRST = (
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '__IMAGE__' }}{% endif %}{% endfor %}"
)


def chat_template(image_markup: str, text_first: bool = False) -> str:
    """The tiny policy's ChatML template; ``image_markup`` is what stands for one image."""
    parts = _USER_PARTS_TEXT_FIRST if text_first else _USER_PARTS_IN_ORDER
    return _CHAT_TEMPLATE.replace("__USER_PARTS__", parts).replace("__IMAGE__", image_markup)


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
    "number_tokens": 0,
    "text_first": False,  # chat template puts the query before the image tokens  # > 0: the integers 0..N-1 are taught to the BPE trainer, so each is one token
    "max_position_embeddings": 1024,
    "seed": 0,
}


# --------------------------------------------------------------------------- tokenizer


def train_tokenizer(train_texts: Iterable[str], vocab_size: int, extra_special: Sequence[str],
                    split_digits: bool = True, number_tokens: int = 0):
    """A byte-level BPE tokenizer trained on the task's text, with ChatML special tokens.

    ``split_digits``: every digit is its own token; otherwise digit runs are
    pre-tokens of their own and ``number_tokens`` > 0 makes each integer below
    it a single token (the trainer sees each one often enough to merge it).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = list(CHAT_SPECIAL) + [t for t in extra_special if t not in CHAT_SPECIAL]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=split_digits), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    texts = list(train_texts)
    if number_tokens and not split_digits:
        texts += [" ".join(str(i) for i in range(number_tokens))] * 64
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in special if t not in ("<|im_end|>", "<|endoftext|>")],
    )
    fast.padding_side = "left"
    return fast


# --------------------------------------------------------------------------- tiny policy


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
    text = LlamaConfig(
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
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
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
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=p["text_hidden"],
            intermediate_size=4 * p["text_hidden"],
            num_hidden_layers=p["text_layers"],
            num_attention_heads=p["text_heads"],
            num_key_value_heads=p["text_heads"],
            max_position_embeddings=p["max_position_embeddings"],
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
            tie_word_embeddings=False,
            bos_token_id=None,
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=tokenizer.pad_token_id,
        ),
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


def build_tiny_policy(params: dict | None, train_texts: Iterable[str], out_dir: str | Path) -> str:
    """Build the embedded tiny policy and save it to ``out_dir`` like a real checkpoint.

    ``params`` overrides ``DEFAULT_TINY_PARAMS`` (``arch`` "llava" | "qwen2_5_vl",
    ``image_size`` the processor's input side, ``patch_size``, widths and depths,
    ``vocab_size`` of the trained tokenizer). ``train_texts`` are the prompts and
    answers of the task (the tokenizer is trained on them). Returns ``out_dir``.
    """
    from transformers import (
        CLIPImageProcessor,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )

    p = dict(DEFAULT_TINY_PARAMS)
    unknown = set(params or {}) - set(p)
    if unknown:
        raise ValueError(f"build_tiny_policy: unknown params {sorted(unknown)}; valid: {sorted(p)}")
    p.update(params or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(p["seed"]))
    arch = p["arch"]
    if arch == "llava":
        tokenizer = train_tokenizer(train_texts, p["vocab_size"], [IMAGE_TOKEN_LLAVA], p["split_digits"], p["number_tokens"])
        template = chat_template(IMAGE_TOKEN_LLAVA, p["text_first"])
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
            chat_template=template,
            image_token=IMAGE_TOKEN_LLAVA,
            num_additional_image_tokens=1,
        )
        model = LlavaForConditionalGeneration(_llava_config(p, tokenizer))
    elif arch == "qwen2_5_vl":
        tokenizer = train_tokenizer(train_texts, p["vocab_size"], QWEN_SPECIAL, p["split_digits"], p["number_tokens"])
        template = chat_template("<|vision_start|><|image_pad|><|vision_end|>", p["text_first"])
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
        from transformers import Qwen2VLVideoProcessor

        video_processor = Qwen2VLVideoProcessor(patch_size=p["patch_size"], merge_size=2, temporal_patch_size=2)
        processor = Qwen2_5_VLProcessor(
            image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor, chat_template=template
        )
        model = Qwen2_5_VLForConditionalGeneration(_qwen_config(p, tokenizer))
    else:
        raise ValueError(f"build_tiny_policy: arch must be 'llava' or 'qwen2_5_vl', got {arch!r}")
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / "tiny_params.json").write_text(json.dumps(p, indent=1))
    return str(out_dir)


# --------------------------------------------------------------------------- loading


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
                model = _add_lora(model, lora)
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
        model = _add_lora(model, lora)
    model.seglib_source = str(name_or_path)
    return model, processor


def _add_lora(model, lora: dict):
    from peft import LoraConfig, get_peft_model

    lora = dict(lora)
    include_vision = bool(lora.pop("include_vision", False))
    lora.setdefault("r", 64)
    lora.setdefault("lora_alpha", 64)
    lora.setdefault("lora_dropout", 0.05)
    if not lora.get("target_modules"):
        lora["target_modules"] = lora_target_modules(model, include_vision=include_vision)
    return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))


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


# --------------------------------------------------------------------------- generation


def chat_prompt(processor, prompt: str) -> str:
    """The chat-formatted text of one user turn holding one image, ready for generation."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _as_pil(image):
    from PIL import Image

    if isinstance(image, np.ndarray):
        return Image.fromarray(image.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends an answer: the tokenizer's ``<|im_end|>`` / eos and the checkpoint's own eos list.

    Passing one eos id to ``generate`` replaces the checkpoint's list (Qwen2.5-VL
    ships ``[151645, 151643]``: ``<|im_end|>`` and ``<|endoftext|>``), so the union is passed.
    """
    ids: list[int] = []

    def add(v):
        for i in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(i, int) and i >= 0 and i not in ids:
                ids.append(i)

    vocab = tokenizer.get_vocab()
    if "<|im_end|>" in vocab:
        add(vocab["<|im_end|>"])
    add(tokenizer.eos_token_id)
    add(getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    return ids


def generation_settings(model, tokenizer, max_new_tokens: int, do_sample: bool = False, temperature: float = 1.0,
                        top_p: float = 1.0, top_k: int = 0, repetition_penalty: float = 1.0) -> dict:
    """The complete, explicit generation settings ``generate`` uses (JSON-ready; recorded with predictions).

    Nothing is left for the checkpoint's ``generation_config`` to fill in (it
    may carry e.g. ``repetition_penalty`` 1.05, ``do_sample`` true, ``top_k`` 1).
    Greedy decoding records ``temperature`` 1, ``top_p`` 1, ``top_k`` 0 (unused).
    ``top_k`` 0 = no top-k filter.
    """
    return {"do_sample": bool(do_sample), "max_new_tokens": int(max_new_tokens),
            "temperature": float(temperature) if do_sample else 1.0, "top_p": float(top_p) if do_sample else 1.0,
            "top_k": int(top_k) if do_sample else 0, "repetition_penalty": float(repetition_penalty),
            "eos_token_id": eos_token_ids(model, tokenizer), "pad_token_id": tokenizer.pad_token_id}


def _generation_config(settings: dict, num_return_sequences: int):
    from transformers import GenerationConfig

    s = dict(settings)
    if not s["do_sample"]:
        # sampling knobs mean nothing to greedy decoding; left unset, transformers does not warn that they are ignored
        s.update(temperature=None, top_p=None, top_k=None)
    return GenerationConfig(
        **s, num_return_sequences=num_return_sequences, num_beams=1, no_repeat_ngram_size=0, min_new_tokens=0,
        length_penalty=1.0, bos_token_id=None, typical_p=1.0, min_p=None, epsilon_cutoff=0.0, eta_cutoff=0.0,
        encoder_repetition_penalty=1.0, bad_words_ids=None, suppress_tokens=None, begin_suppress_tokens=None,
        forced_bos_token_id=None, forced_eos_token_id=None)


@torch.no_grad()
def generate(
    model,
    processor,
    images: Sequence,
    prompts: Sequence[str],
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    batch_size: int = 8,
    seed: int | None = None,
    top_k: int = 0,
    repetition_penalty: float = 1.0,
) -> list[list[str]]:
    """Generate ``num_return_sequences`` answers per (image, prompt) pair.

    ``images`` are uint8 RGB arrays (or PIL images), ``prompts`` the user text
    (the chat template is applied here). Prompts are padded on the left with an
    attention mask, so greedy outputs do not depend on ``batch_size``. Every
    setting is explicit (``generation_settings``); the checkpoint's
    ``generation_config`` is not inherited. Returns one list of strings per
    input, special tokens removed.
    """
    if len(images) != len(prompts):
        raise ValueError(f"generate: {len(images)} images but {len(prompts)} prompts")
    tok = processor.tokenizer
    tok.padding_side = "left"
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    if seed is not None:
        torch.manual_seed(seed)
    settings = generation_settings(model, tok, max_new_tokens, do_sample, temperature, top_p, top_k,
                                   repetition_penalty)
    gen_config = _generation_config(settings, num_return_sequences)
    out: list[list[str]] = []
    for start in range(0, len(prompts), batch_size):
        texts = [chat_prompt(processor, p) for p in prompts[start : start + batch_size]]
        pil = [[_as_pil(im)] for im in images[start : start + batch_size]]
        enc = processor(images=pil, text=texts, return_tensors="pt", padding=True, padding_side="left")
        enc = {k: v.to(device) if hasattr(v, "to") else v for k, v in enc.items()}
        seqs = model.generate(**enc, generation_config=gen_config)
        new = seqs[:, enc["input_ids"].shape[1] :]
        texts_out = tok.batch_decode(new, skip_special_tokens=True)
        for i in range(0, len(texts_out), num_return_sequences):
            out.append([t.strip() for t in texts_out[i : i + num_return_sequences]])
    if was_training:
        model.train()
    return out


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
