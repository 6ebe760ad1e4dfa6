"""Task metrics of a policy on a val slice, during and after SFT (notebook 03's tables and gallery).

The answers are inference's greedy episodes (``seglib.inference.runner.greedy_records``,
the same code as notebook 06; a stepped paradigm for ``max_clicks`` steps), scored by
``seglib.evaluation.score_record`` (METHODS.md's IoU rules). A paradigm that writes
boxes (``writes_boxes``) also gets each row's ``box_iou`` (first predicted box against
the first target box, inclusive; 0 when either is missing) and the summary's ``acc05``
over every row (not metrics.json's ``acc_at_05``, which counts one-target samples only).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from seglib.paradigms.base import Paradigm


# Prompts generated together in a greedy evaluation: on 2 CPU cores a batch of 64 costs far less a sample than
# one of 8 (``bench/eval_batch.py`` measures both and compares the answers).
EVAL_BATCH_SIZE = 64


def reports_boxes(paradigm: "Paradigm") -> bool:
    """Whether ``paradigm``'s answers are boxes scored as such (its ``writes_boxes``)."""
    return bool(paradigm.writes_boxes)


def evaluate_policy(model, processor, paradigm: "Paradigm", samples: Sequence, segmenter, max_clicks: int = 5,
                    max_new_tokens: int = 96, batch_size: int = EVAL_BATCH_SIZE) -> list[dict]:
    """Greedy predictions of the policy on ``samples``, scored; one dict per sample.

    Keys: ``sample_id``, ``kind``, ``iou`` (mask IoU, METHODS.md rules),
    ``parsed``, ``text`` (last text), ``mask`` (bool array or None), ``boxes``
    (the predicted boxes, [] where the paradigm writes none), and ``box_iou``
    where the paradigm ``reports_boxes``. A stepped paradigm runs ``max_clicks``
    greedy steps (its horizon, as in ``seglib.inference.predict_split``) from its start state; the last
    mask is scored.
    """
    from seglib.evaluation import score_record
    from seglib.inference import Policy, with_options
    from seglib.inference.runner import Job, greedy_records
    from seglib.masks import box_iou, decode_rle

    policy = Policy(model, processor, max_new_tokens, batch_size=batch_size)  # greedy: no sampling settings apply
    job = Job(with_options(paradigm, max_clicks=max_clicks), policy, segmenter, "eval", "greedy")
    records = []
    for start in range(0, len(samples), batch_size):
        records += greedy_records(list(samples[start:start + batch_size]), job)
    boxes_scored = reports_boxes(paradigm)
    out = []
    for s, rec in zip(samples, records):
        sc = score_record(rec)
        row = {"sample_id": s.sample_id, "kind": s.kind, "iou": sc.iou, "parsed": sc.parsed,
               "text": (rec.get("texts") or [""])[-1],
               "mask": decode_rle(rec["mask_rle"]) if rec.get("mask_rle") is not None else None}
        gt_boxes, boxes = rec.get("gt_boxes") or [], rec.get("boxes") or []
        if boxes_scored:
            row["box_iou"] = float(box_iou(boxes[0], gt_boxes[0])) if boxes and gt_boxes else 0.0
        row["boxes"] = boxes
        out.append(row)
    return out


def summarise(rows: Sequence[dict]) -> dict:
    """gIoU (mean IoU), parse rate and, where present, box Acc@0.5 of ``evaluate_policy`` rows."""
    if not rows:
        return {"n": 0}
    out = {"n": len(rows), "giou": float(np.mean([r["iou"] for r in rows])),
           "parsed": float(np.mean([r["parsed"] for r in rows]))}
    if "box_iou" in rows[0]:
        out["acc05"] = float(np.mean([r["box_iou"] >= 0.5 for r in rows]))
    return out


def evaluate_split(model, processor, paradigm: "Paradigm", val_samples: Sequence, segmenter, max_clicks: int,
                   max_new_tokens: int) -> tuple[list[dict], dict, dict]:
    """Greedy rows on ``val_samples``, their summary, and the summary per query kind."""
    rows = evaluate_policy(model, processor, paradigm, list(val_samples), segmenter, max_clicks, max_new_tokens)
    by_kind = {k: summarise([r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})}
    return rows, summarise(rows), by_kind
