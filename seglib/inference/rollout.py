"""The one rollout: observe → generate → parse/decode → next state, over any ``Paradigm``.

``rollout`` runs a policy on a batch of samples step-synchronously: at every
step it asks the policy once for all unfinished episodes (one ``generate``
call; ``seglib.models.generate`` pads on the left with an attention mask, so
the batch never changes an answer), then applies each text through ``step``.
The default step decodes the text (``decode_step``); a one-step paradigm
(``horizon`` 1) takes exactly one step, a stepped one stops at its horizon or
at the first text that does not parse ("no_action"). ``final_look`` asks the
policy once more at the last state of every episode that ran to its horizon
(a PRM policy's text there holds its estimate of the last mask's IoU).
StaR+ passes its own ``step`` (keep the policy's action or take the oracle's).

``sampled`` is the other direction: N sampled answers at a sample's first
state, each decoded there (the ``sample`` and ``vote`` strategies).
``stepped_result`` turns a greedy stepped episode into the
``seglib.search.SearchResult`` of a one-candidate search, so greedy stepped
records share ``seglib.search.result_to_record``'s schema.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seglib.search import GenerateFn, Look, SearchResult, SearchStep, candidate, look


@dataclass
class Episode:
    """One sample's rollout: the ``steps`` taken (``Look``s: state, text, decoded, next state) and ``state`` now.

    ``final``: the text at the last state, decoded (``final_look``; or the unparsable text a stepped
    episode stopped at); ``stopped_by``: "max_steps", "no_action" or a custom step's reason; ``notes``:
    what a custom step records per step (StaR+'s ``StarStep``).
    """

    sample: Any
    state: Any
    steps: list[Look] = field(default_factory=list)
    final: Look | None = None
    stopped_by: str = ""
    notes: list[Any] = field(default_factory=list)


#: A step: apply ``text`` to the episode (append to ``steps``, move ``state``, or set ``stopped_by``).
StepFn = Callable[[Episode, str], None]


def propose(paradigm: Any, states: Sequence[Any], generate: GenerateFn) -> list[str]:
    """One greedy text per state, in one ``generate`` call."""
    views = [paradigm.observe(s) for s in states]
    outs = generate([v[0] for v in views], [v[1] for v in views], 1, False)
    return [o[0] if o else "" for o in outs]


def decode_step(paradigm: Any, segmenter: Any, stop_unparsed: bool) -> StepFn:
    """The plain step: decode the text and move on; with ``stop_unparsed``, an unparsable text ends the episode."""

    def step(ep: Episode, text: str) -> None:
        lk = look(paradigm, ep.state, text, segmenter)
        if stop_unparsed and not lk.decoded.parsed:
            ep.final, ep.stopped_by = lk, "no_action"
            return
        ep.steps.append(lk)
        ep.state = lk.next_state

    return step


def rollout(paradigm: Any, samples: Sequence[Any], generate: GenerateFn, segmenter: Any = None,
            horizon: int | None = None, step: StepFn | None = None, final_look: bool = False,
            progress: bool = False, desc: str = "rollout") -> list[Episode]:
    """Episodes of ``generate`` (greedy) on ``samples`` from their first state, ``horizon`` steps at most.

    ``horizon`` None = ``paradigm.horizon``; ``step`` None = ``decode_step`` (stopping at an unparsable
    text when the paradigm is stepped).
    """
    from tqdm.auto import tqdm

    horizon = paradigm.horizon if horizon is None else int(horizon)
    step = step or decode_step(paradigm, segmenter, stop_unparsed=paradigm.stepped)
    episodes = [Episode(s, paradigm.start(s)) for s in samples]
    for _ in tqdm(range(horizon), desc=desc, disable=not progress):
        active = [e for e in episodes if not e.stopped_by]
        if not active:
            break
        for e, text in zip(active, propose(paradigm, [e.state for e in active], generate)):
            step(e, text)
    if final_look:
        active = [e for e in episodes if not e.stopped_by]
        if active:
            for e, text in zip(active, propose(paradigm, [e.state for e in active], generate)):
                e.final = look(paradigm, e.state, text, segmenter)
    for e in episodes:
        e.stopped_by = e.stopped_by or "max_steps"
    return episodes


def sampled(paradigm: Any, sample: Any, generate: GenerateFn, segmenter: Any, n: int) -> list[Look]:
    """``n`` sampled answers at ``sample``'s first state (one ``generate`` call), each decoded there."""
    state = paradigm.start(sample)
    image, prompt = paradigm.observe(state)
    texts = generate([image], [prompt], n, True)[0]
    return [look(paradigm, state, t, segmenter) for t in texts]


def stepped_result(ep: Episode, horizon: int, gt_mask: np.ndarray | None = None) -> SearchResult:
    """A greedy stepped episode as a one-candidate search (``select="last"``): step t's score text is the
    text at the state after it (the next step's, or ``final``)."""
    follows = ep.steps[1:] + [ep.final]
    steps = [SearchStep(step=t, candidates=[candidate(lk, f, gt_mask)], chosen=0)
             for t, (lk, f) in enumerate(zip(ep.steps, follows), start=1)]
    first = ep.steps[0] if ep.steps else ep.final
    initial = None if first is None else first.decoded.pred_iou
    if not steps:
        return SearchResult(steps, 0, np.zeros((ep.state.height, ep.state.width), bool), ep.stopped_by, 1,
                            horizon, initial)
    return SearchResult(steps, len(steps), steps[-1].best.mask, ep.stopped_by, 1, horizon, initial)
