"""What several paradigms share: the sample's dataset columns, component naming, and one-step episodes.

``SingleStepParadigm`` is the ``Paradigm`` of a paradigm answered in one step
(boxpoints, polygon): one SFT example and one GRPO row per sample, from the
initial state. Stepped paradigms (clicks) subclass ``Paradigm`` directly.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from seglib.paradigms.base import Example, Paradigm


def sample_columns(sample: Any) -> dict:
    """The GRPO row columns every paradigm carries: ids, image path and size, query kind, target RLEs."""
    return {"sample_id": sample.sample_id, "image_path": sample.image_path, "height": sample.height,
            "width": sample.width, "kind": sample.kind, "target_rles": sample.target_rles}


def read_image(path: str | None):
    """A GRPO row's image (uint8 RGB) from its ``image_path`` (never its ``image`` column: the policy's view)."""
    import numpy as np
    from PIL import Image

    if not path:
        raise ValueError("a segmenter-based reward needs the row's 'image_path' column")
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def target_masks(row: dict) -> list:
    """A GRPO row's target masks from its (decoded) ``target_rles``."""
    from seglib.masks import decode_rle

    return [decode_rle(r) for r in (row.get("target_rles") or [])]


def merge_components(n: int, scorers: Sequence[str],
                     score: Callable[[str], list[dict[str, float]] | None]) -> list[dict[str, float]]:
    """Per completion, ``<scorer>_<component>`` → value over ``scorers``; ``score(scorer)`` gives the
    ``n`` completions' components, or None where that scorer does not apply to the row."""
    out: list[dict[str, float]] = [{} for _ in range(n)]
    for r in scorers:
        for d, s in zip(out, score(r) or ()):
            d.update({f"{r}_{k}": v for k, v in s.items()})
    return out


class SingleStepParadigm(Paradigm):
    """A paradigm whose episode is one answer: SFT examples and GRPO rows from each sample's initial state."""

    def sft_examples(self, samples: Sequence[Any], trajectories: Sequence[Any] = ()) -> list[Example]:
        """One example per sample: the policy's view, the prompt and the ground truth's target text."""
        out = []
        for s in samples:
            state = self.start(s)
            image, prompt = self.observe(state)
            out.append(Example(image, prompt, self.target_text(state, self.oracle_answer(state)), s))
        return out

    def gt_columns(self, sample: Any) -> dict:
        """Ground-truth columns of this paradigm's GRPO rows beyond ``sample_columns`` (none by default)."""
        return {}

    def rl_rows(self, samples: Sequence[Any], segmenter: Any = None, max_history: int = 0,
                seed: int = 0) -> list[dict]:
        """One row per sample: ``sample_columns``, the prompt and the policy's image, then ``gt_columns``."""
        rows = []
        for s in samples:
            image, prompt = self.observe(self.start(s))
            rows.append({**sample_columns(s), "prompt": prompt, "image": image, **self.gt_columns(s)})
        if not rows:
            raise ValueError(f"rl_rows: no usable samples for paradigm {self.name!r}")
        return rows
