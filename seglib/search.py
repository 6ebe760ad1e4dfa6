"""PRM tree search for the clicks paradigm (SegAgent, "process reward model").

The PRM-format policy writes the current mask's IoU before its action:
``Current IoU: 85.2, Positive point: (412, 377)``. SegAgent uses that
self-predicted IoU to search over click paths (docs/METHODS.md, "Inference-time
scaling"):

* at each of at most T steps, take K candidate actions at the current state:
  the greedy action plus K − 1 sampled ones;
* run the segmenter on every candidate with ``predict_many`` (all clicks so
  far plus the candidate, and the previous mask's logits), so the K
  candidates share one image encode (``set_image`` is called once per search);
  identical candidate clicks are segmented and scored once;
* score each next mask by the policy's own IoU estimate at that next state
  (a greedy generation on the overlaid state image), keep the best candidate
  (earliest on ties); the scoring text also yields the next greedy action;
* stop at T, or when the predicted IoU has not risen for ``patience`` steps;
* return the mask of the best-scoring step (earliest on ties).

K = 1 is "PRM-guided stopping only": the path is exactly the greedy path, and
only the stopping and the choice of step differ. ``select="last"`` with
``patience=None`` is plain greedy clicking (no PRM) on the same machinery.

Every step records all candidates (text, click, predicted and, given the
ground truth, true IoU, mask). ``calibration`` reports the PRM's MAE and
Pearson correlation between predicted and true IoU (SegAgent: MAE ≈ 6–7 IoU
points, Pearson ≈ 0.9 at full scale).

Predicted IoUs are fractions in [0, 1] here (the text's 0–100 divided by 100).
Clicks are ``(x, y, positive)`` in pixels of the image as given.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# (images, prompts, num_return_sequences, do_sample) -> per prompt a list of texts
GenerateFn = Callable[[list[np.ndarray], list[str], int, bool], list[list[str]]]
# text -> (self-predicted IoU as a fraction or None, click (x, y, positive) in pixels or None)
ParseFn = Callable[[str], tuple[float | None, tuple[int, int, bool] | None]]
# current mask -> (state image the policy sees, prompt text)
StateFn = Callable[[np.ndarray], tuple[np.ndarray, str]]


@dataclass
class Candidate:
    text: str  # the text whose action this candidate applies
    click: tuple[int, int, bool] | None
    score_text: str = ""  # greedy text at the candidate's next state (holds the predicted IoU)
    pred_iou: float | None = None  # self-predicted IoU of the next mask (fraction)
    iou: float | None = None  # true IoU of the next mask, when the ground truth is given
    mask: np.ndarray | None = field(default=None, repr=False)
    logits: Any = field(default=None, repr=False)


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


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    from seglib.masks import mask_iou

    return float(mask_iou(pred, gt))


def _rank_key(v: float | None) -> float:
    return -math.inf if v is None or not np.isfinite(v) else float(v)


def prm_search(
    image: np.ndarray,
    state_fn: StateFn,
    generate: GenerateFn,
    parse: ParseFn,
    segmenter: Any,
    max_steps: int,
    k: int = 1,
    patience: int | None = 1,
    gt_mask: np.ndarray | None = None,
    select: str = "best",
    make_prompt: Callable[..., Any] | None = None,
) -> SearchResult:
    """SegAgent's PRM tree search from an empty mask (see the module docstring).

    ``generate`` must be deterministic when ``do_sample`` is False. ``select``
    is "best" (the best-scoring step's mask) or "last" (the last step's mask:
    plain clicking). ``patience=None`` never stops early.
    """
    if max_steps < 1 or k < 1:
        raise ValueError(f"prm_search: max_steps and k must be ≥ 1, got {max_steps}, {k}")
    if select not in ("best", "last"):
        raise ValueError(f"prm_search: select must be 'best' or 'last', got {select!r}")
    if make_prompt is None:
        from seglib.segmenters import Prompt as make_prompt  # noqa: N813
    height, width = image.shape[:2]
    segmenter.set_image(image)
    mask = np.zeros((height, width), bool)
    logits = None
    clicks: list[tuple[int, int, bool]] = []

    state_img, state_prompt = state_fn(mask)
    score_text = generate([state_img], [state_prompt], 1, False)[0][0]
    initial_pred = parse(score_text)[0]
    steps: list[SearchStep] = []
    best_pred, since_best = _rank_key(initial_pred), 0
    stopped_by = "max_steps"
    for t in range(1, max_steps + 1):
        texts = [score_text]
        if k > 1:
            texts += list(generate([state_img], [state_prompt], k - 1, True)[0])
        cands = [Candidate(text=tx, click=parse(tx)[1]) for tx in texts]
        valid = [c for c in cands if c.click is not None]
        if not valid:
            stopped_by = "no_action"
            break
        # identical clicks are segmented and scored once
        unique: dict[tuple, Candidate] = {}
        for c in valid:
            unique.setdefault(tuple(c.click), c)
        firsts = list(unique.values())
        prompts = []
        for c in firsts:
            path = clicks + [c.click]
            prompts.append(make_prompt(points_xy=[(int(x), int(y)) for x, y, _ in path],
                                       labels=[1 if pos else 0 for _, _, pos in path],
                                       mask_logits=logits))
        preds = segmenter.predict_many(prompts)  # one image encode for all K
        state_of: dict[tuple, tuple[np.ndarray, str]] = {}
        for c, p in zip(firsts, preds):
            c.mask = np.asarray(p.mask, bool)
            c.logits = p.logits
            if gt_mask is not None:
                c.iou = _iou(c.mask, gt_mask)
            state_of[tuple(c.click)] = state_fn(c.mask)
        outs = generate([state_of[tuple(c.click)][0] for c in firsts],
                        [state_of[tuple(c.click)][1] for c in firsts], 1, False)
        for c, o in zip(firsts, outs):
            c.score_text = o[0]
            c.pred_iou = parse(o[0])[0]
        for c in valid:
            f = unique[tuple(c.click)]
            if c is not f:
                c.mask, c.logits, c.iou, c.score_text, c.pred_iou = f.mask, f.logits, f.iou, f.score_text, f.pred_iou
        states = [state_of[tuple(c.click)] for c in valid]
        chosen_valid = max(range(len(valid)), key=lambda i: (_rank_key(valid[i].pred_iou), -i))
        chosen = cands.index(valid[chosen_valid])
        best = cands[chosen]
        steps.append(SearchStep(step=t, candidates=cands, chosen=chosen))
        mask, logits, clicks = best.mask, best.logits, clicks + [best.click]
        score_text = best.score_text
        state_img, state_prompt = states[chosen_valid]
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


def calibration(pred_iou: Sequence[float], true_iou: Sequence[float]) -> dict:
    """PRM calibration: ``{"mae", "pearson", "n"}`` between predicted and true IoU (fractions).

    ``pearson`` is None with fewer than 2 pairs or a constant side; ``mae`` is
    None with no pairs.
    """
    p = np.asarray(pred_iou, float)
    t = np.asarray(true_iou, float)
    if p.shape != t.shape:
        raise ValueError(f"calibration: {p.shape} predicted vs {t.shape} true IoUs")
    n = int(p.size)
    if n == 0:
        return {"mae": None, "pearson": None, "n": 0}
    mae = float(np.mean(np.abs(p - t)))
    pearson = None
    if n >= 2 and p.std() > 0 and t.std() > 0:
        pearson = float(np.corrcoef(p, t)[0, 1])
    return {"mae": mae, "pearson": pearson, "n": n}


def result_to_record(result: SearchResult) -> dict:
    """The ``steps`` / ``best_step`` / ``stopped_by`` part of a prediction line (RLE masks)."""
    from seglib.masks import encode_rle

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
