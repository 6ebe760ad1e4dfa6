"""``DescriptorsParadigm``: Text4Seg's semantic descriptors as a ``Paradigm``.

Text4Seg (Lan et al., ICLR 2025, https://arxiv.org/abs/2410.09855) writes the
mask as a G × G grid of labels, the query phrase or ``others``, row by row and
run-length encoded (``format.py`` has the text rule and the parser). One
answer per query (horizon 1); decoding upsamples the grid by nearest neighbour
and, with ``refine``, asks the segmenter for the final mask (``refine.py``).
SFT examples and GRPO rows are the one-step defaults (``common.SingleStepParadigm``):
one per sample, the reward reading ``target_rles``, ``height`` and ``width``.

Reward (ours; the paper trains with SFT only), scorer ``maskiou``:

- ``iou``: IoU of the parsed grid against the ground truth's grid (the union
  of the targets, ``format.downsample``), both empty → 1, unparsable → 0.
  When H and W are multiples of G this equals the pixel IoU of the two
  upsampled masks, and the oracle's text scores exactly 1. The reward reads
  the text alone: no segmenter, even when ``refine`` is on.
- ``format``: 1 for a well-formed block (``format.well_formed``), else 0.

No evaluation extras beyond gIoU/cIoU (``extra_metrics`` is ``{}``), and no
claims: the paper's comparisons are against other paradigms (SimpleSeg vs
Text4Seg) or across options (G, RLE, refinement), which a ``Claim`` (two
strategies of one paradigm) cannot state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from seglib.paradigms import base
from seglib.paradigms.base import Decoded, OptionsError, State
from seglib.paradigms.common import SingleStepParadigm
from seglib.paradigms.descriptors import format as fmt
from seglib.paradigms.descriptors.refine import refine_prompt
from seglib.paradigms.text import json_column

PROMPT_TEMPLATES = {
    "default": (
        "Label each cell of a {grid} x {grid} grid over the image \"{query}\" or \"{others}\". "
        "Answer between <seg> and </seg>, one line per row, as runs \"label *count\" joined by \"| \"."
    ),
    "compact": "{query}",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class DescriptorsOptions(base.Options):
    """``sft_options.descriptors``.

    ``grid``: cells per side G (the paper: 16, 24 or 32); ``rle``: run-length encode each row
    (False writes every cell); ``others``: the background label; ``refine``: decode with one
    segmenter call prompted by the coarse mask (``refine.py``); ``refine_points``: most cell-centre
    points of each sign in that prompt (0 = all).
    """

    grid: int = fmt.DEFAULT_GRID
    refine: bool = False
    rle: bool = True
    others: str = fmt.OTHERS
    refine_points: int = 10

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> OptionsError:
            return OptionsError(f"sft_options.descriptors.{key}: {why}, got {getattr(self, key)!r}")

        if self.prompt_template is not None and self.prompt_template not in PROMPT_TEMPLATES:
            raise bad("prompt_template", f"expected None or one of {sorted(PROMPT_TEMPLATES)}")
        if not _is_int(self.grid) or not fmt.MIN_GRID <= self.grid <= fmt.MAX_GRID:
            raise bad("grid", f"expected an integer from {fmt.MIN_GRID} to {fmt.MAX_GRID}")
        for key in ("refine", "rle"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "expected true or false")
        if not isinstance(self.others, str) or fmt.label_of(self.others, others="") != self.others:
            raise bad("others", "expected a plain non-empty word (no | * < > or line breaks)")
        if not _is_int(self.refine_points) or self.refine_points < 0:
            raise bad("refine_points", "expected an integer >= 0")


class DescriptorsParadigm(SingleStepParadigm):
    """A G × G grid of "query"/"others" labels, decoded by nearest neighbour (optionally refined)."""

    name = "descriptors"
    Options = DescriptorsOptions
    reward_ranges = {"maskiou": {"iou": (0, 1), "format": (0, 1)}}
    default_rewards = ("maskiou",)
    claims = ()

    # ------------------------------------------------------------------ the language
    def prompt(self, sample: Any) -> str:
        query = sample if isinstance(sample, str) else sample.query
        o = self.options
        return PROMPT_TEMPLATES[o.prompt_template or "default"].format(query=query, grid=o.grid, others=o.others)

    def observe(self, state: State) -> tuple[np.ndarray, str]:
        return state.image, self.prompt(state.sample)

    def parse(self, text: Any) -> np.ndarray | None:
        """Text → bool (G, G) foreground grid, or None (``format`` module's rules); never raises."""
        return fmt.parse(text, self.options.grid, self.options.others)

    def to_json(self, answer: Any) -> Any:
        """A grid as G strings of "0"/"1", one per row (None stays None)."""
        if answer is None:
            return None
        return ["".join("1" if c else "0" for c in row) for row in np.asarray(answer, bool)]

    def decode(self, state: State, answer: Any, segmenter: Any = None) -> tuple[Decoded, State]:
        """Grid → one object mask (score 1.0; none when empty); ``refine``: one ``predict_many`` call.

        The coarse mask is the nearest-neighbour upsampling of the grid. With ``refine`` and a
        non-empty grid the mask is the segmenter's answer to ``refine.refine_prompt``.
        """
        if answer is None:
            return Decoded(None, False), dataclasses.replace(state, t=state.t + 1)
        cells = np.asarray(answer, bool)
        mask, logits = fmt.upsample(cells, state.height, state.width), None
        if self.options.refine and mask.any():
            if segmenter is None:
                raise ValueError("descriptors with refine=True needs a segmenter to decode")
            segmenter.set_image(state.image)
            prompt = refine_prompt(cells, state.height, state.width, segmenter, self.options.refine_points)
            pred = segmenter.predict_many([prompt])[0]
            mask, logits = np.asarray(pred.mask, bool), pred.logits
        found = bool(mask.any())
        dec = Decoded(self.to_json(cells), True, [mask] if found else [], [1.0] if found else [])
        return dec, dataclasses.replace(state, mask=mask, logits=logits, t=state.t + 1)

    def oracle_answer(self, state: State, segmenter: Any = None) -> np.ndarray:
        """The ground-truth grid: the union of the targets, downsampled (``format.downsample``)."""
        return fmt.downsample(state.sample.union_mask(), self.options.grid)

    def target_text(self, state: State, answer: np.ndarray) -> str:
        """The ``<seg>`` block of ``answer``: a (G, G) grid, or a full-size mask (downsampled first)."""
        o = self.options
        cells = np.asarray(answer, bool)
        if cells.shape != (o.grid, o.grid):
            cells = fmt.downsample(cells, o.grid)
        return fmt.grid_text(cells, fmt.label_of(state.sample.query, o.others), o.others, o.rle)

    # ------------------------------------------------------------------ rewards
    def score_group(self, texts: Sequence[str], row: dict, segmenter: Any = None,
                    rewards: Sequence[str] | None = None, reward_options: dict | None = None) -> list[dict[str, float]]:
        """``maskiou`` per text (module docstring); no segmenter, no reward options."""
        from seglib.masks import decode_rle, mask_iou, masks_union

        self.check_rewards(rewards)
        o = self.options
        targets = [decode_rle(r) for r in json_column(row["target_rles"])]
        gt_cells = fmt.downsample(masks_union(targets, int(row["height"]), int(row["width"])), o.grid)
        out = []
        for text in texts:
            found = fmt.read_grid(text, o.grid, o.others)
            if found is None:
                out.append({"maskiou_iou": 0.0, "maskiou_format": 0.0})
            else:
                out.append({"maskiou_iou": float(mask_iou(found[0], gt_cells)), "maskiou_format": float(found[1])})
        return out
