"""``BoxPointsParadigm``: Seg-Zero / VisionReasoner / StAR's box + points answers as a ``Paradigm``.

The answer format itself (templates, parser, targets, frames) is ``format.py``;
this class adds the episode (one step), the training rows, the rewards and the
evaluation extras, with the options of ``sft_options.boxpoints``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from seglib.paradigms import base
from seglib.paradigms.base import Claim, Decoded, State
from seglib.paradigms.boxpoints import format as fmt
from seglib.paradigms.boxpoints.scoring import score_row
from seglib.paradigms.common import SingleStepParadigm, merge_components
from seglib.paradigms.text import json_column, to_jsonable

#: Columns of ``rl_rows`` that hold JSON (decoded again in ``score_group``).
JSON_COLUMNS = ("target_rles", "gt_box", "gt_points", "gt_boxes")


@dataclass(frozen=True)
class BoxPointsOptions(base.Options):
    """``sft_options.boxpoints``.

    ``style``: "segzero" | "list" | None (SFT's rule: "segzero" for one target, else "list");
    ``think``: the templated think block; ``compact``: JSON without spaces;
    ``resize``: Seg-Zero's frame side (None = pixels of the image as given);
    ``resize_image``: with ``resize``, whether the policy also sees the image resized
    to ``resize × resize`` (Seg-Zero) or as given on the coarser grid (the tiny policy);
    ``n_points``: points per object (None = 2 for segzero, 1 for list); ``label``: the
    list items' label; ``points_rule``: ``seglib.masks.representative_points``'s rule.
    """

    style: str | None = None
    think: bool = True
    compact: bool = False
    resize: int | None = None
    resize_image: bool = True
    n_points: int | None = None
    label: str | None = None
    points_rule: str = "padded"


class BoxPointsParadigm(SingleStepParadigm):
    """Box + points answers decoded by a promptable segmenter (one ``predict_many`` per answer)."""

    name = "boxpoints"
    Options = BoxPointsOptions
    reward_ranges = {
        "segzero": {"think_format": (0, 1), "answer_format": (0, 1), "bbox_iou": (0, 1), "bbox_l1": (0, 1),
                    "points": (0, 1)},
        "visionreasoner": {"format": (0, 3), "accuracy": (0, 3), "non_repeat": (0, 1)},
        "star": {"format": (0, 4), "accuracy": (0, 5), "count": (0, 1)},
    }
    #: Seg-Zero-style rows (one object) use ``segzero``; list-style rows use ``visionreasoner``/``star``.
    default_rewards = ("segzero", "star")
    #: ``decode`` fills ``Decoded.boxes`` (box metrics apply)
    writes_boxes = True
    #: Variant stages these claims read (``grpo_variants`` names): ``grpo-single`` / ``grpo-multi`` (the
    #: VisionReasoner pair, identical but for ``reward_options.single_object``), ``grpo-rest`` (REST),
    #: ``grpo-seed<k>`` / ``grpo-rlonly-seed<k>`` (second seeds, ``per_seed``).
    claims = (
        Claim("Seg-Zero", "RL (GRPO) on box + points beats the same model without RL",
              "published: ReasonSeg test gIoU/cIoU 47.6/37.4 (Qwen2.5-VL-3B + SAM2, no RL) → 56.1/48.6 "
              "(Seg-Zero-3B), i.e. +8.5/+11.2",
              ("sft", "greedy"), ("grpo", "greedy"), "sft-boxpoints and grpo-boxpoints greedy predictions",
              ("test_reasoning", "test"), per_seed=True),
        Claim("Seg-Zero", "RL alone generalises better than SFT alone, both from the base policy "
              "(out of domain: test_reasoning; in domain: test)",
              "published: RL alone (Seg-Zero-3B) reaches ReasonSeg test gIoU/cIoU 56.1/48.6 zero-shot, out of "
              "domain; the paper finds SFT on the same data generalises worse (no SFT figure in docs/METHODS.md)",
              ("sft", "greedy"), ("grpo-rlonly", "greedy"),
              "grpo_rl_from_base: true (checkpoint grpo-boxpoints-rlonly) beside sft-boxpoints, greedy predictions",
              ("test_reasoning", "test"), each_split=True, per_seed=True),
        Claim("VisionReasoner", "multi-object rewards (Hungarian matching) beat Seg-Zero's single-object rewards",
              "published: ReasonSeg test gIoU/cIoU 57.5/52.0 (Seg-Zero-7B) → 63.6/55.7 (VisionReasoner-7B)",
              ("grpo-single", "greedy"), ("grpo-multi", "greedy"),
              "grpo_variants {name: single, paradigm: boxpoints, rewards: [visionreasoner], reward_options: "
              "{single_object: true}} and {name: multi, paradigm: boxpoints, rewards: [visionreasoner]} "
              "(style list), greedy predictions on test samples of kind multi",
              ("test",), kinds=("multi",)),
        Claim("StAR", "REST (update on the most extreme-advantage rollouts of each group) beats plain GRPO",
              "published: REST is StAR's second stage (256 rollouts, m = 16 kept); docs/METHODS.md gives no "
              "separate figure",
              ("grpo", "greedy"), ("grpo-rest", "greedy"),
              "grpo_variants {name: rest, paradigm: boxpoints, rest_keep: m} (m ≤ num_generations; checkpoint "
              "grpo-boxpoints-rest) beside grpo-boxpoints, greedy predictions",
              ("test_reasoning", "test")),
        Claim("StAR", "mask majority voting over N samples beats a single answer",
              "published: ReasonSeg test gIoU/cIoU 67.5/61.3 → 68.5/65.0 (StAR-7B, N = 32), i.e. +1.0/+3.7",
              ("*", "greedy"), ("*", "vote"), "a boxpoints checkpoint with greedy and vote predictions",
              ("test_reasoning", "test"), budgets=(4, 8, 16)),
    )

    # ------------------------------------------------------------------ the language
    def style(self, sample: Any) -> str:
        """The answer style for ``sample``: the option, else "segzero" for one target and "list" otherwise."""
        return self.options.style or ("segzero" if len(sample.target_rles) == 1 else "list")

    def prompt(self, sample: Any) -> str:
        """The user prompt for ``sample`` (the one prompt rule: SFT, GRPO and inference all use it)."""
        return fmt.prompt(sample, style=self.style(sample), template=self.options.prompt_template)

    def policy_image(self, image: np.ndarray) -> np.ndarray:
        """The image as the policy sees it: Seg-Zero's ``resize × resize`` copy, or as given."""
        o = self.options
        if o.resize and o.resize_image:
            import cv2

            return cv2.resize(image, (int(o.resize), int(o.resize)), interpolation=cv2.INTER_LINEAR)
        return image

    def observe(self, state: State) -> tuple[np.ndarray, str]:
        return self.policy_image(state.image), self.prompt(state.sample)

    def parse(self, text: Any) -> fmt.Answer | None:
        return fmt.parse(text)

    def decode(self, state: State, answer: Any, segmenter: Any = None) -> tuple[Decoded, State]:
        if answer is None:
            return Decoded(None, False), dataclasses.replace(state, t=state.t + 1)
        objects = fmt.to_image_frame(answer, state.height, state.width, self.options.resize)
        if not objects:
            dec = Decoded(to_jsonable(answer), True)
        else:
            if segmenter is None:
                raise ValueError("boxpoints decoding needs a segmenter")
            segmenter.set_image(state.image)
            preds = segmenter.predict_many(fmt.segmenter_prompts(objects))
            dec = Decoded(to_jsonable(answer), True, [np.asarray(p.mask, bool) for p in preds],
                          [float(p.score) for p in preds], [[int(v) for v in o.box] for o in objects])
        return dec, dataclasses.replace(state, mask=dec.union(state.height, state.width), t=state.t + 1)

    def oracle_answer(self, state: State, segmenter: Any = None) -> list[fmt.BoxPoints]:
        """The targets as objects in image pixels (box + representative points per non-empty mask)."""
        o = self.options
        n_points = o.n_points or (2 if self.style(state.sample) == "segzero" else 1)
        return fmt.objects_from_masks(state.sample.target_masks(), n_points=n_points, label=o.label,
                                      points_rule=o.points_rule)

    def target_text(self, state: State, answer: Sequence[fmt.BoxPoints]) -> str:
        o = self.options
        s = state.sample
        return fmt.target_text(answer, s.width, s.height, style=self.style(s), resize=o.resize, think=o.think,
                               compact=o.compact)

    # ------------------------------------------------------------------ training data
    def gt_columns(self, sample: Any) -> dict:
        """``style``; Seg-Zero rows ``gt_box``/``gt_points`` (2 points), list rows ``gt_boxes``/``gt_points``
        (1 point each), in image pixels."""
        style = self.style(sample)
        objs = fmt.objects_from_masks(sample.target_masks(), n_points=2 if style == "segzero" else 1,
                                      points_rule=self.options.points_rule)
        if style == "segzero":
            return {"style": style, "gt_box": list(objs[0].box), "gt_points": [list(p) for p in objs[0].points]}
        return {"style": style, "gt_boxes": [list(o.box) for o in objs], "gt_points": [list(o.points[0]) for o in objs]}

    # ------------------------------------------------------------------ rewards
    def score_group(self, texts: Sequence[str], row: dict, segmenter: Any = None,
                    rewards: Sequence[str] | None = None, reward_options: dict | None = None) -> list[dict[str, float]]:
        """Seg-Zero rows are scored by ``segzero`` only, list rows by ``visionreasoner``/``star`` only.

        ``reward_options`` (``strict``, ``soft_accuracy``, ``formula``, …) go to the scorers that take
        them; ``resize`` defaults to the paradigm's frame.
        """
        chosen = self.check_rewards(rewards)
        opts = {**({"resize": self.options.resize} if self.options.resize else {}), **(reward_options or {})}
        row = {k: (json_column(v) if k in JSON_COLUMNS else v) for k, v in row.items() if k != "image"}
        segzero_row = row.get("style") == "segzero"

        def score(r: str) -> list[dict[str, float]] | None:
            if segzero_row != (r == "segzero"):
                return None
            return score_row(r, list(texts), row, segmenter, opts)

        return merge_components(len(texts), chosen, score)

    # ------------------------------------------------------------------ evaluation
    def extra_metrics(self, records: Sequence[dict], splits: Sequence[str]) -> dict:
        """``acc_at_05``: per split, Acc@0.5 of the first predicted box on one-target samples."""
        from seglib.metrics import acc_at_05

        out = {}
        for split in splits:
            preds, gts = [], []
            for r in records:
                if r["split"] != split or len(r["gt_boxes"]) != 1:
                    continue
                boxes = r.get("boxes") or []
                preds.append(list(boxes[0]) if r["parsed"] and boxes else None)
                gts.append(list(r["gt_boxes"][0]))
            if gts:
                out[split] = {"value": float(acc_at_05(preds, gts)), "n": len(gts)}
        return {"acc_at_05": out}
