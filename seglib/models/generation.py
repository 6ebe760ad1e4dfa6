"""Generation: explicit settings, left padding, one list of answers per (image, prompt).

``generate`` pads on the left and passes the attention mask, so a sample's
greedy output does not depend on the batch it was run in. Every setting is
explicit (``generation_settings``); the checkpoint's ``generation_config`` is
not inherited.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def chat_prompt(processor, prompt: str) -> str:
    """The chat-formatted text of one user turn holding one image, ready for generation."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def to_pil(image):
    """An RGB PIL image from a uint8 (H, W, 3) array (or any PIL image): THE one image → PIL conversion."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    return Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")


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
        pil = [[to_pil(im)] for im in images[start : start + batch_size]]
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
