"""The ``sample`` and ``vote`` strategies: N sampled answers per query, and StAR's mask majority vote over them.

``sample``: the prediction is the first sample (so its score is a single-sample
score); all N are stored. ``vote``: ``seglib.voting.vote`` over the N samples'
object masks and segmenter scores (StAR: N = 32, T = 1.0, top-p 0.9); the
clusters are stored, and the prediction is the union of the chosen clusters
(boxes: the first member's box of each chosen cluster, where it has one).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seglib.inference.records import base_record, fill_prediction
from seglib.masks import encode_rle

#: the record's vote settings unless ``vote_kwargs`` say otherwise
VOTE_DEFAULTS = {"iou_thr": 0.85, "min_vote_ratio": 0.2, "aggregate": "best"}


def sampled_record(sample: Any, looks: Sequence[Any], paradigm: str, checkpoint: str, strategy: str,
                   vote_kwargs: dict | None = None) -> dict:
    """The record of N decoded samples (``rollout.sampled``); ``strategy`` "sample" or "vote"."""
    decs = [lk.decoded for lk in looks]
    texts = [lk.text for lk in looks]
    rec = base_record(sample, paradigm, checkpoint, strategy)
    rec["texts"] = list(texts)
    rec["answers"] = [d.answer for d in decs]
    rec["samples"] = [{"text": t, "answer": d.answer, "parsed": d.parsed,
                       "object_rles": [encode_rle(m) for m in d.object_masks], "scores": d.scores, "boxes": d.boxes}
                      for t, d in zip(texts, decs)]
    if strategy == "sample":
        return fill_prediction(rec, decs[0], sample.height, sample.width)
    return vote_part(rec, decs, sample.height, sample.width, vote_kwargs)


def vote_part(rec: dict, decs: Sequence[Any], height: int, width: int, vote_kwargs: dict | None = None) -> dict:
    """StAR's vote over the decoded samples ``decs``: ``vote`` and the prediction keys of ``rec``."""
    from seglib.voting import vote

    opts = {**VOTE_DEFAULTS, **(vote_kwargs or {})}
    result = vote([d.object_masks for d in decs], [d.scores for d in decs], **opts)
    chosen_rank = {ci: r for r, ci in enumerate(result.chosen)}
    rec["vote"] = {
        "n": len(decs), **opts, "k_hat": result.k_hat, "empty": result.empty_majority, "fallback": result.fallback,
        "clusters": [{"members": [list(m) for m in c.members], "votes": c.votes, "mean_score": c.mean_score,
                      "chosen": ci in chosen_rank, "rank": chosen_rank.get(ci), "kept": ci in result.kept,
                      "rle": encode_rle(c.mask)} for ci, c in enumerate(result.clusters)],
    }
    union = np.zeros((height, width), bool)
    for m in result.masks:
        union |= m
    any_parsed = any(d.parsed for d in decs)
    boxes = []
    for ci in result.chosen:  # the box of each chosen cluster's first member, where it has one
        s_i, o_i = result.clusters[ci].members[0]
        if o_i < len(decs[s_i].boxes):
            boxes.append(decs[s_i].boxes[o_i])
    rec.update(parsed=any_parsed, mask_rle=encode_rle(union) if any_parsed else None,
               object_rles=[encode_rle(m) for m in result.masks], boxes=boxes)
    return rec
