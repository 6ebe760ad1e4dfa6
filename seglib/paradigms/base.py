"""The Paradigm interface: what a way of writing a mask as text must provide.

A paradigm is an episode. The policy sees an image and a prompt (``observe``),
writes a text, the paradigm reads it (``parse``, never raising) and turns the
answer into masks (``decode``), which gives the next state. ``horizon`` says
how many steps an episode takes: 1 for one-answer paradigms (boxpoints,
polygon, descriptors), ``max_clicks`` for clicks.

Every stage of seglib (SFT rows, GRPO rows and rewards, the rollouts of
inference, evaluation extras, the claims table) calls these members and never
tests a paradigm's name. A paradigm is registered by one line in
``seglib.paradigms.REGISTRY``.

Frames: answers from ``parse`` are in the model's frame (whatever the text
holds); ``decode`` converts to image pixels. ``oracle_answer`` returns the
answer ``target_text`` writes: the ground truth (or F_sim's click), in
whatever representation the paradigm's ``target_text`` takes.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

#: Every inference strategy seglib knows; a paradigm declares the subset that applies (``Paradigm.strategies``).
STRATEGIES = ("greedy", "sample", "vote", "prm_search")


class OptionsError(ValueError):
    """An option a paradigm does not have, or a bad value; the message names ``sft_options.<paradigm>.<key>``."""


@dataclass(frozen=True)
class State:
    """One state of an episode.

    ``sample``: the ``seglib.data.Sample``; ``image``: its RGB uint8 image (H, W, 3);
    ``mask``: the current mask M_t (bool (H, W); None = nothing yet);
    ``clicks``: pixel ``seglib.clicker.Click``s so far; ``logits``: the segmenter's
    logits of ``mask`` (fed back at the next step); ``t``: steps taken.
    """

    sample: Any
    image: np.ndarray
    mask: np.ndarray | None = None
    clicks: tuple = ()
    logits: Any = None
    t: int = 0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class Decoded:
    """One decoded text: the parsed answer (JSON-ready) and per-object masks, scores and boxes in image pixels.

    ``parsed`` False: the text did not parse (``answer`` None, no masks). ``boxes``:
    inclusive ``[x0, y0, x1, y1]`` per object where the paradigm writes boxes, else [].
    ``pred_iou``: the policy's own estimate of the resulting mask's IoU (fraction), where it writes one.
    """

    answer: Any
    parsed: bool
    object_masks: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    boxes: list[list[int]] = field(default_factory=list)
    pred_iou: float | None = None

    def union(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), bool)
        for m in self.object_masks:
            out |= np.asarray(m, bool)
        return out


@dataclass(frozen=True)
class Example:
    """One SFT example: the image the policy sees, the prompt, the target text, and where it came from."""

    image: np.ndarray
    prompt: str
    target: str
    sample: Any


@dataclass(frozen=True)
class Claim:
    """A paper's claim, measured by comparing two (stage, strategy) prediction sets of one paradigm.

    ``stage`` "*" = the latest stage that has both strategies; ``published``: the
    methods page's words and figures, full scale; ``needs``: what a run lacks when
    the claim is not measured (the parameter or variant to add); ``splits``: preferred
    splits, best match to the paper first; ``each_split``: one row per split of
    ``splits`` instead of one row on the first both sides have; ``kinds``: only samples
    of these query kinds, on both sides (empty: every kind); ``per_seed``: one more row
    per stage ``<b's stage>-seed<k>`` the run has (``grpo_variants`` named ``seed<k>``),
    the same comparison with b's RL run trained with seed k. ``budgets``: one row per
    budget instead of the full-budget row: N voted samples for a side whose strategy
    is ``vote`` (the vote over its first N stored samples), T steps for a stepped side
    (its first T steps; a search keeps its best-scoring one of them, greedy its last);
    budgets above what the run stored are dropped (``seglib.evaluation.curves.at_budget``).
    """

    paper: str
    claim: str
    published: str
    a: tuple[str, str]
    b: tuple[str, str]
    needs: str
    splits: tuple[str, ...] = ("test",)
    each_split: bool = False
    kinds: tuple[str, ...] = ()
    per_seed: bool = False
    budgets: tuple[int, ...] = ()


@dataclass(frozen=True)
class Options:
    """Base of every paradigm's options (today's ``sft_options.<paradigm>``); subclasses add fields.

    ``prompt_template``: the paradigm's prompt template key (None = its default).
    """

    prompt_template: str | None = None


class Paradigm(ABC):
    """One output paradigm. Subclasses set the class attributes and implement the abstract members."""

    #: registry name, e.g. "boxpoints"
    name: ClassVar[str]
    #: the frozen dataclass of this paradigm's options
    Options: ClassVar[type] = Options
    #: whether SFT needs F_sim trajectories (``trajectories/*.jsonl``) besides the samples
    needs_trajectories: ClassVar[bool] = False
    #: reward scorer → component → (low, high), the ranges a contract test checks
    reward_ranges: ClassVar[dict[str, dict[str, tuple[float, float]]]] = {}
    #: the scorers GRPO uses when the parameters name none
    default_rewards: ClassVar[tuple[str, ...]] = ()
    #: the paper claims this paradigm's predictions measure
    claims: ClassVar[tuple[Claim, ...]] = ()
    #: whether an episode takes several steps (each answer acts on the state the last one left); records then
    #: carry every step (``steps``), whatever ``horizon`` a run sets
    stepped: ClassVar[bool] = False
    #: whether ``decode`` fills ``Decoded.boxes`` (evaluation then scores boxes, e.g. Acc@0.5)
    writes_boxes: ClassVar[bool] = False

    def __init__(self, options: Any = None, **overrides: Any):
        """``options``: an ``Options`` instance or a dict (unknown keys raise ``OptionsError``); ``overrides`` win."""
        self.options = self.make_options(options, **overrides)

    # ------------------------------------------------------------------ identity and options
    @classmethod
    def make_options(cls, options: Any = None, **overrides: Any) -> Any:
        if isinstance(options, cls.Options) and not overrides:
            return options
        values = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options or {})
        values.update(overrides)
        known = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OptionsError(f"sft_options.{cls.name}: unknown option(s) {unknown}; expected some of {sorted(known)}")
        return cls.Options(**values)

    def task(self) -> dict:
        """The task record of a checkpoint trained this way (``seglib.inference.task.save_task``)."""
        return {"paradigm": self.name, "options": dataclasses.asdict(self.options)}

    @property
    def horizon(self) -> int:
        """Steps per episode: 1, or the click budget of a stepped paradigm."""
        return 1

    def strategies(self) -> tuple[str, ...]:
        """The inference strategies (of ``STRATEGIES``) that apply to this paradigm with these options."""
        return ("greedy", "sample", "vote")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    # ------------------------------------------------------------------ the episode
    def start(self, sample: Any, image: np.ndarray | None = None) -> State:
        """The first state of an episode on ``sample`` (``image`` = its image, read when not given)."""
        return State(sample=sample, image=sample.image() if image is None else image)

    @abstractmethod
    def prompt(self, sample: Any) -> str:
        """The prompt text for ``sample`` (one rule, shared by SFT, GRPO, inference and the demo)."""

    @abstractmethod
    def observe(self, state: State) -> tuple[np.ndarray, str]:
        """(image the policy sees, prompt text) at ``state``."""

    @abstractmethod
    def parse(self, text: Any) -> Any:
        """Text → answer in the model's frame, or None; never raises, never evals."""

    @abstractmethod
    def decode(self, state: State, answer: Any, segmenter: Any = None) -> tuple[Decoded, State]:
        """Answer (``parse``'s, None allowed) → per-object masks at ``state``, and the next state.

        A segmenter-based paradigm calls ``segmenter.set_image(state.image)`` (cached by content)
        and one ``predict_many``.
        """

    def decode_text(self, state: State, text: Any, segmenter: Any = None) -> tuple[Decoded, State]:
        """``decode(state, parse(text))``."""
        return self.decode(state, self.parse(text), segmenter)

    def to_json(self, answer: Any) -> Any:
        """A parsed answer as plain JSON types (what prediction files store)."""
        from seglib.paradigms.text import to_jsonable

        return to_jsonable(answer)

    @abstractmethod
    def oracle_answer(self, state: State, segmenter: Any = None) -> Any:
        """The answer a perfect policy writes at ``state`` (ground truth, or F_sim's click); None when none."""

    @abstractmethod
    def target_text(self, state: State, answer: Any) -> str:
        """The SFT target text for ``answer`` (``oracle_answer``'s form) at ``state``."""

    # ------------------------------------------------------------------ training data
    @abstractmethod
    def sft_examples(self, samples: Sequence[Any], trajectories: Sequence[Any] = ()) -> list[Example]:
        """SFT examples for ``samples`` (and F_sim ``trajectories`` where ``needs_trajectories``)."""

    def tokenizer_texts(self, samples: Sequence[Any], trajectories: Sequence[Any] = ()) -> list[str]:
        """Every text SFT shows (what a tiny policy's tokenizer is trained on): prompts and targets of the examples."""
        return [t for e in self.sft_examples(samples, trajectories) for t in (e.prompt, e.target)]

    @abstractmethod
    def rl_rows(self, samples: Sequence[Any], segmenter: Any = None, max_history: int = 0,
                seed: int = 0) -> list[dict]:
        """GRPO dataset rows: ``prompt`` (text), ``image`` (what the policy sees), ``sample_id``,
        ``image_path``, ``height``, ``width``, ``kind`` plus this paradigm's own ground-truth columns,
        which only ``score_group`` reads."""

    # ------------------------------------------------------------------ rewards
    def reward_components(self, rewards: Sequence[str] | None = None) -> list[str]:
        """Component names ``<scorer>_<component>`` of ``rewards`` (default ``default_rewards``)."""
        names = []
        for r in self.check_rewards(rewards):
            names += [f"{r}_{c}" for c in self.components_of(r)]
        return names

    def components_of(self, scorer: str) -> list[str]:
        """The components ``scorer`` writes with these options (default: all of ``reward_ranges[scorer]``)."""
        return list(self.reward_ranges[scorer])

    def check_rewards(self, rewards: Sequence[str] | None) -> list[str]:
        chosen = list(rewards or self.default_rewards)
        bad = [r for r in chosen if r not in self.reward_ranges]
        if bad:
            raise ValueError(f"reward(s) {bad} do not apply to paradigm {self.name!r}; "
                             f"choose from {sorted(self.reward_ranges)}")
        return chosen

    @abstractmethod
    def score_group(self, texts: Sequence[str], row: dict, segmenter: Any = None,
                    rewards: Sequence[str] | None = None, reward_options: dict | None = None) -> list[dict[str, float]]:
        """Reward components (``reward_components`` names → value in ``reward_ranges``) for the G
        completions of one ``rl_rows`` row."""

    # ------------------------------------------------------------------ evaluation
    def extra_metrics(self, records: Sequence[dict], splits: Sequence[str]) -> dict:
        """Metrics beyond gIoU/cIoU for one prediction file, keyed as in metrics.json (e.g. ``acc_at_05``)."""
        return {}
