"""The papers' headline claims beside this run's paired deltas, with a verdict in plain words.

Each registered paradigm lists the claims its predictions measure
(``Paradigm.claims``: ``seglib.paradigms.base.Claim``); the table takes them in
alphabetical order of the paradigms' names. A claim compares two (stage,
strategy) prediction sets of its paradigm; stage "*" is the latest stage that
has both strategies on the same checkpoint (a variant stage ``grpo-<name>`` of
``grpo_variants`` never counts as the latest).

Rows per claim (``claim_rows``): one on the first of its splits both sides have,
or one per split (``each_split``); only samples of the claim's ``kinds`` on both
sides, paired by sample. A claim with ``per_seed`` gets one more row for each
stage ``<b's stage>-seed<k>`` the run has (a ``grpo_variants`` item named
``seed<k>``, or ``rlonly-seed<k>`` for the RL-only run), its field ``seed`` = k;
the main row's ``seed`` is None (the run's own seed). A claim with ``budgets`` gets its
rows at each budget both sides reach instead (field ``budget``: ``{"N": n}`` or
``{"T": t}``): StAR's vote at N = 4, 8, 16 from one run's 16 samples, SegAgent's
search at T = 3, 5, 7 from one run's 7 steps.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from seglib import paradigms
from seglib.evaluation.comparisons import find_entry, paired_delta
from seglib.evaluation.curves import at_budget, budget_kind, budget_reach
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


def seed_stages(entries: dict, paradigm: str, stage: str) -> list[tuple[int, str]]:
    """(k, stage) of every stage ``<stage>-seed<k>`` of ``paradigm`` among the entries, by k."""
    pattern = re.compile(rf"^{re.escape(stage)}-seed(\d+)$")
    found = {int(m.group(1)): e["stage"] for e in entries.values()
             if e["paradigm"] == paradigm and (m := pattern.match(e["stage"]))}
    return sorted(found.items())


def with_seeds(entries: dict, paradigm: str, c: Claim) -> list[tuple[Claim, int | None]]:
    """The claim itself (seed None), then, where ``per_seed``, one copy per seed stage of b the run has."""
    out: list[tuple[Claim, int | None]] = [(c, None)]
    if c.per_seed and c.b[0] != "*":
        for k, stage in seed_stages(entries, paradigm, c.b[0]):
            out.append((replace(c, claim=f"{c.claim} (seed {k}: stage {stage})", b=(stage, c.b[1]),
                                needs=f"{c.needs}, and {stage} greedy predictions"), k))
    return out


def of_kinds(records: Sequence[dict], kinds: Sequence[str]) -> list[dict]:
    """The records whose sample kind is one of ``kinds`` (all of them for no kinds)."""
    return [r for r in records if not kinds or r.get("kind") in kinds]


def budgets_of(records_by_name: dict[str, list[dict]], a: str, b: str, budgets: Sequence[int]) -> list[tuple[str, int]]:
    """(kind, budget) of each of ``budgets`` both sides can be cut to (``curves.at_budget``): kind "N" where a
    side votes, else "T" where a side steps; budgets above a side's reach are dropped."""
    kinds = {x: budget_kind(records_by_name[x]) for x in (a, b)}
    kind = "N" if "N" in kinds.values() else ("T" if "T" in kinds.values() else None)
    if kind is None:
        return []
    reach = min(budget_reach(records_by_name[x]) for x in (a, b) if kinds[x] == kind)
    return [(kind, n) for n in budgets if n <= reach]


def _measured(row: dict, records_by_name: dict[str, list[dict]], a: str, b: str, where: str,
              kinds: Sequence[str] = (), budget: tuple[str, int] | None = None) -> None:
    """Fill ``row`` with the paired delta of b − a on ``where`` (samples of ``kinds``; both sides cut to
    ``budget``, (kind, value), where given) and the sentence."""
    recs = {x: of_kinds(records_by_name[x], kinds) for x in (a, b)}
    if budget is not None:
        recs = {x: at_budget(r, budget[1]) if budget_kind(r) == budget[0] else r for x, r in recs.items()}
    on = where + (f", {'/'.join(kinds)} samples" if kinds else "") + (f", {budget[0]} = {budget[1]}" if budget else "")
    d = paired_delta(recs[a], recs[b], where)
    row.update({k: d[k] for k in ("n", "delta_giou", "delta_ciou", "ci95_giou")})
    parsed = [sum(bool(r["parsed"]) for r in recs[x] if r["split"] == where) for x in (a, b)]
    if d["n"] == 0:
        row["measured"] = f"not measured: {a} and {b} share no {on} samples"
    elif parsed == [0, 0]:
        row.update(n=d["n"], delta_giou=None, delta_ciou=None, ci95_giou=None)
        row["measured"] = (f"not measured: neither {a} nor {b} wrote a parsable answer on {on} "
                           f"(n = {d['n']}), so the comparison says nothing")
    else:
        row["measured"] = (f"{b} vs {a} on {on} (n = {d['n']}): "
                           f"{d['delta_giou']:+.1f} gIoU / {d['delta_ciou']:+.1f} cIoU points")


def claim_rows(entries: dict, records_by_name: dict[str, list[dict]], split: str | None, paradigm: str,
               c: Claim, seed: int | None = None) -> list[dict]:
    """The rows of one claim: one per split of ``c.splits`` (``each_split``), else one on the first split
    both sides have (else ``split``, the run's main split)."""
    a = resolve_side(entries, paradigm, c.a, c.b)
    b = resolve_side(entries, paradigm, c.b, c.a)
    if a and b and c.a[0] == "*" and entries[a]["checkpoint"] != entries[b]["checkpoint"]:
        b = None
    shared: set[str] = set()
    if a and b:
        shared = ({r["split"] for r in of_kinds(records_by_name[a], c.kinds)}
                  & {r["split"] for r in of_kinds(records_by_name[b], c.kinds)})
    if c.each_split:
        wheres: list[str | None] = list(c.splits)
    else:
        wheres = [next((sp for sp in c.splits if sp in shared), split if split in shared else None)]
    budgets: list[tuple[str, int] | None] = [None]
    if c.budgets and a and b:
        budgets = budgets_of(records_by_name, a, b, c.budgets) or [None]
    rows = []
    for where in wheres:
        for budget in budgets:
            row = {"paper": c.paper, "claim": c.claim, "published": c.published, "split": where, "seed": seed,
                   "kinds": list(c.kinds) or None, "a": a, "b": b, "n": 0, "delta_giou": None, "delta_ciou": None,
                   "ci95_giou": None, "budget": None if budget is None else {budget[0]: budget[1]}}
            if a is None or b is None:
                on = f" on {where}" if c.each_split else ""
                row["measured"] = f"not measured{on}: the run lacks {c.needs}"
            elif where is None:
                kinds = f" of kind {'/'.join(c.kinds)}" if c.kinds else ""
                row["measured"] = f"not measured: {a} and {b} share no samples{kinds} on {' or '.join(c.splits)}"
            else:
                _measured(row, records_by_name, a, b, where, c.kinds, budget)
            row["verdict"] = verdict(row["delta_giou"], row["ci95_giou"])
            rows.append(row)
    return rows


def claims_table(entries: dict, records_by_name: dict[str, list[dict]], split: str | None) -> list[dict]:
    """Each paper's headline claim beside the run's measured delta, with a verdict (``claim_rows``, ``with_seeds``)."""
    rows = []
    for paradigm, c in all_claims():
        for claim, seed in with_seeds(entries, paradigm, c):
            rows += claim_rows(entries, records_by_name, split, paradigm, claim, seed)
    return rows
