"""The papers' headline claims beside this run's paired deltas, with a verdict in plain words.

Each registered paradigm lists the claims its predictions measure
(``Paradigm.claims``: ``seglib.paradigms.base.Claim``); the table takes them in
alphabetical order of the paradigms' names. A claim compares two (stage,
strategy) prediction sets of its paradigm; stage "*" is the latest stage that
has both strategies on the same checkpoint.
"""
from __future__ import annotations

from collections.abc import Sequence

from seglib import paradigms
from seglib.evaluation.comparisons import find_entry, paired_delta
from seglib.paradigms.base import Claim

#: Stages in the order a claim's "*" tries them: the latest training stage first.
LATEST_FIRST = ("star", "grpo", "sft", "base")


def all_claims() -> list[tuple[str, Claim]]:
    """(paradigm name, claim) of every registered paradigm, paradigms in alphabetical order."""
    return [(name, c) for name in sorted(paradigms.PARADIGMS) for c in paradigms.paradigm_class(name).claims]


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


def resolve_side(entries: dict, paradigm: str, side: tuple[str, str], other: tuple[str, str]) -> str | None:
    """The entry of one side (stage, strategy) of a claim; stage "*" = the latest stage with both strategies."""
    stage, strategy = side
    if not strategy:
        return None
    if stage != "*":
        return find_entry(entries, paradigm, stage, strategy)
    for st in LATEST_FIRST:  # same checkpoint on both sides
        if find_entry(entries, paradigm, st, strategy) and find_entry(entries, paradigm, st, other[1]):
            return find_entry(entries, paradigm, st, strategy)
    return None


def _measured(row: dict, records_by_name: dict[str, list[dict]], a: str, b: str, where: str) -> None:
    """Fill ``row`` with the paired delta of b − a on ``where`` and the sentence that states it."""
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


def claims_table(entries: dict, records_by_name: dict[str, list[dict]], split: str | None) -> list[dict]:
    """Each paper's headline claim beside the run's measured delta, with a verdict."""
    rows = []
    for paradigm, c in all_claims():
        a = resolve_side(entries, paradigm, c.a, c.b)
        b = resolve_side(entries, paradigm, c.b, c.a)
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
            _measured(row, records_by_name, a, b, where)
        row["verdict"] = verdict(row["delta_giou"], row["ci95_giou"])
        rows.append(row)
    return rows
