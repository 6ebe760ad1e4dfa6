"""Scoring prediction records: per-sample I/U, gIoU/cIoU per split and query kind, paradigm extras.

Conventions (docs/METHODS.md, "Evaluation"; ``CONVENTIONS`` is stated in every report):

* per-sample IoU = I / U; an unparsable answer counts as I = 0, U = |GT|;
* both masks empty counts as IoU 1 (StAR's rule); it adds 0 to ΣI and ΣU.
  An unparsable answer scores IoU 0 even for an empty query (``IoUMeter``);
  the parse rate is reported beside every score.
* gIoU = mean of per-sample IoUs; cIoU = ΣI / ΣU (``seglib.metrics.IoUMeter``, the one IoU rule).

Metrics beyond gIoU/cIoU come from the records' paradigm
(``Paradigm.extra_metrics``: Acc@0.5 for box answers, NoC and IoU-versus-clicks
for stepped ones) and from the strategy (``seglib.evaluation.curves``). Every
entry carries every registered paradigm's extra keys, ``{}`` where its own
paradigm gives none, so the metrics.json schema does not depend on the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seglib import paradigms
from seglib.masks import decode_rle
from seglib.metrics import IoUMeter

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
#: Keys of an entry that every prediction file has; the others are paradigm extras.
BASE_KEYS = ("checkpoint", "stage", "paradigm", "strategy", "file", "n", "parse_rate", "overall", "splits")
#: Keys of an entry computed per strategy (``seglib.evaluation.curves.strategy_metrics``), after the extras.
STRATEGY_KEYS = ("vote_curve", "search")


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


def gt_mask(rec: dict) -> np.ndarray:
    """The record's ground truth (union of the targets), bool (H, W)."""
    return decode_rle(rec["gt_rle"])


def pred_mask(rec: dict, key: str = "mask_rle") -> np.ndarray | None:
    """The record's predicted mask, or None when the answer did not parse (or has no mask)."""
    if not rec.get("parsed", False) or rec.get(key) is None:
        return None
    return decode_rle(rec[key])


def intersection_union(pred: np.ndarray | None, gt: np.ndarray) -> tuple[int, int, float]:
    """(I, U, IoU) under docs/METHODS.md's conventions, by ``seglib.metrics.IoUMeter`` (the one IoU rule)."""
    meter = IoUMeter()
    iou = meter.update(pred, gt)
    return meter.intersections[0], meter.unions[0], iou


def score_record(rec: dict, key: str = "mask_rle") -> Scored:
    i, u, iou = intersection_union(pred_mask(rec, key), gt_mask(rec))
    return Scored(rec["sample_id"], rec["split"], rec.get("kind", ""), i, u, iou, bool(rec.get("parsed")))


def meter_summary(pairs: Sequence[tuple[np.ndarray | None, np.ndarray]]) -> dict:
    """gIoU / cIoU of (prediction, ground truth) pairs through ``IoUMeter``."""
    meter = IoUMeter()
    for pred, gt in pairs:
        meter.update(pred, gt)
    return {"giou": float(meter.giou), "ciou": float(meter.ciou), "n": len(pairs)}


def summary_from_scored(scored: Sequence[Scored]) -> dict:
    """gIoU / cIoU of already scored records (None for no records)."""
    if not scored:
        return {"giou": None, "ciou": None, "n": 0}
    meter = IoUMeter(intersections=[s.intersection for s in scored], unions=[s.union for s in scored],
                     per_sample=[s.iou for s in scored])
    return {"giou": meter.giou, "ciou": meter.ciou, "n": len(scored)}


def stage_of(checkpoint: str) -> str:
    """Training stage from the checkpoint folder name ``<stage>-<paradigm>[-<variant>]``.

    sft-*, grpo-*, star-* give "sft", "grpo", "star"; a variant is kept
    (``grpo-<paradigm>-rlonly`` → "grpo-rlonly", RL from the base policy);
    anything else is "base".
    """
    parts = checkpoint.lower().split("-")
    if parts[0] not in ("sft", "grpo", "star"):
        return "base"
    return "-".join([parts[0], *parts[2:]])


def splits_in_order(records: Sequence[dict]) -> list[str]:
    """The records' splits, preferred ones (``PREFERRED_SPLITS``) first, then alphabetically."""
    seen = list(dict.fromkeys(r["split"] for r in records))
    return sorted(seen, key=lambda s: (PREFERRED_SPLITS.index(s) if s in PREFERRED_SPLITS else 99, s))


# --------------------------------------------------------------------------- paradigm extras


def extra_keys() -> list[str]:
    """The extra metric keys of every registered paradigm, in registry order (each ``extra_metrics([], [])``)."""
    keys: list[str] = []
    for name in paradigms.PARADIGMS:
        keys += [k for k in paradigms.get(name).extra_metrics([], []) if k not in keys]
    return keys


def extra_metrics(records: Sequence[dict], splits: Sequence[str]) -> dict:
    """Every registered paradigm's extra keys (``{}``), filled by the records' own paradigm."""
    out: dict[str, Any] = {k: {} for k in extra_keys()}
    name = records[0]["paradigm"] if records else None
    if name in paradigms.PARADIGMS:
        out.update(paradigms.get(name).extra_metrics(records, splits))
    return out


def _extra_blocks(entry: dict) -> list[dict]:
    """The paradigm-extra blocks ``{split: metrics}`` of one entry (every key but the base and strategy ones)."""
    return [b for k, b in entry.items() if k not in BASE_KEYS and k not in STRATEGY_KEYS and isinstance(b, dict)]


def split_extras(entry: dict, split: str) -> dict:
    """The extra metrics of ``split`` of one entry, merged over its extra keys (e.g. ``value``, ``noc85``)."""
    out: dict[str, Any] = {}
    for block in _extra_blocks(entry):
        out.update(block.get(split) or {})
    return out


def extra_curves(entry: dict, field: str = "iou_vs_clicks") -> dict[str, list[float]]:
    """``{split: curve}`` of an extra metric that is a curve over steps (mean IoU after step 1…T)."""
    out = {}
    for block in _extra_blocks(entry):
        out.update({split: b[field] for split, b in block.items() if isinstance(b, dict) and field in b})
    return out
