"""A loaded checkpoint as a ``GenerateFn``: ``seglib.models.generate`` with fixed, explicit settings."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: A policy, seen from inference and search: images + prompts → per prompt a list of texts.
#: (images, prompts, num_return_sequences, do_sample) -> list[list[str]]
GenerateFn = Callable[[list[np.ndarray], list[str], int, bool], list[list[str]]]


class Policy:
    """A loaded checkpoint as a ``GenerateFn`` (``seglib.models.generate`` with fixed, explicit settings).

    Generation settings are this object's (``max_new_tokens``, sampling's
    ``temperature``/``top_p``/``top_k``, ``repetition_penalty`` for both), never
    the checkpoint's ``generation_config``; the eos ids are the union of the
    tokenizer's and the checkpoint's. ``settings(do_sample)`` gives them as a
    dict, which ``predict_split`` writes into every record (``generation``).
    ``reseed(seed)`` fixes the sampling stream before a sample's work, so a
    sample's sampled answers do not depend on what ran before it.
    """

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 128, temperature: float = 1.0,
                 top_p: float = 1.0, batch_size: int = 8, top_k: int = 0, repetition_penalty: float = 1.0):
        self.model, self.processor = model, processor
        self.max_new_tokens, self.temperature, self.top_p, self.batch_size = max_new_tokens, temperature, top_p, batch_size
        self.top_k, self.repetition_penalty = top_k, repetition_penalty

    def reseed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def settings(self, do_sample: bool = False) -> dict:
        """The generation settings of a greedy (``do_sample=False``) or sampled call, as recorded."""
        from seglib.models import generation_settings

        return generation_settings(self.model, self.processor.tokenizer, self.max_new_tokens, do_sample,
                                   self.temperature, self.top_p, self.top_k, self.repetition_penalty)

    def __call__(self, images: list[np.ndarray], prompts: list[str], num_return_sequences: int = 1,
                 do_sample: bool = False) -> list[list[str]]:
        from seglib.models import generate

        return generate(self.model, self.processor, images, prompts, self.max_new_tokens, do_sample=do_sample,
                        temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                        repetition_penalty=self.repetition_penalty,
                        num_return_sequences=num_return_sequences, batch_size=self.batch_size)


def load_checkpoint_policy(checkpoint_dir: str | Path, device: str = "cpu", **kwargs: Any) -> Policy:
    """``seglib.models.load_policy`` of the folder, wrapped as a ``Policy`` (``kwargs``: its settings)."""
    from seglib.models import load_policy

    model, processor = load_policy(str(checkpoint_dir), device=device)
    return Policy(model, processor, **kwargs)
