"""PRM tree search over a stepped paradigm whose policy estimates its own IoU (SegAgent, "process reward model").

A PRM-format clicks policy writes the current mask's IoU before its action:
``Current IoU: 85.2, Positive point: (412, 377)``. SegAgent uses that
self-predicted IoU to search over action paths (docs/METHODS.md, "Inference-time
scaling"). Everything here goes through the paradigm's members: ``observe``
(state image and prompt), ``parse``, ``decode`` (the next state) and
``Decoded.pred_iou`` (the self-estimate a text holds):

* at each of at most T steps, take K candidate actions at the current state:
  the greedy action plus K − 1 sampled ones;
* decode every distinct candidate answer at the current state (the
  segmenter's image is encoded once: ``set_image`` caches by content);
  candidates with the same action are scored once;
* score each next state by the policy's own IoU estimate there (a greedy
  generation at that state), keep the best candidate (earliest on ties); the
  scoring text also yields the next greedy action;
* stop at T, or when the predicted IoU has not risen for ``patience`` steps;
* return the mask of the best-scoring step (earliest on ties).

K = 1 is "PRM-guided stopping only": the path is exactly the greedy path, and
only the stopping and the choice of step differ. ``select="last"`` with
``patience=None`` is plain greedy stepping (no PRM) on the same machinery.

Every step records all candidates (text, action, predicted and, given the
ground truth, true IoU, mask). ``seglib.metrics.calibration`` reports the PRM's
MAE and Pearson correlation between predicted and true IoU. Predicted IoUs are
fractions in [0, 1]; clicks are ``(x, y, positive)`` in pixels of the image.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seglib.masks import encode_rle, mask_iou

#: (images, prompts, num_return_sequences, do_sample) -> per prompt a list of texts
GenerateFn = Callable[[list[np.ndarray], list[str], int, bool], list[list[str]]]


@dataclass
class Look:
    """One text the policy wrote at ``state``, decoded there: ``decoded`` and the ``next_state`` it leads to."""

    state: Any
    text: str
    decoded: Any
    next_state: Any


@dataclass
class Candidate:
    text: str  # the text whose action this candidate applies
    click: tuple[int, int, bool] | None  # the action in pixels (the click it added), None if unparsable
    score_text: str = ""  # greedy text at the candidate's next state (holds the predicted IoU)
    pred_iou: float | None = None  # self-predicted IoU of the next mask (fraction)
    iou: float | None = None  # true IoU of the next mask, when the ground truth is given
    mask: np.ndarray | None = field(default=None, repr=False)
    logits: Any = field(default=None, repr=False)
    look: Look | None = field(default=None, repr=False)  # the candidate's action decoded
    follow: Look | None = field(default=None, repr=False)  # the score text decoded at the next state


@dataclass
class SearchStep:
    step: int  # 1-based
    candidates: list[Candidate]
    chosen: int

    @property
    def best(self) -> Candidate:
        return self.candidates[self.chosen]


@dataclass
class SearchResult:
    steps: list[SearchStep]
    best_step: int  # 1-based index into steps; 0 when no step was taken
    mask: np.ndarray
    stopped_by: str  # "max_steps" | "patience" | "no_action"
    k: int
    max_steps: int
    initial_pred_iou: float | None = None

    @property
    def clicks(self) -> list[tuple[int, int, bool]]:
        return [s.best.click for s in self.steps]


def look(paradigm: Any, state: Any, text: str, segmenter: Any) -> Look:
    """``text`` parsed and decoded at ``state``."""
    decoded, next_state = paradigm.decode(state, paradigm.parse(text), segmenter)
    return Look(state, text, decoded, next_state)


def action_of(lk: Look) -> tuple[int, int, bool] | None:
    """The click a parsed look added, as ``(x, y, positive)`` pixels (None when unparsed or nothing was added)."""
    added = lk.next_state.clicks[len(lk.state.clicks):] if lk.decoded.parsed else ()
    if not added:
        return None
    c = added[-1]
    return int(c.x), int(c.y), bool(c.positive)


def candidate(lk: Look, follow: Look | None, gt_mask: np.ndarray | None) -> Candidate:
    """A step's candidate from its decoded action and the decoded score text at its next state."""
    c = Candidate(text=lk.text, click=action_of(lk), look=lk, follow=follow)
    if lk.decoded.parsed:
        c.mask = np.asarray(lk.next_state.mask, bool)
        c.logits = lk.next_state.logits
        c.iou = None if gt_mask is None else mask_iou(c.mask, gt_mask)
    if follow is not None:
        c.score_text, c.pred_iou = follow.text, follow.decoded.pred_iou
    return c


def _decode_all(paradigm: Any, state: Any, texts: Sequence[str], segmenter: Any, known: Look) -> list[Look]:
    """``texts`` decoded at ``state``; an answer equal to an earlier one (or to ``known``'s) is decoded once."""
    import json

    def key(answer: Any) -> str:
        return json.dumps(paradigm.to_json(answer), sort_keys=True)

    first = paradigm.parse(known.text)
    done = {} if first is None else {key(first): (known.decoded, known.next_state)}
    out = []
    for text in texts:
        answer = paradigm.parse(text)
        k = None if answer is None else key(answer)
        if k in done:
            dec_next = done[k]
            out.append(Look(state, text, *dec_next))
            continue
        decoded, next_state = paradigm.decode(state, answer, segmenter)
        if k is not None:
            done[k] = (decoded, next_state)
        out.append(Look(state, text, decoded, next_state))
    return out


def _rank_key(v: float | None) -> float:
    return -math.inf if v is None or not np.isfinite(v) else float(v)


def _greedy(paradigm: Any, states: list, generate: GenerateFn) -> list[str]:
    views = [paradigm.observe(s) for s in states]
    return [o[0] for o in generate([v[0] for v in views], [v[1] for v in views], 1, False)]


def _score(paradigm: Any, cands: list[Candidate], generate: GenerateFn, segmenter: Any) -> None:
    """Score the parsed candidates: one greedy generation per distinct action (the same next state), decoded there."""
    unique: dict[tuple, Candidate] = {}
    for c in cands:
        unique.setdefault(c.click, c)
    firsts = list(unique.values())
    texts = _greedy(paradigm, [c.look.next_state for c in firsts], generate)
    for c, text in zip(firsts, texts):
        follow = look(paradigm, c.look.next_state, text, segmenter)
        c.follow, c.score_text, c.pred_iou = follow, follow.text, follow.decoded.pred_iou
    for c in cands:
        f = unique[c.click]
        c.follow, c.score_text, c.pred_iou = f.follow, f.score_text, f.pred_iou


def prm_search(
    paradigm: Any,
    state: Any,
    generate: GenerateFn,
    segmenter: Any,
    max_steps: int,
    k: int = 1,
    patience: int | None = 1,
    gt_mask: np.ndarray | None = None,
    select: str = "best",
) -> SearchResult:
    """SegAgent's PRM tree search from ``state`` (``paradigm.start(sample)``; see the module docstring).

    ``generate`` must be deterministic when ``do_sample`` is False. ``select``
    is "best" (the best-scoring step's mask) or "last" (the last step's mask:
    plain stepping). ``patience=None`` never stops early.
    """
    if max_steps < 1 or k < 1:
        raise ValueError(f"prm_search: max_steps and k must be ≥ 1, got {max_steps}, {k}")
    if select not in ("best", "last"):
        raise ValueError(f"prm_search: select must be 'best' or 'last', got {select!r}")
    mask = np.zeros((state.height, state.width), bool) if state.mask is None else state.mask
    current = look(paradigm, state, _greedy(paradigm, [state], generate)[0], segmenter)
    initial_pred = current.decoded.pred_iou
    steps: list[SearchStep] = []
    best_pred, since_best = _rank_key(initial_pred), 0
    stopped_by = "max_steps"
    for t in range(1, max_steps + 1):
        looks = [current]
        if k > 1:
            image, prompt = paradigm.observe(state)
            looks += _decode_all(paradigm, state, generate([image], [prompt], k - 1, True)[0], segmenter, current)
        cands = [candidate(lk, None, gt_mask) for lk in looks]
        valid = [c for c in cands if c.click is not None]
        if not valid:
            stopped_by = "no_action"
            break
        _score(paradigm, valid, generate, segmenter)
        chosen_valid = max(range(len(valid)), key=lambda i: (_rank_key(valid[i].pred_iou), -i))
        chosen = cands.index(valid[chosen_valid])
        best = cands[chosen]
        steps.append(SearchStep(step=t, candidates=cands, chosen=chosen))
        state, current = best.look.next_state, best.follow
        if _rank_key(best.pred_iou) > best_pred:
            best_pred, since_best = _rank_key(best.pred_iou), 0
        else:
            since_best += 1
        if patience is not None and since_best >= patience and t < max_steps:
            stopped_by = "patience"
            break
    if not steps:
        return SearchResult(steps, 0, mask, stopped_by, k, max_steps, initial_pred)
    if select == "last":
        best_step = len(steps)
    else:
        vals = [_rank_key(s.best.pred_iou) for s in steps]
        best_step = int(np.argmax(vals)) + 1  # argmax: earliest on ties
    return SearchResult(steps, best_step, steps[best_step - 1].best.mask, stopped_by, k, max_steps, initial_pred)


def result_to_record(result: SearchResult) -> dict:
    """The ``steps`` / ``best_step`` / ``stopped_by`` / ``search`` part of a prediction line (RLE masks)."""
    steps = []
    for s in result.steps:
        cands = [{
            "text": c.text,
            "click": None if c.click is None else [int(c.click[0]), int(c.click[1]), bool(c.click[2])],
            "score_text": c.score_text,
            "pred_iou": c.pred_iou,
            "iou": c.iou,
            "mask_rle": None if c.mask is None else encode_rle(c.mask),
        } for c in s.candidates]
        b = cands[s.chosen]
        steps.append({"step": s.step, "text": b["text"], "click": b["click"], "pred_iou": b["pred_iou"],
                      "iou": b["iou"], "mask_rle": b["mask_rle"], "chosen": s.chosen, "candidates": cands})
    return {"steps": steps, "best_step": result.best_step, "stopped_by": result.stopped_by,
            "search": {"k": result.k, "t": result.max_steps, "initial_pred_iou": result.initial_pred_iou}}
