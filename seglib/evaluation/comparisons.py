"""Paired comparisons b − a of two prediction files on the samples both hold, with a bootstrap CI.

Which pairs a run supports follows from the files it has, never from a paradigm's
name: per paradigm, every training stage after SFT against SFT (greedy), every
variant stage of ``grpo_variants`` against its main run (``main_stage_of``: ``grpo-<name>``
against ``grpo``, ``grpo-rlonly-<name>`` against ``grpo-rlonly``; greedy), every
non-greedy strategy against greedy of the same checkpoint, and every PRM search
budget K against each smaller K. Deltas are in IoU points (× 100).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seglib.evaluation.curves import SEARCH_PREFIX, search_k
from seglib.evaluation.scoring import PREFERRED_SPLITS, gt_mask, intersection_union, score_record, summary_from_scored

#: The stage every later stage is compared with; stages that are never compared with it.
REFERENCE_STAGE = "sft"
UNCOMPARED_STAGES = ("sft", "base")


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
    ua = summary_from_scored([sa[i] for i in ids])
    ub = summary_from_scored([sb[i] for i in ids])
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
    """The split comparisons use: the first of ``PREFERRED_SPLITS`` the run has, else the first alphabetically."""
    splits = {r["split"] for rs in records_by_name.values() for r in rs}
    if not splits:
        return None
    return sorted(splits, key=lambda s: (PREFERRED_SPLITS.index(s) if s in PREFERRED_SPLITS else 99, s))[0]


def find_entry(entries: dict, paradigm: str, stage: str, strategy: str) -> str | None:
    """The entry of (paradigm, stage, strategy); strategy "prm_search_kmax" is the largest K > 1."""
    if strategy == SEARCH_PREFIX + "_kmax":
        cands = [(search_k(e["strategy"]), n) for n, e in entries.items()
                 if e["paradigm"] == paradigm and e["stage"] == stage and search_k(e["strategy"]) > 1]
        return max(cands)[1] if cands else None
    for name, e in entries.items():
        if e["paradigm"] == paradigm and e["stage"] == stage and e["strategy"] == strategy:
            return name
    return None


def later_stages(entries: dict, paradigm: str) -> list[str]:
    """The stages of ``paradigm`` with greedy predictions other than SFT and base, in file order."""
    stages = [e["stage"] for e in entries.values() if e["paradigm"] == paradigm and e["strategy"] == "greedy"]
    return [s for s in dict.fromkeys(stages) if s not in UNCOMPARED_STAGES]


def main_stage_of(stage: str) -> str | None:
    """The main run a variant stage varies: ``grpo-rlonly-<name>`` → ``grpo-rlonly``, ``grpo-<name>`` → ``grpo``;
    None for a main stage (``grpo``, ``grpo-rlonly``, ``sft``, ``star``, ...)."""
    if stage.startswith("grpo-rlonly-"):
        return "grpo-rlonly"
    if stage.startswith("grpo-") and stage != "grpo-rlonly":
        return "grpo"
    return None


def _pairs_of(entries: dict, paradigm: str) -> list[tuple[str, str | None, str | None]]:
    """(name, a, b) of every comparison of one paradigm's files (a or b None where the run lacks it)."""
    ref = find_entry(entries, paradigm, REFERENCE_STAGE, "greedy")
    pairs = [(f"{stage} vs {REFERENCE_STAGE} ({paradigm}, greedy)", ref, find_entry(entries, paradigm, stage, "greedy"))
             for stage in later_stages(entries, paradigm)]
    for stage in later_stages(entries, paradigm):
        main = main_stage_of(stage)
        if main:
            pairs.append((f"{stage} vs {main} ({paradigm}, greedy)", find_entry(entries, paradigm, main, "greedy"),
                          find_entry(entries, paradigm, stage, "greedy")))
    for name, e in entries.items():
        if e["paradigm"] != paradigm or e["strategy"] == "greedy":
            continue
        base = find_entry(entries, paradigm, e["stage"], "greedy")
        pairs.append((f"{e['strategy']} vs greedy ({e['checkpoint']})", base, name))
    k_names = sorted((n for n, e in entries.items() if e["paradigm"] == paradigm
                      and e["strategy"].startswith(SEARCH_PREFIX)), key=lambda n: entries[n]["strategy"])
    for lo in k_names:
        for hi in k_names:
            if entries[lo]["checkpoint"] == entries[hi]["checkpoint"] and \
                    (entries[lo]["search"].get("k") or 0) < (entries[hi]["search"].get("k") or 0):
                pairs.append((f"{entries[hi]['strategy']} vs {entries[lo]['strategy']} "
                              f"({entries[lo]['checkpoint']})", lo, hi))
    return pairs


def comparisons(entries: dict, records_by_name: dict[str, list[dict]], split: str) -> list[dict]:
    """Every paired comparison the run supports: training stages and inference strategies."""
    out = []
    for paradigm in sorted({e["paradigm"] for e in entries.values()}):
        for cname, a, b in _pairs_of(entries, paradigm):
            if a is None or b is None:
                continue
            d = paired_delta(records_by_name[a], records_by_name[b], split)
            out.append({"name": cname, "paradigm": paradigm, "split": split, "a": a, "b": b, **d})
    return out


def _delta_cell(a: Sequence[dict] | None, b: Sequence[dict], split: str) -> dict | None:
    """{n, delta, ci95} of b − a on ``split`` (gIoU points); None without a or without shared samples."""
    if a is None:
        return None
    d = paired_delta(a, b, split)
    return {"n": d["n"], "delta": d["delta_giou"], "ci95": d["ci95_giou"]} if d["n"] else None


def grpo_runs(entries: dict, records_by_name: dict[str, list[dict]], splits: Sequence[str]) -> list[dict]:
    """Every GRPO run's greedy predictions beside its paradigm's SFT policy and the main run it varies.

    One row per paradigm (alphabetical) and GRPO stage with greedy predictions: the main runs (``grpo``,
    ``grpo-rlonly``) first, then the variant stages by name. Each row: ``paradigm``, ``stage``, ``file``,
    ``sft`` and ``main`` (the prediction files compared with; None where the run lacks one, ``main`` None
    for a main run) and ``splits``: per split of ``splits`` the stage has, ``n``, ``giou`` (points) and the
    paired Δ gIoU ``vs_sft`` / ``vs_main`` (``{n, delta, ci95}`` in points, or None).
    """
    rows = []
    for paradigm in sorted({e["paradigm"] for e in entries.values()}):
        ref = find_entry(entries, paradigm, REFERENCE_STAGE, "greedy")
        stages = [s for s in later_stages(entries, paradigm) if s == "grpo" or s.startswith("grpo-")]
        for stage in sorted(stages, key=lambda s: (main_stage_of(s) is not None, s)):
            name = find_entry(entries, paradigm, stage, "greedy")
            main = main_stage_of(stage)
            main_name = find_entry(entries, paradigm, main, "greedy") if main else None
            cells = {}
            for split in splits:
                s = entries[name]["splits"].get(split)
                if s is None:
                    continue
                cells[split] = {"n": s["n"], "giou": 100.0 * s["giou"],
                                "vs_sft": _delta_cell(records_by_name.get(ref), records_by_name[name], split),
                                "vs_main": _delta_cell(records_by_name.get(main_name), records_by_name[name], split)}
            rows.append({"paradigm": paradigm, "stage": stage, "file": name, "sft": ref, "main": main_name,
                         "splits": cells})
    return rows


def empty_answer(records: Sequence[dict], split: str) -> dict:
    """What an empty mask for every sample of ``split`` scores: ``{n, giou, ciou}`` in points.

    Under the conventions an empty answer to a query whose target is empty has IoU 1 and any other IoU 0,
    so its gIoU is the share of no-target samples: the floor a policy that learnt to answer "nothing" reaches.
    """
    pairs = [intersection_union(np.zeros_like(gt), gt) for gt in (gt_mask(r) for r in records if r["split"] == split)]
    if not pairs:
        return {"n": 0, "giou": None, "ciou": None}
    union = sum(u for _, u, _ in pairs)
    return {"n": len(pairs), "giou": 100.0 * float(np.mean([iou for _, _, iou in pairs])),
            "ciou": 100.0 * (sum(i for i, _, _ in pairs) / union if union else 0.0)}
