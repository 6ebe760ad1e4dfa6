"""``ClicksParadigm``: SegAgent's one-click-per-step episodes as a ``Paradigm``.

The action format (templates, parser, grid, ``apply_action``) is ``format.py``;
this class adds the stepped episode (``horizon = max_clicks``), F_sim as the
oracle, the SFT rows from F_sim trajectories, the GRPO states, the step reward,
the NoC metrics and the claims, with the options of ``sft_options.clicks``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from seglib import frames
from seglib.paradigms import base
from seglib.paradigms.base import Claim, Decoded, Example, Paradigm, State
from seglib.paradigms.clicks import format as fmt
from seglib.paradigms.clicks.reward import score_row
from seglib.paradigms.common import merge_components, sample_columns
from seglib.paradigms.text import json_column, to_jsonable

_NEEDS_PRM = "(PRM search needs a clicks policy trained in PRM format)"


@dataclass(frozen=True)
class ClicksOptions(base.Options):
    """``sft_options.clicks``.

    ``prm``: the policy writes ``Current IoU: …`` before its action (SegAgent's PRM);
    ``snap``: targets moved to the centre of their ``snap × snap`` cell; ``hold``: SFT also
    shows each finished trajectory's final state (``ClicksParadigm.sft_examples``);
    ``grid``: the action grid (0…grid); ``max_clicks``: clicks per episode (the horizon).
    """

    prm: bool = False
    snap: int | None = None
    hold: bool = False
    grid: int = frames.GRID
    max_clicks: int = 5


class ClicksParadigm(Paradigm):
    """One click per step on the current mask; the segmenter turns all clicks so far into the next mask."""

    name = "clicks"
    Options = ClicksOptions
    needs_trajectories = True
    stepped = True
    reward_ranges = {"clicks": {"format": (0, 1), "iou_gain": (-1, 1), "prm": (0, 1)}}
    default_rewards = ("clicks",)
    claims = (
        Claim("SegAgent", "PRM-guided stopping (tree search, K = 1) beats plain greedy clicking",
              "published: +2.4 (DIS) / +4.1 (ThinObject) mIoU on HRES with K = 1",
              ("*", "greedy"), ("*", "prm_search_k1"),
              f"clicks greedy and prm_search_k1 predictions {_NEEDS_PRM}", budgets=(3, 5, 7)),
        Claim("SegAgent", "more candidates per step (K > 1; the paper's K = 3) beat K = 1",
              "published: a further +7.4 (DIS) / +10.6 (ThinObject) mIoU on HRES with K = 3",
              ("*", "prm_search_k1"), ("*", "prm_search_kmax"),
              f"prm_search_k1 and prm_search_kK predictions for some K of 2 or more {_NEEDS_PRM}",
              budgets=(3, 5, 7)),
        Claim("SegAgent", "StaR+ policy improvement beats the SFT policy",
              "published: StaR+ improves over SFT (direction only; docs/METHODS.md gives no figure)",
              ("sft", "greedy"), ("star", "greedy"), "sft-clicks and star-clicks greedy predictions"),
    )

    @property
    def horizon(self) -> int:
        return int(self.options.max_clicks)

    def strategies(self) -> tuple[str, ...]:
        return ("greedy", "prm_search") if self.options.prm else ("greedy",)

    def components_of(self, scorer: str) -> list[str]:
        return [c for c in self.reward_ranges[scorer] if c != "prm" or self.options.prm]

    # ------------------------------------------------------------------ the language
    def prompt(self, sample: Any) -> str:
        return fmt.prompt(sample, prm=self.options.prm, template=self.options.prompt_template)

    def observe(self, state: State) -> tuple[np.ndarray, str]:
        """SegAgent's state: the image with the current mask overlaid green (none at the start), and the query."""
        return fmt.state_image(state.image, state.mask), self.prompt(state.sample)

    def parse(self, text: Any) -> fmt.ClickAction | None:
        return fmt.parse(text, grid=self.options.grid)

    def decode(self, state: State, answer: Any, segmenter: Any = None) -> tuple[Decoded, State]:
        """One step (``format.apply_action``): all clicks so far + this one + the previous logits → next mask.

        ``answer``: a ``ClickAction`` (grid frame) or a pixel ``Click``; None leaves the state as it was
        (one step later). ``pred_iou``: the IoU the action wrote (PRM), else None.
        """
        if answer is None:
            return Decoded(None, False), State(state.sample, state.image, state.mask, state.clicks, state.logits,
                                               state.t + 1)
        if segmenter is None:
            raise ValueError("clicks decoding needs a segmenter")
        segmenter.set_image(state.image)
        pred, clicks = fmt.apply_action(answer, state.clicks, segmenter, state.logits, state.height, state.width,
                                        self.options.grid)
        mask = np.asarray(pred.mask, bool)
        found = bool(mask.any())
        dec = Decoded(to_jsonable(answer), True, [mask] if found else [], [float(pred.score)] if found else [],
                      pred_iou=getattr(answer, "iou", None))
        return dec, State(state.sample, state.image, mask, tuple(clicks), pred.logits, state.t + 1)

    def oracle_answer(self, state: State, segmenter: Any = None) -> Any:
        """F_sim's next click (pixel ``Click``) on the current mask; None when nothing is left to click."""
        from seglib.clicker import next_click

        return next_click(state.sample.union_mask(), state.mask, clicked=state.clicks)

    def target_text(self, state: State, answer: Any, iou: float | None = None) -> str:
        """The action text for ``answer`` (a pixel ``Click``); with the PRM, the current mask's IoU first
        (``iou``, or computed from ``state``)."""
        s = state.sample
        if self.options.prm and iou is None:
            from seglib.masks import mask_iou

            gt = s.union_mask()
            iou = mask_iou(np.zeros_like(gt) if state.mask is None else state.mask, gt)
        return fmt.target_text(answer, s.width, s.height, iou=iou, prm=self.options.prm, grid=self.options.grid,
                               snap=self.options.snap)

    # ------------------------------------------------------------------ training data
    def sft_examples(self, samples: Sequence[Any], trajectories: Sequence[Any] = (),
                     max_steps_per_trajectory: int | None = None) -> list[Example]:
        """One example per F_sim trajectory step (state = image + mask before the click, target = F_sim's click).

        ``hold`` (our addition, not SegAgent's): a trajectory that reached τ_stop
        also yields its final state, with F_sim's click on an empty mask (a
        positive click deepest inside the target) as the action and, with the
        PRM, the final IoU. F_sim trajectories stop at τ_stop, so without these
        examples the policy never sees a finished mask and its next click at
        inference is off-distribution (measured in notebook 03).
        """
        from seglib.clicker import next_click
        from seglib.masks import decode_rle
        from seglib.data.trajectories import Trajectory, trajectory_steps

        by_id = {s.sample_id: s for s in samples}
        out = []
        for traj in trajectories:
            traj = Trajectory.from_json(traj) if isinstance(traj, dict) else traj
            s = by_id.get(traj.sample_id)
            if s is None:
                continue
            image = s.image()
            prompt = self.prompt(s)

            def add(mask: np.ndarray, click: Any, iou: float) -> None:
                state = State(s, image, mask)
                out.append(Example(fmt.state_image(image, mask), prompt, self.target_text(state, click, iou), s))

            for k, (mask_before, click, iou_before) in enumerate(trajectory_steps(traj, s)):
                if max_steps_per_trajectory is not None and k >= max_steps_per_trajectory:
                    break
                add(mask_before, click, iou_before)
            if self.options.hold and traj.stop_reason == "tau_stop" and traj.steps:
                add(decode_rle(traj.steps[-1].mask_rle), next_click(s.union_mask(), None), float(traj.ious[-1]))
        return out

    def tokenizer_texts(self, samples: Sequence[Any], trajectories: Sequence[Any] = ()) -> list[str]:
        """The texts the tiny policy's tokenizer is trained on: per trajectory its prompt once, then every
        step's target (no ``hold`` targets)."""
        from seglib.data.trajectories import Trajectory, trajectory_steps

        by_id = {s.sample_id: s for s in samples}
        texts: list[str] = []
        for t in trajectories:
            t = Trajectory.from_json(t) if isinstance(t, dict) else t
            s = by_id.get(t.sample_id)
            if s is None:
                continue
            texts.append(self.prompt(s))
            texts += [self.target_text(State(s, None, m), c, iou) for m, c, iou in trajectory_steps(t, s)]
        return texts

    def rl_rows(self, samples: Sequence[Any], segmenter: Any = None, max_history: int = 0,
                seed: int = 0) -> list[dict]:
        """A state per sample with a target: F_sim's first k clicks, k drawn from 0..``max_history``.

        Columns: ``sample_columns`` plus ``clicks`` (``[[x, y, positive], …]`` pixels; the reward replays
        them); the image is the state image. ``sample_id`` is ``<id>@<k>``.
        """
        from seglib.clicker import Click

        rng = np.random.default_rng(seed)
        rows = []
        for s in samples:
            if not s.target_rles or not s.union_mask().any():
                continue
            if segmenter is None:
                raise ValueError("rl_rows needs the segmenter to build click states")
            k = int(rng.integers(0, max_history + 1)) if max_history > 0 else 0
            history = click_history(s, segmenter, k)
            image = s.image()
            segmenter.set_image(image)
            mask, _ = fmt.replay([Click(*c) for c in history], segmenter, s.height, s.width)
            rows.append({**sample_columns(s), "sample_id": f"{s.sample_id}@{len(history)}", "clicks": history,
                         "prompt": self.prompt(s), "image": fmt.state_image(image, mask if history else None)})
        if not rows:
            raise ValueError(f"rl_rows: no usable samples for paradigm {self.name!r}")
        return rows

    # ------------------------------------------------------------------ rewards
    def score_group(self, texts: Sequence[str], row: dict, segmenter: Any = None,
                    rewards: Sequence[str] | None = None, reward_options: dict | None = None) -> list[dict[str, float]]:
        """SegAgent's step reward from the row's state (its ``clicks`` replayed through the segmenter)."""
        chosen = self.check_rewards(rewards)
        opts = {"prm": bool(self.options.prm), **(reward_options or {})}
        row = {k: (json_column(v) if k in ("target_rles", "clicks") else v) for k, v in row.items() if k != "image"}
        return merge_components(len(texts), chosen, lambda r: score_row(list(texts), row, segmenter, opts))

    # ------------------------------------------------------------------ evaluation
    def extra_metrics(self, records: Sequence[dict], splits: Sequence[str]) -> dict:
        """``clicks``: NoC@85/90 and the IoU-versus-clicks curve per split (``{}`` without stepped records)."""
        from seglib.paradigms.clicks.metrics import clicks_metrics

        return {"clicks": clicks_metrics(records, splits) if any(r.get("steps") for r in records) else {}}


def click_history(sample: Any, segmenter: Any, n_clicks: int) -> list[list]:
    """F_sim's first ``n_clicks`` clicks on ``sample`` (pixel ``[x, y, positive]``): a state to start a step from."""
    from seglib.clicker import next_click

    gt = sample.union_mask()
    image = sample.image()
    segmenter.set_image(image)
    history: list = []
    mask = np.zeros_like(gt)
    for _ in range(n_clicks):
        c = next_click(gt, mask, clicked=history)
        if c is None:
            break
        history.append(c)
        mask, _ = fmt.replay(history, segmenter, sample.height, sample.width)
    return [[int(c.x), int(c.y), bool(c.positive)] for c in history]
