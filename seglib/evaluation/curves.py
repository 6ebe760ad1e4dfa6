"""Strategy metrics: StAR's IoU versus the number of voted samples N, SegAgent's PRM tree search.

These are keyed by the inference *strategy* that wrote the file, not by its
paradigm: a file of sampled answers (records with ``samples``) gets a voting
curve, a ``prm_search_k<K>`` file gets the search metrics. IoUs are fractions.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seglib.evaluation.scoring import gt_mask, meter_summary, splits_in_order
from seglib.masks import decode_rle

VOTE_NS = (1, 2, 4, 8, 16, 32, 64)
SEARCH_PREFIX = "prm_search"


def strategy_metrics(records: Sequence[dict]) -> dict:
    """``{"vote_curve": ..., "search": ...}`` of one file, ``{}`` where its strategy has none."""
    return {
        "vote_curve": vote_curve(records) if any(r.get("samples") for r in records) else {},
        "search": search_metrics(records) if str(records[0]["strategy"]).startswith(SEARCH_PREFIX) else {},
    }


# --------------------------------------------------------------------------- voting curve (StAR)


def _sample_masks(rec: dict) -> tuple[list[list[np.ndarray]], list[list[float]]]:
    masks, scores = [], []
    for s in rec.get("samples") or []:
        objs = [decode_rle(o) for o in (s.get("object_rles") or [])] if s.get("parsed") else []
        masks.append(objs)
        sc = list(s.get("scores") or [])
        scores.append((sc + [1.0] * len(objs))[: len(objs)])
    return masks, scores


def vote_curve(records: Sequence[dict], ns: Sequence[int] = VOTE_NS) -> dict:
    """gIoU/cIoU of majority voting over the first n stored samples, per split.

    Recomputed from the stored samples with ``seglib.voting.majority_vote`` and
    the vote settings stored in the record (StAR's defaults otherwise).
    """
    n_max = min(len(r.get("samples") or []) for r in records)
    grid = sorted({n for n in ns if n <= n_max} | ({n_max} if n_max else set()))
    out = {}
    for split in splits_in_order(records):
        rs = [r for r in records if r["split"] == split]
        gis, cis = [], []
        for n in grid:
            s = meter_summary([(vote_mask(r, n), gt_mask(r)) for r in rs])
            gis.append(s["giou"])
            cis.append(s["ciou"])
        out[split] = {"n": grid, "giou": gis, "ciou": cis}
    return out


def vote_mask(rec: dict, n: int) -> np.ndarray:
    """The majority vote over the first ``n`` stored samples of a record (its stored vote settings, else
    StAR's defaults): the union of the chosen clusters, all False when none is chosen."""
    from seglib.voting import majority_vote

    masks, scores = _sample_masks(rec)
    opts = {k: v for k, v in (rec.get("vote") or {}).items() if k in ("iou_thr", "min_vote_ratio", "aggregate")}
    pred = np.zeros((rec["height"], rec["width"]), bool)
    for m in majority_vote(masks[:n], scores[:n], **opts):
        pred |= np.asarray(m, bool)
    return pred


# --------------------------------------------------------------------------- smaller budgets (N, T)


def budget_kind(records: Sequence[dict]) -> str | None:
    """"N" for vote records (stored samples), "T" for stepped records (stored steps), None for any other."""
    if records and all(r.get("vote") is not None and r.get("samples") for r in records):
        return "N"
    if records and any("steps" in r for r in records):
        return "T"
    return None


def budget_reach(records: Sequence[dict]) -> int:
    """The largest budget the records hold: the fewest stored samples (N), the longest horizon (T); 0 for none."""
    kind = budget_kind(records)
    if kind == "N":
        return min(len(r["samples"]) for r in records)
    if kind == "T":
        return max((r.get("search") or {}).get("t") or len(r.get("steps") or []) for r in records)
    return 0


def at_budget(records: Sequence[dict], budget: int) -> list[dict]:
    """The records as a smaller budget would have written them (copies; only ``mask_rle`` and ``parsed`` change).

    Vote records (N): the vote over the first ``budget`` stored samples. Stepped records (T): the first
    ``budget`` steps; a PRM search keeps the best-scoring of them (earliest on ties), as a search with
    T = ``budget`` would (its steps up to T do not depend on T), greedy stepping keeps the last. A record
    whose own budget (its N, its search's T) is no larger, and any other record, is returned as it is.
    """
    from seglib.masks import encode_rle

    kind = budget_kind(records)
    out = []
    for r in records:
        own = len(r["samples"]) if kind == "N" else ((r.get("search") or {}).get("t") or len(r.get("steps") or []))
        if budget >= own:
            out.append(r)
        elif kind == "N":
            parsed = any(s.get("parsed") for s in r["samples"][:budget])
            out.append({**r, "parsed": parsed, "mask_rle": encode_rle(vote_mask(r, budget)) if parsed else None})
        elif kind == "T" and r.get("parsed") and r.get("steps"):
            steps = r["steps"][:budget]
            i = (best_step_index([s.get("pred_iou") for s in steps])
                 if str(r["strategy"]).startswith(SEARCH_PREFIX) else len(steps) - 1)
            out.append({**r, "mask_rle": steps[i]["mask_rle"]})
        else:
            out.append(r)
    return out


# --------------------------------------------------------------------------- PRM search (SegAgent)


def search_k(strategy: str) -> int:
    """K of a ``prm_search_k<K>`` strategy; 0 for any other strategy."""
    tail = strategy.rsplit("_k", 1)[-1]
    return int(tail) if strategy.startswith(SEARCH_PREFIX + "_k") and tail.isdigit() else 0


def best_step_index(pred_ious: Sequence[float | None]) -> int:
    """0-based index of the step with the highest self-predicted IoU (earliest on ties; None ranks last)."""
    best, best_v = 0, -math.inf
    for i, v in enumerate(pred_ious):
        if v is not None and v > best_v:
            best, best_v = i, v
    return best


def search_metrics(records: Sequence[dict]) -> dict:
    """IoU versus the step budget t ≤ T (best-scoring step among the first t) and PRM calibration."""
    from seglib.metrics import calibration

    t_max = max((r.get("search") or {}).get("t", 0) or len(r.get("steps") or []) for r in records)
    k = (records[0].get("search") or {}).get("k")
    iou_vs_t = {}
    for split in splits_in_order(records):
        rs = [r for r in records if r["split"] == split]
        ts, gis, cis = [], [], []
        for t in range(1, max(t_max, 1) + 1):
            pairs = []
            for r in rs:
                steps = (r.get("steps") or [])[:t]
                if not steps or not r["parsed"]:
                    pairs.append((None, gt_mask(r)))
                    continue
                b = best_step_index([s.get("pred_iou") for s in steps])
                pairs.append((decode_rle(steps[b]["mask_rle"]), gt_mask(r)))
            s = meter_summary(pairs)
            ts.append(t)
            gis.append(s["giou"])
            cis.append(s["ciou"])
        iou_vs_t[split] = {"t": ts, "giou": gis, "ciou": cis}
    pred, true = calibration_pairs(records)
    return {
        "k": k,
        "t_max": t_max,
        "mean_steps": float(np.mean([len(r.get("steps") or []) for r in records])),
        "mean_best_step": float(np.mean([r.get("best_step") or 0 for r in records])),
        "iou_vs_t": iou_vs_t,
        "calibration": calibration(pred, true),
    }


def calibration_pairs(records: Sequence[dict]) -> tuple[list[float], list[float]]:
    """(self-predicted IoU, true IoU) for every scored candidate of every step (fractions)."""
    pred, true = [], []
    for r in records:
        for step in r.get("steps") or []:
            cands = step.get("candidates") or [step]
            for c in cands:
                if c.get("pred_iou") is not None and c.get("iou") is not None:
                    pred.append(float(c["pred_iou"]))
                    true.append(float(c["iou"]))
    return pred, true
