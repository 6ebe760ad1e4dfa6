"""``PolygonParadigm``: SimpleSeg's polygon answers as a ``Paradigm`` (no segmenter).

The answer format (templates, parser, targets, rasterisation) is ``format.py``;
this class adds the episode (one step), the training rows, the reward and the
claims, with the options of ``sft_options.polygon``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from seglib.paradigms import base
from seglib.paradigms.base import Claim, Decoded, State
from seglib.paradigms.common import SingleStepParadigm, merge_components
from seglib.paradigms.polygon import format as fmt
from seglib.paradigms.polygon.reward import score_row
from seglib.paradigms.text import json_column, to_jsonable


@dataclass(frozen=True)
class PolygonOptions(base.Options):
    """``sft_options.polygon``.

    ``epsilon_ratio``: Douglas–Peucker tolerance of the targets; ``flat``: ``[x, y, x, y, …]``
    polygons; ``compact``: no spaces; ``answer_tags``: ``<answer>`` tags around the target;
    ``snap``: target vertices on the ``1 / snap`` lattice; ``orientation``: "cw" | "ccw" on screen;
    ``think_box``: a think block with the boxes first (``format.target_for_masks``);
    ``outline``: decode with each polygon's 1-px edges added (evaluation and reward alike).
    """

    epsilon_ratio: float = fmt.DEFAULT_EPSILON_RATIO
    flat: bool = False
    compact: bool = True
    answer_tags: bool = False
    snap: int | None = None
    orientation: str = "cw"
    think_box: int | None = None
    outline: bool = False


class PolygonParadigm(SingleStepParadigm):
    """Polygons in the unit square, rasterised by pycocotools."""

    name = "polygon"
    Options = PolygonOptions
    reward_ranges = {"simpleseg": {"iou": (0, 1), "centroid": (0, 1), "format": (0, 1)}}
    default_rewards = ("simpleseg",)
    claims = (
        Claim("SimpleSeg", "RL (GSPO/GRPO) on polygons beats SFT alone",
              "published: +9.7 to +10.5 gIoU from RL over SFT (SFT alone about 60-65.5 gIoU)",
              ("sft", "greedy"), ("grpo", "greedy"),
              "sft-polygon and grpo-polygon greedy predictions (SimpleSeg's GSPO: grpo_paradigm_settings "
              "{polygon: {gspo: true}})", per_seed=True),
    )

    # ------------------------------------------------------------------ the language
    def prompt(self, sample: Any) -> str:
        return fmt.prompt(sample, template=self.options.prompt_template or "default")

    def observe(self, state: State) -> tuple[np.ndarray, str]:
        return state.image, self.prompt(state.sample)

    def parse(self, text: Any) -> list[np.ndarray] | None:
        return fmt.parse(text)

    def decode(self, state: State, answer: Any, segmenter: Any = None) -> tuple[Decoded, State]:
        """Rasterise (``format.decode`` with ``options.outline``): one object, score 1.0, when non-empty."""
        if answer is None:
            return Decoded(None, False), dataclasses.replace(state, t=state.t + 1)
        m = fmt.decode(answer, state.height, state.width, outline=self.options.outline)
        dec = Decoded(to_jsonable(answer), True, [m] if m.any() else [], [1.0] if m.any() else [])
        return dec, dataclasses.replace(state, mask=m, t=state.t + 1)

    def oracle_answer(self, state: State, segmenter: Any = None) -> list[np.ndarray]:
        """The target masks (``target_text`` traces their polygons)."""
        return state.sample.target_masks()

    def target_text(self, state: State, answer: Sequence[np.ndarray]) -> str:
        o = self.options
        return fmt.target_for_masks(answer, state.width, state.height, o.epsilon_ratio, o.think_box, flat=o.flat,
                                    compact=o.compact, answer_tags=o.answer_tags, snap=o.snap,
                                    orientation=o.orientation)

    # ------------------------------------------------------------------ rewards
    def score_group(self, texts: Sequence[str], row: dict, segmenter: Any = None,
                    rewards: Sequence[str] | None = None, reward_options: dict | None = None) -> list[dict[str, float]]:
        """SimpleSeg's rewards, the polygons decoded as the checkpoint's evaluation decodes them (``outline``)."""
        chosen = self.check_rewards(rewards)
        opts = {"outline": bool(self.options.outline), **(reward_options or {})}
        row = {k: (json_column(v) if k == "target_rles" else v) for k, v in row.items() if k != "image"}
        return merge_components(len(texts), chosen, lambda r: score_row(list(texts), row, opts))
