"""The trl adapter for rewards: one trl reward function per named component, over ``Paradigm.score_group``.

Every paradigm scores the G completions of one prompt with ``score_group``
(its scorers live in its folder, e.g. ``seglib.paradigms.boxpoints.segzero``).
``ComponentRewards`` turns a group scorer into trl reward functions with trl's
signature ``reward(prompts, completions, **columns) -> list[float]``, one per
component (``__name__`` = the component, so trl logs ``rewards/<component>/mean``):
the first component called on a generation batch scores every group once (one
``set_image`` per image, one ``predict_many`` per group inside the scorer), the
others read the cached scores. ``reward_functions(paradigm, …)`` builds it for a
paradigm. Rewards are finite: a non-finite value becomes 0, and a component a
row's scorer does not write is None (trl leaves it out of that row's sum).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

#: A group scorer: the G completion texts of one prompt and that prompt's dataset row → one dict of
#: named reward components per completion (same keys for every completion).
GroupScorer = Callable[[Sequence[str], dict], list[dict[str, float]]]


def completion_text(completion: Any) -> str:
    """trl hands conversational completions as ``[{"role": "assistant", "content": text}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else ""
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return ""


class ComponentRewards:
    """One trl reward function per named component, all fed by one group scorer call per generation batch.

    ``scorer(texts, row)`` scores the completions of one prompt (a group). The
    batch trl passes is split into groups by the ``group_key`` column (default
    ``sample_id``); each group is scored once, and each component function
    returns its column. ``timings`` collects the seconds spent per batch.
    """

    def __init__(self, scorer: GroupScorer, components: Sequence[str], group_key: str = "sample_id"):
        self.scorer = scorer
        self.components = list(components)
        self.group_key = group_key
        self._batch: Any = None
        self._scores: list[dict[str, float]] = []
        self.timings: list[float] = []

    def _score(self, completions: list, kwargs: dict) -> None:
        t0 = time.perf_counter()
        texts = [completion_text(c) for c in completions]
        keys = kwargs.get(self.group_key) or list(range(len(texts)))
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        columns = [k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric", "completion_ids",
                                                  "prompts", "environments")]
        scores: list[dict[str, float] | None] = [None] * len(texts)
        for idx in groups.values():
            row = {k: kwargs[k][idx[0]] for k in columns}
            for i, s in zip(idx, self.scorer([texts[i] for i in idx], row)):
                scores[i] = s
        self._scores = [s or {} for s in scores]
        self._batch = completions
        dt = time.perf_counter() - t0
        self.timings.append(dt)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric("reward_time_s", dt)

    def function(self, component: str) -> Callable[..., list[float]]:
        def reward(prompts=None, completions=None, **kwargs):
            if completions is not self._batch:
                self._score(completions, kwargs)
            out: list[float | None] = []
            for s in self._scores:
                v = s.get(component)
                # a component a row's scorer does not have is None: trl leaves it out of that row's sum
                out.append(None if v is None else (float(v) if math.isfinite(float(v)) else 0.0))
            return out

        reward.__name__ = component
        return reward

    def functions(self) -> list[Callable[..., list[float]]]:
        return [self.function(c) for c in self.components]


def reward_functions(paradigm: Any, segmenter: Any = None, rewards: Sequence[str] | None = None,
                     reward_options: dict | None = None) -> ComponentRewards:
    """``ComponentRewards`` over ``paradigm.score_group`` with ``rewards`` (default: the paradigm's) and
    ``reward_options``; ``.functions()`` are the trl reward functions, in ``paradigm.reward_components`` order."""
    components = paradigm.reward_components(rewards)

    def scorer(texts: Sequence[str], row: dict) -> list[dict[str, float]]:
        return paradigm.score_group(texts, row, segmenter, rewards, reward_options)

    return ComponentRewards(scorer, components)
