"""One prediction file → its metrics.json entry: I/U summaries, the paradigm's extras, the strategy metrics.

``scoring`` gives the per-record and per-split reductions, ``curves`` the
strategy metrics (voting curve, PRM search); this module puts them together.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seglib.evaluation.curves import strategy_metrics
from seglib.evaluation.scoring import extra_metrics, gt_mask, meter_summary, pred_mask, splits_in_order, stage_of


# --------------------------------------------------------------------------- one prediction file


def evaluate_records(records: Sequence[dict], name: str = "") -> dict:
    """The ``predictions[name]`` entry of metrics.json for one file's records."""
    if not records:
        raise ValueError(f"{name}: no prediction records")
    first = records[0]
    splits = splits_in_order(records)
    entry: dict[str, Any] = {
        "checkpoint": first["checkpoint"],
        "stage": stage_of(first["checkpoint"]),
        "paradigm": first["paradigm"],
        "strategy": first["strategy"],
        "file": f"predictions/{name}.jsonl" if name else "",
        "n": len(records),
        "parse_rate": float(np.mean([bool(r["parsed"]) for r in records])),
    }
    pairs = [(pred_mask(r), gt_mask(r)) for r in records]
    entry["overall"] = meter_summary(pairs)
    entry["splits"] = {}
    for split in splits:
        idx = [i for i, r in enumerate(records) if r["split"] == split]
        block = meter_summary([pairs[i] for i in idx])
        block["parse_rate"] = float(np.mean([bool(records[i]["parsed"]) for i in idx]))
        kinds = {}
        for kind in sorted({records[i]["kind"] for i in idx}):
            kinds[kind] = meter_summary([pairs[i] for i in idx if records[i]["kind"] == kind])
        block["kinds"] = kinds
        entry["splits"][split] = block
    entry.update(extra_metrics(records, splits))
    entry.update(strategy_metrics(records))
    return entry


def metrics_by_kind(records_by_name: dict[str, list[dict]]) -> list[dict]:
    """gIoU / cIoU (percent) per prediction file, split and query kind, plus an "all" row per split."""
    rows = []
    for name, recs in records_by_name.items():
        if not recs:
            continue
        e = evaluate_records(recs, name)
        for split, block in e["splits"].items():
            rows.append({"checkpoint": name, "split": split, "kind": "all", "n": block["n"],
                         "giou": 100 * block["giou"], "ciou": 100 * block["ciou"]})
            for kind, kb in block["kinds"].items():
                rows.append({"checkpoint": name, "split": split, "kind": kind, "n": kb["n"],
                             "giou": 100 * kb["giou"], "ciou": 100 * kb["ciou"]})
    return rows
