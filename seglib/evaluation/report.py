"""The whole run: metrics.json, the markdown tables and the 07 figures, from the prediction files only.

Files written by ``evaluate_run``: ``metrics.json``; ``tables/results.md``
(paradigm × stage × strategy × split), ``tables/claims.md``,
``tables/comparisons.md``, ``tables/curves.md``; ``figures/07_giou_bars.png``,
``figures/07_iou_vs_n.png``, ``figures/07_iou_vs_t.png``,
``figures/07_iou_vs_clicks.png``, ``figures/07_calibration.png`` (each only
when the run has the data; drawn by ``seglib.viz.evaluation``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seglib.evaluation.claims import claims_table
from seglib.evaluation.comparisons import comparisons, main_split
from seglib.evaluation.curves import calibration_pairs
from seglib.evaluation.entry import evaluate_records
from seglib.evaluation.scoring import CONVENTIONS, extra_curves, split_extras
from seglib.inference.records import read_predictions

METRICS_SCHEMA_VERSION = 1
STAGE_ORDER = {"base": 0, "sft": 1, "grpo-rlonly": 2, "grpo": 3, "star": 4}


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
            write_figures(metrics, run_dir, records_by_name)
    return metrics


def stage_rank(stage: str) -> int:
    """``STAGE_ORDER`` of a stage; a GRPO variant's stage (``grpo-seed1``, ``grpo-rlonly-seed1``) ranks
    with the longest ``STAGE_ORDER`` name it starts with; anything else after them all."""
    if stage in STAGE_ORDER:
        return STAGE_ORDER[stage]
    heads = [s for s in STAGE_ORDER if stage.startswith(s + "-")]
    return STAGE_ORDER[max(heads, key=len)] if heads else len(STAGE_ORDER)


def ordered_names(entries: dict) -> list[str]:
    """Prediction-file names by paradigm, then stage (``stage_rank``, then its name), then strategy."""
    return sorted(entries, key=lambda n: (entries[n]["paradigm"], stage_rank(entries[n]["stage"]),
                                          entries[n]["stage"], entries[n]["strategy"]))


# --------------------------------------------------------------------------- figures


def write_figures(metrics: dict, run_dir: str | Path, records_by_name: dict | None = None) -> list[Path]:
    """Bar chart of gIoU/cIoU, IoU-vs-N, IoU-vs-T, IoU-vs-clicks and the PRM calibration scatter."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from seglib.viz import evaluation as figs
    from seglib.viz import save_figure

    entries = metrics["predictions"]
    vote = {n: e["vote_curve"] for n, e in entries.items() if e["vote_curve"]}
    search = {n: e for n, e in entries.items() if e["search"]}
    steps = {n: c for n, e in entries.items() if (c := extra_curves(e)) and not e["search"]}
    step_lines = [(f"{n} ({split})", list(range(1, len(c) + 1)), c) for n, curves in steps.items()
                  for split, c in curves.items()]
    pairs = {n: calibration_pairs(records_by_name[n]) for n in search} if records_by_name else {}
    drawn = []
    if entries:
        drawn.append(("07_giou_bars.png", figs.plot_giou_bars(entries, ordered_names(entries))))
    if vote:
        drawn.append(("07_iou_vs_n.png", figs.plot_iou_vs_n(vote)))
    if search:
        with_prm = [(f"{n} ({split}), with PRM", c["t"], c["giou"]) for n, e in search.items()
                    for split, c in e["search"]["iou_vs_t"].items()]
        without = [(f"{label}, last step, no PRM", ts, ys) for label, ts, ys in step_lines]
        drawn.append(("07_iou_vs_t.png", figs.plot_iou_vs_t(with_prm, without)))
    if steps:
        drawn.append(("07_iou_vs_clicks.png", figs.plot_step_curves(step_lines)))
    if any(p for p, _ in pairs.values()):
        drawn.append(("07_calibration.png", figs.plot_calibration(pairs)))
    return [save_figure(fig, run_dir, name, dpi=110, close=True) for name, fig in drawn]


# --------------------------------------------------------------------------- tables


def md_cell(text: Any) -> str:
    """Text safe inside a markdown table cell: ``&``, ``<``, ``>`` as HTML entities (a notebook renders
    markdown as HTML, so a raw ``<K > 1>`` would vanish as a tag), ``|`` escaped, line breaks as spaces."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return " ".join(out.split())


def points(v: float | None) -> str:
    """A fraction as IoU points with one decimal; "—" for None."""
    return "—" if v is None else f"{100.0 * v:.1f}"


def signed(v: float | None) -> str:
    """A delta in points with its sign; "—" for None."""
    return "—" if v is None else f"{v:+.1f}"


def _number(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


#: The paradigm-extra columns of results.md: (header, field of a split's extra metrics, format).
EXTRA_COLUMNS = (("Acc@0.5", "value", points), ("NoC@85", "noc85", _number), ("NoC@90", "noc90", _number))


def results_table(metrics: dict) -> str:
    """Markdown: one row per paradigm × stage × strategy × split."""
    lines = [
        "| paradigm | stage | strategy | split | n | gIoU | cIoU | parsed | "
        + " | ".join(h for h, _, _ in EXTRA_COLUMNS) + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(EXTRA_COLUMNS),
    ]
    entries = metrics["predictions"]
    for name in ordered_names(entries):
        e = entries[name]
        for split, s in e["splits"].items():
            extras = split_extras(e, split)
            cells = [fmt(extras.get(field)) for _, field, fmt in EXTRA_COLUMNS]
            lines.append(f"| {md_cell(e['paradigm'])} | {md_cell(e['stage'])} | {md_cell(e['strategy'])} | "
                         f"{md_cell(split)} | {s['n']} | "
                         f"{points(s['giou'])} | {points(s['ciou'])} | {100 * s['parse_rate']:.0f}% | "
                         + " | ".join(cells) + " |")
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
        lines.append(f"| {md_cell(r['name'])} | {md_cell(r['split'])} | {r['n']} | {points(r['giou_a'])} → "
                     f"{points(r['giou_b'])} | {points(r['ciou_a'])} → {points(r['ciou_b'])} | "
                     f"{signed(r['delta_giou'])} | {signed(r['delta_ciou'])} | {ci} |")
    return "\n".join(lines) + "\n"


def curves_markdown(metrics: dict) -> str:
    out = []
    for name, e in metrics["predictions"].items():
        for split, c in e["vote_curve"].items():
            out.append(f"**{name}** voting, {split}: " + ", ".join(
                f"N={n}: {points(g)}/{points(ci)}" for n, g, ci in zip(c["n"], c["giou"], c["ciou"])))
        if e["search"]:
            for split, c in e["search"]["iou_vs_t"].items():
                out.append(f"**{name}** search (K={e['search']['k']}), {split}: " + ", ".join(
                    f"T={t}: {points(g)}" for t, g in zip(c["t"], c["giou"])))
            cal = e["search"]["calibration"]
            if cal["n"]:
                r = "n/a (a constant side)" if cal["pearson"] is None else f"{cal['pearson']:.2f}"
                out.append(f"**{name}** PRM calibration: MAE {100 * cal['mae']:.1f} IoU points, "
                           f"Pearson {r} (n = {cal['n']})")
        for split, c in extra_curves(e).items():
            out.append(f"**{name}** IoU vs clicks, {split}: " + ", ".join(
                f"{t + 1}: {points(v)}" for t, v in enumerate(c)))
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
