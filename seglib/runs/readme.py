"""The README's results section, rendered from a committed copy of a run: ``docs/results/<name>/``.

``python -m seglib report outputs/<run>`` first copies what the section needs out of the (git-ignored) run
folder (``seglib.runs.readme_export``), then renders the markdown from that copy only, so CI re-renders it
without the run. The section sits between two marker lines of README.md; the first names the copy::

    <!-- results: docs/results/<name> -->
    ...                                   (written by the command; never edited by hand)
    <!-- /results -->

The rules (fixed formatting and order, so a re-render is byte-identical):

* **claims**: ``metrics["claims"]`` in their order. Δ is the paired gIoU difference b − a in points, one
  decimal with its sign, and its 95 % CI ``[lo, hi]``; ``noise`` is added wherever lo ≤ 0 ≤ hi. A claim
  not measured shows its reason instead. The published figure links to the methods page's section.
* **paradigms**: per paradigm (alphabetical), its prediction file with the highest gIoU on the common
  split (``common_split``); ties go to the higher cIoU, then to the first in
  ``seglib.evaluation.report.ordered_names``. Tokens per answer (on the same split) come from
  ``section.json``, as does the floor under the table: the gIoU of an empty answer to every query
  (``empty_answer``), when the copy has it.
* **figures**: those of ``FIGURES`` the copy holds, as relative links; absent ones are left out.
* **GRPO runs**: ``section.json``'s ``grpo_runs`` in its order (``seglib.evaluation.comparisons.grpo_runs``),
  one row per paradigm and GRPO run with what its parameters change; per split (those the rows have, in
  ``PREFERRED_SPLITS`` order, then alphabetical) the greedy gIoU and the paired Δ against SFT and, for a
  variant, against its main run, formatted as the claims' Δ; — where a side is missing.
* **PRM search**: per prediction file with a PRM calibration (``search.calibration``), in
  ``ordered_names`` order: K, T, mean steps, Pearson r and MAE of the estimates.
* **benchmarks**: where the copy holds ``bench.json`` (``python -m bench --out FILE``, copied by
  ``report --bench FILE``), one row per printed line of it, in its order, with the command that wrote it.
* **run**: the command, commit and machine from ``run.json`` and ``section.json``; the wall time is the
  sum of the notebooks' ``seconds``; the peak RSS is the largest ``peak_rss_mb`` (a running maximum over
  the notebook kernels that have ended).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from seglib.evaluation.report import md_cell, ordered_names, points
from seglib.evaluation.scoring import PREFERRED_SPLITS

END_MARKER = "<!-- /results -->"
SECTION_RE = re.compile(r"<!-- results: (?P<folder>[^\s<>]+) -->\n(?P<body>.*?)" + re.escape(END_MARKER), re.S)
METHODS_PAGE = "docs/METHODS.md"
SECTION_FILE = "section.json"
BENCH_FILE = "bench.json"
SFT_VS_RL = "sft_vs_rl_kinds.png"
#: (file in docs/results/<name>/, alt text) in the order the section shows them.
FIGURES = (
    ("07_iou_vs_clicks.png", "IoU vs clicks"),
    ("07_iou_vs_n.png", "IoU vs voting N"),
    (SFT_VS_RL, "SFT vs RL per query kind"),
)


class ReadmeError(ValueError):
    """A README without its markers, or a results copy that lacks a file; the message names it."""


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise ReadmeError(f"{path} is missing (write it with `python -m seglib report outputs/<run>`)")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- cells


def delta_cell(row: dict) -> str:
    """``+2.5 [-0.3, +5.1], noise`` (noise: the CI includes 0); the reason where the claim is not measured."""
    delta, ci = row.get("delta_giou"), row.get("ci95_giou")
    if delta is None:
        return md_cell(row.get("measured") or "not measured")
    if not ci:
        return f"{delta:+.1f} (no interval)"
    noise = ", noise" if ci[0] <= 0 <= ci[1] else ""
    return f"{delta:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]{noise}"


def link_text(text: str) -> str:
    """Text safe inside ``[...]`` of a markdown link in a table cell."""
    return md_cell(text).replace("[", "\\[").replace("]", "\\]")


def published_cell(row: dict, anchor: str) -> str:
    text = str(row.get("published") or "")
    text = text[len("published: "):] if text.startswith("published: ") else text
    return f"[{link_text(text or 'see the methods page')}]({METHODS_PAGE}{anchor})"


def compared_cell(row: dict) -> str:
    """``a`` → ``b``, the prediction files a claim's row compares; — where it names none (a side is missing)."""
    a, b = row.get("a"), row.get("b")
    return f"`{md_cell(a)}` → `{md_cell(b)}`" if a and b else "—"


def where_cell(row: dict) -> str:
    """The split, with the query kinds both sides were restricted to, the seed of a per-seed row and the
    budget (N voted samples, T steps) of a budget row."""
    text = row.get("split") or "—"
    if row.get("kinds"):
        text += f", {'/'.join(row['kinds'])} only"
    if row.get("seed") is not None:
        text += f", seed {row['seed']}"
    for kind, value in (row.get("budget") or {}).items():
        text += f", {kind} = {value}"
    return md_cell(text)


def claims_table(rows: list[dict], anchor: str) -> list[str]:
    lines = ["| paper | claim | published (full scale) | compared (a → b) | Δ gIoU [95 % CI] | n | split | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [md_cell(r.get("paper", "")), md_cell(r.get("claim", "")), published_cell(r, anchor),
                 compared_cell(r), delta_cell(r), str(r.get("n") or 0), where_cell(r), md_cell(r.get("verdict", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------- the paradigm table


def common_split(entries: dict) -> str | None:
    """The split every paradigm has an entry on, first of ``PREFERRED_SPLITS`` (else alphabetical); when no
    split is common to all, the one most paradigms have."""
    by_paradigm: dict[str, set[str]] = {}
    for e in entries.values():
        by_paradigm.setdefault(e["paradigm"], set()).update(e["splits"])
    splits = set().union(*by_paradigm.values()) if by_paradigm else set()
    order = sorted(splits, key=lambda s: (PREFERRED_SPLITS.index(s) if s in PREFERRED_SPLITS else 99, s))
    return max(order, key=lambda s: sum(s in have for have in by_paradigm.values()), default=None)


def best_entries(entries: dict, split: str | None) -> dict[str, str | None]:
    """paradigm → the name of its best prediction file on ``split`` (rules in the module docstring)."""
    best: dict[str, str | None] = {e["paradigm"]: None for e in entries.values()}
    for name in ordered_names(entries):
        e = entries[name]
        s = e["splits"].get(split)
        if s is None:
            continue
        held = best[e["paradigm"]]
        if held is None or (s["giou"], s["ciou"]) > tuple(entries[held]["splits"][split][k] for k in ("giou", "ciou")):
            best[e["paradigm"]] = name
    return dict(sorted(best.items()))


def tokens_cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def paradigm_table(entries: dict, split: str | None, tokens: dict) -> list[str]:
    lines = ["| paradigm | best prediction file | n | gIoU | cIoU | parsed | tokens per answer |",
             "|---|---|---|---|---|---|---|"]
    for paradigm, name in best_entries(entries, split).items():
        if name is None:
            lines.append(f"| {md_cell(paradigm)} | none on {md_cell(split)} | 0 | — | — | — | — |")
            continue
        s = entries[name]["splits"][split]
        lines.append(f"| {md_cell(paradigm)} | `{md_cell(name)}` | {s['n']} | {points(s['giou'])} | "
                     f"{points(s['ciou'])} | {100 * s['parse_rate']:.0f}% | "
                     f"{tokens_cell(tokens.get(name, {}).get(split))} |")
    return lines


def empty_answer_lines(floor: dict | None) -> list[str]:
    """One sentence: what an empty mask for every query scores on each split; nothing without it."""
    splits = {sp: s for sp, s in ((floor or {}).get("splits") or {}).items() if s.get("giou") is not None}
    if not splits:
        return []
    each = ", ".join(f"gIoU {s['giou']:.1f} / cIoU {s['ciou']:.1f} on `{md_cell(sp)}` (n {s['n']})"
                     for sp, s in splits.items())
    return [f"The floor: an empty mask for every query scores {each}, on the samples of "
            f"`{md_cell(floor.get('file', '?'))}`; a query whose target is empty scores IoU 1 with an empty answer "
            "and every other query 0.", ""]


# --------------------------------------------------------------------------- the GRPO runs


def run_delta_cell(cell: dict | None) -> str:
    """A ``grpo_runs`` Δ as ``delta_cell`` writes a claim's; — where the run lacks the other side."""
    if not cell:
        return "—"
    return delta_cell({"delta_giou": cell.get("delta"), "ci95_giou": cell.get("ci95")})


def grpo_table(rows: list[dict]) -> list[str]:
    """Every GRPO run beside SFT and its main run, per split (rules in the module docstring)."""
    if not rows:
        return []
    seen = {sp for r in rows for sp in r["splits"]}
    splits = sorted(seen, key=lambda s: (PREFERRED_SPLITS.index(s) if s in PREFERRED_SPLITS else 99, s))
    head = ["paradigm", "GRPO run", "what it changes", "n"]
    for sp in splits:
        head += [f"{sp} gIoU", f"{sp}: Δ vs SFT", f"{sp}: Δ vs main run"]
    lines = ["**Every GRPO run of the study** (greedy answers; gIoU in points; Δ: paired gIoU difference with its "
             "95 % bootstrap interval against the paradigm's SFT policy and, for a variant, against the main run "
             "it changes; the claims above are rows of this table, the others are the remedies tried).", "",
             "| " + " | ".join(md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ns = sorted({c["n"] for c in r["splits"].values()})
        cells = [md_cell(r["paradigm"]), f"`{md_cell(r['file'])}`", md_cell(r.get("settings", "")),
                 "/".join(str(n) for n in ns) or "0"]
        for sp in splits:
            c = r["splits"].get(sp)
            cells += ["—", "—", "—"] if c is None else [f"{c['giou']:.1f}", run_delta_cell(c.get("vs_sft")),
                                                        run_delta_cell(c.get("vs_main"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


# --------------------------------------------------------------------------- the run


def duration(seconds: float) -> str:
    """``58.3 s``, or ``14 min 15.0 s`` from a minute on."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds, 1), 60)
    return f"{int(minutes)} min {rest:.1f} s"


def wall_time(record: dict) -> str:
    """The sum of the notebooks' seconds, each listed (``01 14.3 s``), and the peak RSS."""
    books = record.get("notebooks", {})
    done = {k: v for k, v in sorted(books.items()) if v.get("seconds") is not None}
    total = sum(v["seconds"] for v in done.values())
    parts = ", ".join(f"{k.split('_', 1)[0]} {v['seconds']:.1f} s" for k, v in done.items())
    text = f"{duration(total)} ({parts})" if done else "not recorded"
    unfinished = [f"{k} ({v.get('status', 'unknown')})" for k, v in sorted(books.items()) if v.get("status") != "done"]
    if unfinished:
        text += "; not finished: " + ", ".join(unfinished)
    rss = [v["peak_rss_mb"] for v in books.values() if v.get("peak_rss_mb") is not None]
    return text + (f"; peak RSS {max(rss):.0f} MiB" if rss else "; peak RSS not recorded")


def commit_text(record: dict) -> str:
    git = record.get("git") or {}
    if not git.get("commit"):
        return "not recorded (the run was not made from a git work tree)"
    states = {True: "tracked files differed from it", False: "work tree clean"}
    state = states.get(git.get("dirty"), "dirty flag unknown")
    return f"`{git['commit']}` ({state})"


def machine_text(record: dict) -> str:
    m = record.get("machine") or {}
    gpus = m.get("gpus") or []
    device = ", ".join(gpus) if gpus else "no GPU"
    return f"{m.get('cpus', '?')} CPUs, {device} ({m.get('platform', '?')}, Python {m.get('python', '?')})"


def run_lines(record: dict, section: dict, link: str) -> list[str]:
    note = f" ({section['command_note']})" if section.get("command_note") else ""
    files = ", ".join(f"[{f}]({link}/{f})" for f in ("params.yaml", "run.json", "metrics.json"))
    return [f"- **Command:** `{section.get('command', '')}`{note}",
            f"- **Commit:** {commit_text(record)}",
            f"- **Machine:** {md_cell(machine_text(record))}",
            f"- **Wall time:** {wall_time(record)}",
            f"- **Files:** {files}"]


def prm_table(entries: dict) -> list[str]:
    """Per PRM-search prediction file: K, mean steps, and how its IoU estimates track the true IoU."""
    rows = []
    for name in ordered_names(entries):
        search = entries[name].get("search") or {}
        cal = search.get("calibration") or {}
        if not cal:
            continue
        pearson = "—" if cal.get("pearson") is None else f"{cal['pearson']:.3f}"
        mae = "—" if cal.get("mae") is None else f"{100 * cal['mae']:.1f}"
        rows.append(f"| `{md_cell(name)}` | {search.get('k', '—')} | {search.get('t_max', '—')} | "
                    f"{search.get('mean_steps', 0):.2f} | {pearson} | {mae} | {cal.get('n', 0)} |")
    if not rows:
        return []
    return ["**PRM search**: the clicks policy's own IoU estimate against the true IoU of the mask it estimates "
            "(Pearson r; mean absolute error in points), over every step of every sample.", "",
            "| prediction file | K | T | mean steps | Pearson r | MAE | n |", "|---|---|---|---|---|---|---|", *rows, ""]


def bench_table(bench: dict) -> list[str]:
    """The benchmark lines of ``python -m bench --out`` as a table, with the command and machine load."""
    out = [f"**Benchmarks**, from `{bench.get('command', 'python -m bench')}` ({bench.get('sizes', '?')} sizes, "
           f"{bench.get('cpus', '?')} CPUs, load average {bench.get('load_average', '?')} at the start; each "
           "ratio is measured side by side in one process).", "",
           "| benchmark | figure | measured | goal | verdict |", "|---|---|---|---|---|"]
    for r in bench["rows"]:
        out.append("| " + " | ".join(md_cell(str(r.get(k, ""))) for k in ("benchmark", "figure", "measured", "goal",
                                                                         "verdict")) + " |")
    return out


# --------------------------------------------------------------------------- the section


def render_section(folder: Path, link: str) -> str:
    """The markdown between the markers, from ``folder`` (``docs/results/<name>``) only; ``link`` is that
    folder relative to README.md. A copy missing a key raises ``ReadmeError`` naming the folder and key."""
    folder = Path(folder)
    try:
        return _render(folder, link)
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise ReadmeError(f"{folder}: metrics.json, run.json or {SECTION_FILE} lacks or misshapes "
                          f"{type(err).__name__}: {err}; write the copy again with `python -m seglib report`") from None


def _render(folder: Path, link: str) -> str:
    metrics, record = read_json(folder / "metrics.json"), read_json(folder / "run.json")
    section = read_json(folder / SECTION_FILE)
    entries = metrics.get("predictions", {})
    split = common_split(entries)
    run = section.get("run", "?")
    name = "" if Path(link).name == run else f" --name {Path(link).name}"
    out = [f"*Written by `python -m seglib report outputs/{run}{name}` from [{link}]({link}); "
           "rerun the command instead of editing this part.*", ""]
    out += run_lines(record, section, link) + [""]
    out += ["**The papers' claims.** Δ is this run's paired gIoU difference b − a in points with its 95 % "
            "bootstrap interval; published figures are full scale, so only the direction compares.", ""]
    out += claims_table(metrics.get("claims", []), section.get("methods_anchor", "")) + [""]
    out += grpo_table(section.get("grpo_runs") or [])
    out += [f"**Best of each paradigm** on `{split or 'no split'}` (gIoU / cIoU in points; tokens per answer: the "
            "mean over the texts the policy wrote, one per answer, sampled answer or click step, counted by the "
            "checkpoint's tokenizer).", ""]
    out += paradigm_table(entries, split, section.get("tokens_per_answer", {})) + [""]
    out += empty_answer_lines(section.get("empty_answer"))
    out += prm_table(entries)
    if (folder / BENCH_FILE).is_file():
        out += bench_table(read_json(folder / BENCH_FILE)) + [""]
    shown = [(f, alt) for f, alt in FIGURES if (folder / f).is_file()]
    out += [f"![{alt}]({link}/{f})" for f, alt in shown] or ["(this run drew none of the section's figures)"]
    return "\n".join(out) + "\n"


def find_section(readme_text: str) -> re.Match:
    m = SECTION_RE.search(readme_text)
    if m is None:
        raise ReadmeError("README.md has no results markers: put `<!-- results: docs/results/<name> -->` and "
                          f"`{END_MARKER}` on their own lines where the section goes")
    return m


def splice(readme_text: str, link: str, body: str) -> str:
    """README text with the section between the markers replaced, the first marker naming ``link``."""
    m = find_section(readme_text)
    return readme_text[:m.start()] + f"<!-- results: {link} -->\n{body}{END_MARKER}" + readme_text[m.end():]


def check_readme(readme: Path) -> str:
    """"" when README's section equals a re-render of the copy its marker names, else a unified diff."""
    import difflib

    text = Path(readme).read_text()
    m = find_section(text)
    want = render_section(Path(readme).parent / m["folder"], m["folder"])
    if want == m["body"]:
        return ""
    return "".join(difflib.unified_diff(m["body"].splitlines(True), want.splitlines(True),
                                        "README.md (committed)", f"README.md (rendered from {m['folder']})"))


def write_readme(readme: Path, link: str) -> bool:
    """Render the copy at ``link`` (relative to README.md) into README.md; True when the file changed."""
    readme = Path(readme)
    text = readme.read_text()
    new = splice(text, link, render_section(readme.parent / link, link))
    if new != text:
        readme.write_text(new)
    return new != text
