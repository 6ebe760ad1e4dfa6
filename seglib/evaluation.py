"""Evaluation from prediction files only: gIoU/cIoU, Acc@0.5, NoC, scaling curves, claims.

Reads ``<run_dir>/predictions/*.jsonl`` (schema in ``seglib.inference``) and
needs no model. Conventions (docs/METHODS.md, "Evaluation"; stated in every report):

* per-sample IoU = I / U; an unparsable answer counts as I = 0, U = |GT|;
* both masks empty counts as IoU 1 (StAR's rule); it adds 0 to ΣI and ΣU.
  An unparsable answer scores IoU 0 even for an empty query (``IoUMeter``);
  the parse rate is reported beside every score.
* gIoU = mean of per-sample IoUs; cIoU = ΣI / ΣU (``seglib.metrics.IoUMeter``);
* Acc@0.5 = share of single-target samples whose first predicted box has
  IoU ≥ 0.5 with the target's box (inclusive boxes; no box = miss);
* NoC@85/90 = clicks needed to reach that IoU, capped at 20
  (``seglib.metrics.noc``); IoU-versus-clicks carries the last mask forward
  when a trajectory stopped early.

All IoUs in ``metrics.json`` are fractions in [0, 1]; tables and the claims
show points (× 100).

``metrics.json`` schema (``METRICS_SCHEMA_VERSION`` = 1)
------------------------------------------------------
::

    {
      "schema_version": 1,
      "conventions": {name: sentence, ...},
      "predictions": {
        "<checkpoint>-<strategy>": {
          "checkpoint": str, "stage": "sft"|"grpo"|"star"|"base", "paradigm": str,
          "strategy": str, "file": "predictions/<name>.jsonl", "n": int, "parse_rate": float,
          "overall": {"giou", "ciou", "n"},
          "splits": {split: {"giou", "ciou", "n", "parse_rate",
                             "kinds": {kind: {"giou", "ciou", "n"}}}},
          "acc_at_05": {split: {"value", "n"}},                 # boxpoints; else {}
          "clicks": {split: {"noc85", "noc90", "n",
                             "iou_vs_clicks": [mIoU after click 1..T]}},   # clicks; else {}
          "vote_curve": {split: {"n": [..], "giou": [..], "ciou": [..]}},   # sample/vote; else {}
          "search": {"k": int, "t_max": int, "mean_steps": float, "mean_best_step": float,
                     "iou_vs_t": {split: {"t": [..], "giou": [..], "ciou": [..]}},
                     "calibration": {"mae", "pearson", "n"}}   # prm_search; else {}
        }, ...
      },
      "comparisons": [{"name", "paradigm", "split", "a", "b", "n", "giou_a", "giou_b",
                       "ciou_a", "ciou_b", "delta_giou", "delta_ciou", "ci95_giou": [lo, hi]}],
      "claims": [{"paper", "claim", "published", "measured", "split", "n",
                  "delta_giou", "delta_ciou", "ci95_giou", "verdict"}]
    }

``delta_*`` and ``ci95_giou`` are in IoU points (× 100), ``null`` where not
measured (the run lacks a side, or neither side parsed a single answer). ``ci95_giou`` is a paired bootstrap (1000 resamples of the shared
samples, seed 0).

Files written by ``evaluate_run``: ``metrics.json``; ``tables/results.md``
(paradigm × stage × strategy × split), ``tables/claims.md``,
``tables/comparisons.md``, ``tables/curves.md``; ``figures/07_giou_bars.png``,
``figures/07_iou_vs_n.png``, ``figures/07_iou_vs_t.png``,
``figures/07_iou_vs_clicks.png``, ``figures/07_calibration.png`` (each only
when the run has the data).
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seglib.inference import read_predictions
from seglib.masks import box_iou, decode_rle

METRICS_SCHEMA_VERSION = 1
CONVENTIONS = {
    "iou": "per-sample IoU = I/U; IoUs are fractions in [0, 1] in metrics.json, points (x100) in tables",
    "unparsable": "an unparsable answer counts as I = 0, U = |GT| (IoU 0, even for an empty query)",
    "both_empty": "an empty prediction for an empty target counts as IoU 1 (StAR's rule)",
    "giou": "mean of per-sample IoUs",
    "ciou": "sum of intersections / sum of unions",
    "acc_at_05": "share of single-target samples whose first predicted box has IoU >= 0.5 (inclusive boxes)",
    "noc": "clicks needed to reach IoU 0.85 / 0.90, capped at 20",
    "ci95": "paired bootstrap over shared samples, 1000 resamples, seed 0",
}
PREFERRED_SPLITS = ("test", "val", "validation", "train")
VOTE_NS = (1, 2, 4, 8, 16, 32, 64)


# --------------------------------------------------------------------------- per-sample scoring


@dataclass
class Scored:
    """One prediction record reduced to what the metrics need."""

    sample_id: str
    split: str
    kind: str
    intersection: int
    union: int
    iou: float
    parsed: bool


def _gt(rec: dict) -> np.ndarray:
    return decode_rle(rec["gt_rle"])


def _pred(rec: dict, key: str = "mask_rle") -> np.ndarray | None:
    if not rec.get("parsed", False) or rec.get(key) is None:
        return None
    return decode_rle(rec[key])


def intersection_union(pred: np.ndarray | None, gt: np.ndarray) -> tuple[int, int, float]:
    """(I, U, IoU) under docs/METHODS.md's conventions, by ``seglib.metrics.IoUMeter`` (the one IoU rule)."""
    from seglib.metrics import IoUMeter

    meter = IoUMeter()
    iou = meter.update(pred, gt)
    return meter.intersections[0], meter.unions[0], iou


def score_record(rec: dict, key: str = "mask_rle") -> Scored:
    i, u, iou = intersection_union(_pred(rec, key), _gt(rec))
    return Scored(rec["sample_id"], rec["split"], rec.get("kind", ""), i, u, iou, bool(rec.get("parsed")))


def _meter_summary(pairs: Sequence[tuple[np.ndarray | None, np.ndarray]]) -> dict:
    """gIoU / cIoU through ``seglib.metrics.IoUMeter`` (the single IoU rule of the project)."""
    from seglib.metrics import IoUMeter

    meter = IoUMeter()
    for pred, gt in pairs:
        meter.update(pred, gt)
    return {"giou": float(meter.giou), "ciou": float(meter.ciou), "n": len(pairs)}


def _summary_from_scored(scored: Sequence[Scored]) -> dict:
    n = len(scored)
    if n == 0:
        return {"giou": None, "ciou": None, "n": 0}
    su = sum(s.union for s in scored)
    return {
        "giou": float(np.mean([s.iou for s in scored])),
        "ciou": float(sum(s.intersection for s in scored) / su) if su else 1.0,
        "n": n,
    }


# --------------------------------------------------------------------------- one prediction file


def stage_of(checkpoint: str) -> str:
    """Training stage from the checkpoint folder name ``<stage>-<paradigm>[-<variant>]``.

    sft-*, grpo-*, star-* give "sft", "grpo", "star"; a variant is kept
    (``grpo-boxpoints-rlonly`` → "grpo-rlonly", RL from the base policy);
    anything else is "base".
    """
    parts = checkpoint.lower().split("-")
    if parts[0] not in ("sft", "grpo", "star"):
        return "base"
    return "-".join([parts[0], *parts[2:]])


def _splits_in_order(records: Sequence[dict]) -> list[str]:
    seen = list(dict.fromkeys(r["split"] for r in records))
    return sorted(seen, key=lambda s: (PREFERRED_SPLITS.index(s) if s in PREFERRED_SPLITS else 99, s))


def evaluate_records(records: Sequence[dict], name: str = "") -> dict:
    """The ``predictions[name]`` entry of metrics.json for one file's records."""
    if not records:
        raise ValueError(f"{name}: no prediction records")
    first = records[0]
    splits = _splits_in_order(records)
    entry: dict[str, Any] = {
        "checkpoint": first["checkpoint"],
        "stage": stage_of(first["checkpoint"]),
        "paradigm": first["paradigm"],
        "strategy": first["strategy"],
        "file": f"predictions/{name}.jsonl" if name else "",
        "n": len(records),
        "parse_rate": float(np.mean([bool(r["parsed"]) for r in records])),
    }
    pairs = [(_pred(r), _gt(r)) for r in records]
    entry["overall"] = _meter_summary(pairs)
    entry["splits"] = {}
    for split in splits:
        idx = [i for i, r in enumerate(records) if r["split"] == split]
        block = _meter_summary([pairs[i] for i in idx])
        block["parse_rate"] = float(np.mean([bool(records[i]["parsed"]) for i in idx]))
        kinds = {}
        for kind in sorted({records[i]["kind"] for i in idx}):
            kinds[kind] = _meter_summary([pairs[i] for i in idx if records[i]["kind"] == kind])
        block["kinds"] = kinds
        entry["splits"][split] = block
    entry["acc_at_05"] = _acc_at_05(records, splits) if first["paradigm"] == "boxpoints" else {}
    entry["clicks"] = _clicks_metrics(records, splits) if any(r.get("steps") for r in records) else {}
    entry["vote_curve"] = vote_curve(records) if any(r.get("samples") for r in records) else {}
    entry["search"] = search_metrics(records) if str(first["strategy"]).startswith("prm_search") else {}
    return entry


def _acc_at_05(records: Sequence[dict], splits: Sequence[str]) -> dict:
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
    return out


def box_hits(pred_boxes: Sequence[Sequence[float] | None], gt_boxes: Sequence[Sequence[float]]) -> list[bool]:
    """Per-sample Acc@0.5 hits (inclusive boxes; a missing box is a miss)."""
    return [p is not None and box_iou(p, g) >= 0.5 for p, g in zip(pred_boxes, gt_boxes)]


def step_ious(rec: dict, t_max: int | None = None) -> list[float]:
    """True IoU after each click of a clicks record, the last carried forward to ``t_max``."""
    gt = _gt(rec)
    ious = []
    for step in rec.get("steps") or []:
        m = decode_rle(step["mask_rle"]) if step.get("mask_rle") is not None else None
        ious.append(intersection_union(m, gt)[2] if m is not None else (ious[-1] if ious else 0.0))
    if t_max is not None:
        if not ious:
            ious = [intersection_union(None, gt)[2]]
        ious = (ious + [ious[-1]] * t_max)[:t_max]
    return ious


def _clicks_metrics(records: Sequence[dict], splits: Sequence[str]) -> dict:
    from seglib.metrics import noc

    t_max = max(len(r.get("steps") or []) for r in records) or 1
    out = {}
    for split in splits:
        rs = [r for r in records if r["split"] == split]
        curves = [step_ious(r, t_max) for r in rs]
        out[split] = {
            "noc85": float(np.mean([noc(c, 0.85, max_clicks=20) for c in curves])),
            "noc90": float(np.mean([noc(c, 0.90, max_clicks=20) for c in curves])),
            "n": len(rs),
            "iou_vs_clicks": [float(v) for v in np.mean(np.asarray(curves, float), axis=0)],
        }
    return out


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
    from seglib.voting import majority_vote

    n_max = min(len(r.get("samples") or []) for r in records)
    grid = sorted({n for n in ns if n <= n_max} | ({n_max} if n_max else set()))
    out = {}
    for split in _splits_in_order(records):
        rs = [r for r in records if r["split"] == split]
        gis, cis = [], []
        for n in grid:
            pairs = []
            for r in rs:
                masks, scores = _sample_masks(r)
                opts = {k: v for k, v in (r.get("vote") or {}).items()
                        if k in ("iou_thr", "min_vote_ratio", "aggregate")}
                chosen = majority_vote(masks[:n], scores[:n], **opts)
                pred = np.zeros((r["height"], r["width"]), bool)
                for m in chosen:
                    pred |= np.asarray(m, bool)
                pairs.append((pred, _gt(r)))
            s = _meter_summary(pairs)
            gis.append(s["giou"])
            cis.append(s["ciou"])
        out[split] = {"n": grid, "giou": gis, "ciou": cis}
    return out


# --------------------------------------------------------------------------- PRM search (SegAgent)


def best_step_index(pred_ious: Sequence[float | None]) -> int:
    """0-based index of the step with the highest self-predicted IoU (earliest on ties; None ranks last)."""
    best, best_v = 0, -math.inf
    for i, v in enumerate(pred_ious):
        if v is not None and v > best_v:
            best, best_v = i, v
    return best


def search_metrics(records: Sequence[dict]) -> dict:
    """IoU versus the step budget t ≤ T (best-scoring step among the first t) and PRM calibration."""
    from seglib.search import calibration

    t_max = max((r.get("search") or {}).get("t", 0) or len(r.get("steps") or []) for r in records)
    k = (records[0].get("search") or {}).get("k")
    iou_vs_t = {}
    for split in _splits_in_order(records):
        rs = [r for r in records if r["split"] == split]
        ts, gis, cis = [], [], []
        for t in range(1, max(t_max, 1) + 1):
            pairs = []
            for r in rs:
                steps = (r.get("steps") or [])[:t]
                if not steps or not r["parsed"]:
                    pairs.append((None, _gt(r)))
                    continue
                b = best_step_index([s.get("pred_iou") for s in steps])
                pairs.append((decode_rle(steps[b]["mask_rle"]), _gt(r)))
            s = _meter_summary(pairs)
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


# --------------------------------------------------------------------------- paired comparisons


def paired_delta(a: Sequence[dict], b: Sequence[dict], split: str, n_boot: int = 1000, seed: int = 0) -> dict:
    """b − a on the samples both files hold in ``split``: gIoU/cIoU in points, with a bootstrap CI."""
    sa = {r["sample_id"]: score_record(r) for r in a if r["split"] == split}
    sb = {r["sample_id"]: score_record(r) for r in b if r["split"] == split}
    ids = sorted(set(sa) & set(sb))
    if not ids:
        return {"n": 0, "giou_a": None, "giou_b": None, "ciou_a": None, "ciou_b": None,
                "delta_giou": None, "delta_ciou": None, "ci95_giou": None}
    ia = np.array([sa[i].iou for i in ids])
    ib = np.array([sb[i].iou for i in ids])
    ua = _summary_from_scored([sa[i] for i in ids])
    ub = _summary_from_scored([sb[i] for i in ids])
    rng = np.random.default_rng(seed)
    diffs = ib - ia
    boot = diffs[rng.integers(0, len(ids), size=(n_boot, len(ids)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "n": len(ids),
        "giou_a": ua["giou"], "giou_b": ub["giou"], "ciou_a": ua["ciou"], "ciou_b": ub["ciou"],
        "delta_giou": 100.0 * float(diffs.mean()),
        "delta_ciou": 100.0 * (ub["ciou"] - ua["ciou"]),
        "ci95_giou": [100.0 * float(lo), 100.0 * float(hi)],
    }


def main_split(records_by_name: dict[str, list[dict]]) -> str | None:
    splits = {r["split"] for rs in records_by_name.values() for r in rs}
    if not splits:
        return None
    return sorted(splits, key=lambda s: (PREFERRED_SPLITS.index(s) if s in PREFERRED_SPLITS else 99, s))[0]


def _k_of(strategy: str) -> int:
    tail = strategy.rsplit("_k", 1)[-1]
    return int(tail) if strategy.startswith("prm_search_k") and tail.isdigit() else 0


def _find(entries: dict, paradigm: str, stage: str, strategy: str) -> str | None:
    """The entry of (paradigm, stage, strategy); strategy "prm_search_kmax" is the largest K > 1."""
    if strategy == "prm_search_kmax":
        cands = [(_k_of(e["strategy"]), n) for n, e in entries.items()
                 if e["paradigm"] == paradigm and e["stage"] == stage and _k_of(e["strategy"]) > 1]
        return max(cands)[1] if cands else None
    for name, e in entries.items():
        if e["paradigm"] == paradigm and e["stage"] == stage and e["strategy"] == strategy:
            return name
    return None


def comparisons(entries: dict, records_by_name: dict[str, list[dict]], split: str) -> list[dict]:
    """Every paired comparison the run supports: training stages and inference strategies."""
    pairs: list[tuple[str, str, str | None, str | None]] = []
    for paradigm in sorted({e["paradigm"] for e in entries.values()}):
        pairs.append((f"grpo vs sft ({paradigm}, greedy)", paradigm,
                      _find(entries, paradigm, "sft", "greedy"), _find(entries, paradigm, "grpo", "greedy")))
        pairs.append((f"grpo-rlonly vs sft ({paradigm}, greedy)", paradigm,
                      _find(entries, paradigm, "sft", "greedy"), _find(entries, paradigm, "grpo-rlonly", "greedy")))
        if paradigm == "clicks":
            pairs.append(("star vs sft (clicks, greedy)", paradigm,
                          _find(entries, paradigm, "sft", "greedy"), _find(entries, paradigm, "star", "greedy")))
        for name, e in entries.items():
            if e["paradigm"] != paradigm or e["strategy"] == "greedy":
                continue
            base = _find(entries, paradigm, e["stage"], "greedy")
            pairs.append((f"{e['strategy']} vs greedy ({e['checkpoint']})", paradigm, base, name))
        k_names = sorted((n for n, e in entries.items() if e["paradigm"] == paradigm
                          and e["strategy"].startswith("prm_search")), key=lambda n: entries[n]["strategy"])
        for lo in k_names:
            for hi in k_names:
                if entries[lo]["checkpoint"] == entries[hi]["checkpoint"] and \
                        (entries[lo]["search"].get("k") or 0) < (entries[hi]["search"].get("k") or 0):
                    pairs.append((f"{entries[hi]['strategy']} vs {entries[lo]['strategy']} "
                                  f"({entries[lo]['checkpoint']})", paradigm, lo, hi))
    out = []
    for cname, paradigm, a, b in pairs:
        if a is None or b is None:
            continue
        d = paired_delta(records_by_name[a], records_by_name[b], split)
        out.append({"name": cname, "paradigm": paradigm, "split": split, "a": a, "b": b, **d})
    return out


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    paper: str
    claim: str
    published: str  # docs/METHODS.md's words and figures, full scale
    paradigm: str
    a: tuple[str, str]  # (stage, strategy) of the baseline; stage "*" = best available
    b: tuple[str, str]
    needs: str  # what the run lacks when not measured
    splits: tuple[str, ...] = ("test",)  # preferred splits, best match to the paper's benchmark first


CLAIMS = (
    Claim("Seg-Zero", "RL (GRPO) on box + points beats the same model without RL",
          "published: ReasonSeg test gIoU/cIoU 47.6/37.4 (Qwen2.5-VL-3B + SAM2, no RL) → 56.1/48.6 "
          "(Seg-Zero-3B), i.e. +8.5/+11.2",
          "boxpoints", ("sft", "greedy"), ("grpo", "greedy"), "sft-boxpoints and grpo-boxpoints greedy predictions",
          ("test_reasoning", "test")),
    Claim("VisionReasoner", "multi-object rewards (Hungarian matching) beat Seg-Zero's single-object rewards",
          "published: ReasonSeg test gIoU/cIoU 57.5/52.0 (Seg-Zero-7B) → 63.6/55.7 (VisionReasoner-7B)",
          "boxpoints", ("", ""), ("", ""), "two GRPO checkpoints trained with each reward", ("test_reasoning", "test")),
    Claim("StAR", "mask majority voting over N samples beats a single answer",
          "published: ReasonSeg test gIoU/cIoU 67.5/61.3 → 68.5/65.0 (StAR-7B, N = 32), i.e. +1.0/+3.7",
          "boxpoints", ("*", "greedy"), ("*", "vote"), "a boxpoints checkpoint with greedy and vote predictions",
          ("test_reasoning", "test")),
    Claim("SegAgent", "PRM-guided stopping (tree search, K = 1) beats plain greedy clicking",
          "published: +2.4 (DIS) / +4.1 (ThinObject) mIoU on HRES with K = 1",
          "clicks", ("*", "greedy"), ("*", "prm_search_k1"),
          "clicks greedy and prm_search_k1 predictions (PRM search needs a clicks policy trained in PRM format)"),
    Claim("SegAgent", "more candidates per step (K > 1; the paper's K = 3) beat K = 1",
          "published: a further +7.4 (DIS) / +10.6 (ThinObject) mIoU on HRES with K = 3",
          "clicks", ("*", "prm_search_k1"), ("*", "prm_search_kmax"),
          "prm_search_k1 and prm_search_kK predictions for some K of 2 or more (PRM search needs a clicks policy "
          "trained in PRM format)"),
    Claim("SegAgent", "StaR+ policy improvement beats the SFT policy",
          "published: StaR+ improves over SFT (direction only; docs/METHODS.md gives no figure)",
          "clicks", ("sft", "greedy"), ("star", "greedy"), "sft-clicks and star-clicks greedy predictions"),
    Claim("SimpleSeg", "RL (GSPO/GRPO) on polygons beats SFT alone",
          "published: +9.7 to +10.5 gIoU from RL over SFT (SFT alone about 60-65.5 gIoU)",
          "polygon", ("sft", "greedy"), ("grpo", "greedy"), "sft-polygon and grpo-polygon greedy predictions"),
)


def verdict(delta: float | None, ci: Sequence[float] | None) -> str:
    """Plain words on the direction of a measured delta (points) against a published gain."""
    if delta is None:
        return "not measured"
    if abs(delta) < 1e-9:
        return "not reproduced: no change"
    if delta < 0:
        if ci is not None and ci[1] < 0:
            return "not reproduced: opposite direction (95% CI below 0)"
        return "not reproduced: opposite direction, within noise (95% CI includes 0)"
    if ci is not None and ci[0] > 0:
        return "reproduced: same direction (95% CI above 0)"
    return "same direction, within noise (95% CI includes 0)"


def _resolve(entries: dict, paradigm: str, stage: str, strategy: str, other: tuple[str, str]) -> str | None:
    if not strategy:
        return None
    if stage != "*":
        return _find(entries, paradigm, stage, strategy)
    # best available stage that has both strategies (same checkpoint on both sides)
    for st in ("star", "grpo", "sft", "base"):
        if _find(entries, paradigm, st, strategy) and _find(entries, paradigm, st, other[1]):
            return _find(entries, paradigm, st, strategy)
    return None


def claims_table(entries: dict, records_by_name: dict[str, list[dict]], split: str | None) -> list[dict]:
    """Each paper's headline claim beside the run's measured delta, with a verdict."""
    rows = []
    for c in CLAIMS:
        a = _resolve(entries, c.paradigm, c.a[0], c.a[1], c.b)
        b = _resolve(entries, c.paradigm, c.b[0], c.b[1], c.a)
        if a and b and c.a[0] == "*" and entries[a]["checkpoint"] != entries[b]["checkpoint"]:
            b = None
        where = split
        if a and b:
            shared = {r["split"] for r in records_by_name[a]} & {r["split"] for r in records_by_name[b]}
            where = next((sp for sp in c.splits if sp in shared), split if split in shared else None)
        row = {"paper": c.paper, "claim": c.claim, "published": c.published, "split": where,
               "n": 0, "delta_giou": None, "delta_ciou": None, "ci95_giou": None}
        if a is None or b is None or where is None:
            row["measured"] = f"not measured: the run lacks {c.needs}"
        else:
            d = paired_delta(records_by_name[a], records_by_name[b], where)
            row.update({k: d[k] for k in ("n", "delta_giou", "delta_ciou", "ci95_giou")})
            parsed = [sum(bool(r["parsed"]) for r in records_by_name[x] if r["split"] == where) for x in (a, b)]
            if d["n"] == 0:
                row["measured"] = f"not measured: {a} and {b} share no {where} samples"
            elif parsed == [0, 0]:
                row.update(n=d["n"], delta_giou=None, delta_ciou=None, ci95_giou=None)
                row["measured"] = (f"not measured: neither {a} nor {b} wrote a parsable answer on {where} "
                                   f"(n = {d['n']}), so the comparison says nothing")
            else:
                row["measured"] = (f"{b} vs {a} on {where} (n = {d['n']}): "
                                   f"{d['delta_giou']:+.1f} gIoU / {d['delta_ciou']:+.1f} cIoU points")
        row["verdict"] = verdict(row["delta_giou"], row["ci95_giou"])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the whole run


def load_run_predictions(run_dir: str | Path) -> dict[str, list[dict]]:
    """``{"<checkpoint>-<strategy>": records}`` for every non-empty prediction file of the run."""
    out = {}
    for path in sorted((Path(run_dir) / "predictions").glob("*.jsonl")):
        recs = read_predictions(path)
        if recs:
            out[path.stem] = recs
    return out


def evaluate_run(run_dir: str | Path, write: bool = True, figures: bool = True) -> dict:
    """Compute metrics.json for a run from its prediction files; write it, the tables and figures."""
    run_dir = Path(run_dir)
    records_by_name = load_run_predictions(run_dir)
    entries = {name: evaluate_records(recs, name) for name, recs in records_by_name.items()}
    split = main_split(records_by_name)
    metrics = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "conventions": dict(CONVENTIONS),
        "predictions": entries,
        "comparisons": comparisons(entries, records_by_name, split) if split else [],
        "claims": claims_table(entries, records_by_name, split),
    }
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=False) + "\n")
        write_tables(metrics, run_dir)
        if figures:
            plot_figures(metrics, run_dir, records_by_name)
    return metrics


# --------------------------------------------------------------------------- tables


def md_cell(text: Any) -> str:
    """Text safe inside a markdown table cell: ``&``, ``<``, ``>`` as HTML entities (a notebook renders
    markdown as HTML, so a raw ``<K > 1>`` would vanish as a tag), ``|`` escaped, line breaks as spaces."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return " ".join(out.split())


def _pts(v: float | None) -> str:
    return "—" if v is None else f"{100.0 * v:.1f}"


def _d(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1f}"


STAGE_ORDER = {"base": 0, "sft": 1, "grpo-rlonly": 2, "grpo": 3, "star": 4}


def results_table(metrics: dict) -> str:
    """Markdown: one row per paradigm × stage × strategy × split."""
    lines = [
        "| paradigm | stage | strategy | split | n | gIoU | cIoU | parsed | Acc@0.5 | NoC@85 | NoC@90 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    entries = metrics["predictions"]
    order = sorted(entries, key=lambda n: (entries[n]["paradigm"], STAGE_ORDER.get(entries[n]["stage"], 9),
                                           entries[n]["strategy"]))
    for name in order:
        e = entries[name]
        for split, s in e["splits"].items():
            acc = e["acc_at_05"].get(split, {}).get("value")
            clk = e["clicks"].get(split, {})
            noc85 = f"{clk['noc85']:.2f}" if clk else "—"
            noc90 = f"{clk['noc90']:.2f}" if clk else "—"
            lines.append(f"| {md_cell(e['paradigm'])} | {md_cell(e['stage'])} | {md_cell(e['strategy'])} | "
                         f"{md_cell(split)} | {s['n']} | "
                         f"{_pts(s['giou'])} | {_pts(s['ciou'])} | {100 * s['parse_rate']:.0f}% | "
                         f"{_pts(acc)} | {noc85} | {noc90} |")
    return "\n".join(lines) + "\n"


def claims_markdown(rows: Sequence[dict]) -> str:
    lines = ["| paper | claim | published (full scale, docs/METHODS.md) | this run | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(md_cell(r[k]) for k in ("paper", "claim", "published", "measured", "verdict"))
                     + " |")
    return "\n".join(lines) + "\n"


def comparisons_markdown(rows: Sequence[dict]) -> str:
    lines = ["| comparison | split | n | gIoU a → b | cIoU a → b | ΔgIoU | ΔcIoU | 95% CI ΔgIoU |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = "—" if r["ci95_giou"] is None else f"[{r['ci95_giou'][0]:+.1f}, {r['ci95_giou'][1]:+.1f}]"
        lines.append(f"| {md_cell(r['name'])} | {md_cell(r['split'])} | {r['n']} | {_pts(r['giou_a'])} → {_pts(r['giou_b'])} | "
                     f"{_pts(r['ciou_a'])} → {_pts(r['ciou_b'])} | {_d(r['delta_giou'])} | "
                     f"{_d(r['delta_ciou'])} | {ci} |")
    return "\n".join(lines) + "\n"


def curves_markdown(metrics: dict) -> str:
    out = []
    for name, e in metrics["predictions"].items():
        for split, c in e["vote_curve"].items():
            out.append(f"**{name}** voting, {split}: " + ", ".join(
                f"N={n}: {_pts(g)}/{_pts(ci)}" for n, g, ci in zip(c["n"], c["giou"], c["ciou"])))
        if e["search"]:
            for split, c in e["search"]["iou_vs_t"].items():
                out.append(f"**{name}** search (K={e['search']['k']}), {split}: " + ", ".join(
                    f"T={t}: {_pts(g)}" for t, g in zip(c["t"], c["giou"])))
            cal = e["search"]["calibration"]
            if cal["n"]:
                r = "n/a (a constant side)" if cal["pearson"] is None else f"{cal['pearson']:.2f}"
                out.append(f"**{name}** PRM calibration: MAE {100 * cal['mae']:.1f} IoU points, "
                           f"Pearson {r} (n = {cal['n']})")
        for split, c in e["clicks"].items():
            out.append(f"**{name}** IoU vs clicks, {split}: " + ", ".join(
                f"{t + 1}: {_pts(v)}" for t, v in enumerate(c["iou_vs_clicks"])))
    header = "gIoU/cIoU in points. " + CONVENTIONS["both_empty"] + "; " + CONVENTIONS["unparsable"] + ".\n\n"
    return header + ("\n\n".join(out) if out else "(no curves: the run has no sample, vote, search or clicks predictions)") + "\n"


def write_tables(metrics: dict, run_dir: str | Path) -> list[Path]:
    """Write tables/results.md, claims.md, comparisons.md and curves.md (table cells through ``md_cell``)."""
    tables = Path(run_dir) / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    note = (f"Conventions: {CONVENTIONS['both_empty']}; {CONVENTIONS['unparsable']}. "
            "IoUs in points (x100).\n\n")
    files = {
        "results.md": "# Results: paradigm × stage × strategy × split\n\n" + note + results_table(metrics),
        "claims.md": "# The papers' claims beside this run\n\nPublished figures are full-scale results quoted from "
                     "docs/METHODS.md; this run's deltas are paired differences (points) on its own data and scale, so only "
                     "the direction is comparable.\n\n" + claims_markdown(metrics["claims"]),
        "comparisons.md": "# Paired comparisons (b − a)\n\n" + note + comparisons_markdown(metrics["comparisons"]),
        "curves.md": "# Scaling curves\n\n" + curves_markdown(metrics),
    }
    paths = []
    for fname, text in files.items():
        p = tables / fname
        p.write_text(text)
        paths.append(p)
    return paths


# --------------------------------------------------------------------------- figures


def plot_figures(metrics: dict, run_dir: str | Path, records_by_name: dict | None = None) -> list[Path]:
    """Bar chart of gIoU/cIoU, IoU-vs-N, IoU-vs-T, IoU-vs-clicks and the PRM calibration scatter."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from matplotlib.lines import Line2D

    from seglib.viz import distinct_colors, legend_outside, line_styles

    figdir = Path(run_dir) / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    entries = metrics["predictions"]
    written = []

    def save(fig, name):
        p = figdir / name
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(p)

    if entries:
        names = sorted(entries, key=lambda n: (entries[n]["paradigm"], STAGE_ORDER.get(entries[n]["stage"], 9),
                                               entries[n]["strategy"]))
        splits = list(dict.fromkeys(s for n in names for s in entries[n]["splits"]))
        fig, axes = plt.subplots(1, 2, figsize=(max(6, 0.9 * len(names) + 3), 3.8), squeeze=False)
        width = 0.8 / max(len(splits), 1)
        for ax, metric in zip(axes[0], ("giou", "ciou")):
            for j, (split, colour) in enumerate(zip(splits, distinct_colors(len(splits)))):
                vals = [100 * (entries[n]["splits"].get(split, {}).get(metric) or 0) for n in names]
                ax.bar(np.arange(len(names)) + j * width, vals, width, label=split, color=colour)
            ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=60, ha="right", fontsize=7)
            ax.set_xlabel("prediction file (checkpoint-strategy)")
            ax.set_ylabel(f"{'gIoU' if metric == 'giou' else 'cIoU'} (points)")
            ax.set_ylim(0, 100)
            ax.legend(fontsize=7)
        fig.suptitle("Paradigm × stage × strategy")
        save(fig, "07_giou_bars.png")

    vote = {n: e["vote_curve"] for n, e in entries.items() if e["vote_curve"]}
    if vote:
        # one colour per file and split; the metric is the line style, explained in a second, small legend
        fig, ax = plt.subplots(figsize=(6, 3.5))
        runs = [(n, split, c) for n, curves in vote.items() for split, c in curves.items()]
        run_handles = []
        for (n, split, c), colour in zip(runs, distinct_colors(len(runs))):
            ax.plot(c["n"], [100 * v for v in c["giou"]], "o-", color=colour)
            ax.plot(c["n"], [100 * v for v in c["ciou"]], "s--", color=colour)
            run_handles.append(Line2D([], [], color=colour, marker="o", label=f"{n} ({split})"))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("samples N")
        ax.set_ylabel("IoU (points)")
        ax.set_title("Majority voting: IoU vs N (StAR)")
        metric_legend = ax.legend(handles=[Line2D([], [], color="black", marker="o", ls="-", label="gIoU"),
                                           Line2D([], [], color="black", marker="s", ls="--", label="cIoU")],
                                  loc="lower left", bbox_to_anchor=(1.02, 0.0), borderaxespad=0.0, fontsize=7,
                                  title="metric")
        ax.add_artist(metric_legend)
        ax.legend(handles=run_handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7,
                  ncol=(len(run_handles) + 11) // 12, title="file (split)")
        save(fig, "07_iou_vs_n.png")

    search = {n: e for n, e in entries.items() if e["search"]}
    clicks = {n: e for n, e in entries.items() if e["clicks"] and not e["search"]}
    if search:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        lines = [(n, split, c["t"], c["giou"], "with PRM") for n, e in search.items()
                 for split, c in e["search"]["iou_vs_t"].items()]
        lines += [(n, split, list(range(1, len(c["iou_vs_clicks"]) + 1)), c["iou_vs_clicks"], "last step, no PRM")
                  for n, e in clicks.items() for split, c in e["clicks"].items()]
        for (n, split, ts, ys, how), style in zip(lines, line_styles(len(lines))):
            if how != "with PRM":
                style = {**style, "linestyle": "--"}
            ax.plot(ts, [100 * v for v in ys], label=f"{n} ({split}), {how}", **style)
        ax.set_xlabel("steps T")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("gIoU (points)")
        ax.set_title("PRM tree search: IoU vs T and K (SegAgent)")
        legend_outside(ax)
        save(fig, "07_iou_vs_t.png")
    if clicks:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        lines = [(n, split, c) for n, e in clicks.items() for split, c in e["clicks"].items()]
        for (n, split, c), style in zip(lines, line_styles(len(lines))):
            ax.plot(range(1, len(c["iou_vs_clicks"]) + 1), [100 * v for v in c["iou_vs_clicks"]],
                    label=f"{n} ({split})", **style)
        for thr in (85, 90):
            ax.axhline(thr, color="grey", lw=0.6, ls=":")
        ax.set_xlabel("clicks")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("mIoU (points)")
        ax.set_title("IoU vs clicks")
        legend_outside(ax)
        save(fig, "07_iou_vs_clicks.png")
    pairs = {n: calibration_pairs(records_by_name[n]) for n in search} if records_by_name else {}
    if any(p for p, _ in pairs.values()):
        fig, ax = plt.subplots(figsize=(4, 4))
        for (n, (pred, true)), colour in zip(pairs.items(), distinct_colors(len(pairs))):
            if pred:
                ax.scatter(np.array(true) * 100, np.array(pred) * 100, s=8, alpha=0.5, label=n, color=colour)
        ax.plot([0, 100], [0, 100], color="grey", lw=0.8)
        ax.set_xlabel("true IoU (points)")
        ax.set_ylabel("self-predicted IoU (points)")
        ax.set_title("PRM calibration")
        legend_outside(ax)
        save(fig, "07_calibration.png")
    return written


# --------------------------------------------------------------------------- galleries for notebook 06


CLUSTER_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
                   (240, 50, 230), (210, 245, 60))


def hardest(records: Sequence[dict], n: int) -> list[dict]:
    """The ``n`` records with the lowest IoU (ties by sample id)."""
    scored = sorted(records, key=lambda r: (score_record(r).iou, r["sample_id"]))
    return scored[:n]


def plot_vote_gallery(records: Sequence[dict], images: dict[str, np.ndarray], n: int = 6,
                      queries: dict[str, str] | None = None):
    """Hard cases of a vote file: each cluster's mask outlined in its colour, with votes; chosen ones filled.

    ``images`` maps sample id → uint8 RGB image (records without one are
    skipped); ``queries`` maps sample id → the query text shown over each
    panel (the sample id where missing). The ground truth is a white line over
    a black one, so it shows on white objects too. The title names the
    checkpoint and strategy. Returns the figure.
    """
    import textwrap

    import cv2
    import matplotlib.pyplot as plt

    from seglib.viz import outline

    queries = queries or {}
    picked = hardest([r for r in records if r.get("vote") and r["sample_id"] in images], n)
    cols = max(1, len(picked))
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.9), squeeze=False)
    for ax in axes[0]:
        ax.set_axis_off()
    for ax, r in zip(axes[0], picked):
        img = images[r["sample_id"]].copy()
        labels = []
        for ci, c in enumerate(r["vote"]["clusters"]):
            colour = CLUSTER_COLOURS[ci % len(CLUSTER_COLOURS)]
            m = decode_rle(c["rle"])
            if c["chosen"]:
                img[m] = (0.5 * img[m] + 0.5 * np.array(colour)).astype(np.uint8)
            cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(img, cs, -1, colour, 1)
            labels.append(f"{c['votes']}{'*' if c['chosen'] else ''}")
        ax.imshow(img, interpolation="nearest")
        outline(ax, _gt(r))  # ground truth on top
        iou = score_record(r).iou
        empty = ", empty majority" if r["vote"]["empty"] else ""
        query = queries.get(r["sample_id"], r["sample_id"])
        query = textwrap.shorten(" ".join(str(query).split()), 70, placeholder="…")
        ax.set_title("\n".join(textwrap.wrap(f"“{query}”", 38)[:2]) + f"\n[{r['kind']}] IoU {100 * iou:.0f}; "
                     f"votes/cluster {' '.join(labels) or '—'} of {r['vote']['n']}{empty}", fontsize=7)
    name = f"{records[0]['checkpoint']} ({records[0]['strategy']})" if records else ""
    fig.suptitle(f"Majority voting on hard cases, {name}\n"
                 "white over black: ground truth; * chosen cluster, filled", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    return fig


def plot_search_strip(record: dict, image: np.ndarray):
    """One PRM search path: a column per step, a row per candidate; predicted / true IoU; chosen boxed."""
    import matplotlib.pyplot as plt

    from seglib.masks import overlay

    steps = record.get("steps") or []
    k = max((len(s.get("candidates") or [s]) for s in steps), default=1)
    fig, axes = plt.subplots(k, max(len(steps), 1), figsize=(2.2 * max(len(steps), 1), 2.4 * k), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for j, s in enumerate(steps):
        for i, c in enumerate(s.get("candidates") or [s]):
            ax = axes[i, j]
            m = decode_rle(c["mask_rle"]) if c.get("mask_rle") else np.zeros(image.shape[:2], bool)
            ax.imshow(overlay(image, m))
            if c.get("click"):
                x, y, pos = c["click"]
                ax.plot(x, y, "o", color="lime" if pos else "red", ms=5, mec="black")
            pi = "—" if c.get("pred_iou") is None else f"{100 * c['pred_iou']:.0f}"
            ti = "—" if c.get("iou") is None else f"{100 * c['iou']:.0f}"
            chosen = i == s.get("chosen", 0)
            best = j + 1 == record.get("best_step")
            ax.set_title(f"t{j + 1} c{i}: pred {pi} / true {ti}{' (best)' if chosen and best else ''}", fontsize=7,
                         color="blue" if chosen else "black")
            if chosen:
                for side in ax.spines.values():
                    side.set_visible(True)
                    side.set_edgecolor("blue")
                    side.set_linewidth(2)
                ax.set_axis_on()
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(f"PRM search, {record['checkpoint']} {record['strategy']} on {record['sample_id']}: "
                 f"stopped by {record.get('stopped_by')}, best step {record.get('best_step')}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
