"""Copy what the README's results section needs out of a run folder into ``docs/results/<name>/``.

Run folders are git-ignored, so ``seglib.runs.readme`` renders from this committed copy only:

* ``metrics.json``: whole when under ``WHOLE_METRICS_BYTES``, else trimmed to the keys the section reads;
* ``run.json`` and ``params.yaml`` (the resolved parameters) as the run wrote them;
* the figures of ``seglib.runs.readme.FIGURES`` the run has; the SFT-vs-RL one is drawn here from
  metrics.json's per-kind entries (greedy answers of stage ``sft`` and ``grpo`` on the common split);
* ``section.json``: what needs the run folder or the repository at export time: the exact command, the
  tokens per answer of every prediction file, the anchor of the methods page's published figures, and
  ``grpo_runs``: every GRPO run's paired deltas on each split (``seglib.evaluation.comparisons.grpo_runs``,
  which needs the prediction files), each with ``settings``, what its parameters change (``run_settings``);
  and ``empty_answer``: what an empty mask for every query scores on each split
  (``seglib.evaluation.comparisons.empty_answer``), from the prediction file with the most samples on the
  paradigm table's split.

Tokens per answer: the mean token count, over every text of a prediction file (``texts``: one answer,
one sampled answer, or one click step), by the checkpoint's own ``tokenizer.json`` without special tokens;
None where the file has no text or the checkpoint no tokenizer.json. The command is ``params_file`` plus
run.json's ``overrides`` where it records them; otherwise the overrides are rebuilt as ``-p`` for every
parameter whose recorded value differs from what the params file and the notebooks resolve to now.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

from seglib.config import REPO_ROOT, ParamError, load_params
from seglib.evaluation.comparisons import empty_answer, grpo_runs
from seglib.evaluation.scoring import splits_in_order
from seglib.inference.records import PredictionFileError, read_predictions
from seglib.runs.folder import RUN_FILE, read_run
from seglib.runs.readme import BENCH_FILE, FIGURES, METHODS_PAGE, SECTION_FILE, SFT_VS_RL, ReadmeError, common_split
from seglib.system import RunError

RESULTS_SUBDIR = "docs/results"  # beside README.md
RESULTS_DIR = REPO_ROOT / RESULTS_SUBDIR
WHOLE_METRICS_BYTES = 300_000
#: The keys of a metrics.json entry the section reads (a trimmed copy keeps only these).
ENTRY_KEYS = ("checkpoint", "stage", "paradigm", "strategy", "file", "n", "parse_rate", "overall", "splits")
PUBLISHED_HEADING = "## Published figures"


def trimmed_metrics(metrics: dict) -> dict:
    """metrics.json without what the section never reads (comparisons, curves, paradigm extras)."""
    keep = {k: metrics[k] for k in ("schema_version", "conventions", "claims") if k in metrics}
    keep["predictions"] = {n: {k: e[k] for k in ENTRY_KEYS if k in e}
                           for n, e in metrics.get("predictions", {}).items()}
    return keep


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.lstrip("#").strip().lower()
    return "#" + re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def methods_anchor(repo_root: Path = REPO_ROOT) -> str:
    """The anchor of the methods page's published-figures section; "" when the page has none."""
    page = Path(repo_root) / METHODS_PAGE
    lines = page.read_text().splitlines() if page.is_file() else []
    return next((github_anchor(ln) for ln in lines if ln.startswith(PUBLISHED_HEADING)), "")


# --------------------------------------------------------------------------- the command


def _yaml_value(value) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text[:-len("...")].strip() if text.endswith("...") else text


def rebuilt_overrides(record: dict) -> tuple[list[str], str]:
    """``key=value`` for each recorded parameter that differs from the params file resolved now; a note."""
    params_file = record.get("params_file")
    try:
        now = load_params(params_file, [], check_choices=False)
    except (ParamError, OSError) as err:
        return [], f"overrides unknown: {params_file} does not resolve now ({err})"
    recorded = record.get("params") or {}
    changed = sorted(k for k in recorded if k in now and recorded[k] != now[k])
    gone = sorted(k for k in recorded if k not in now)
    note = ("run.json lists no overrides; each -p is a recorded parameter that differs from the file" if changed
            else "run.json lists no overrides; its parameters equal the file's")
    if gone:
        note += "; no notebook declares " + ", ".join(gone) + " any more"
    return [f"{k}={_yaml_value(recorded[k])}" for k in changed], note


def run_command(record: dict, run_name: str, repo_root: Path = REPO_ROOT) -> tuple[str, str]:
    """The command that makes the run again, and a note on how it was found ("" when run.json says it)."""
    if isinstance(record.get("overrides"), list):
        overrides, note = [str(o) for o in record["overrides"]], ""
    else:
        overrides, note = rebuilt_overrides(record)
    params_file = record.get("params_file")
    if params_file and Path(params_file).is_absolute() and Path(params_file).is_relative_to(repo_root):
        params_file = str(Path(params_file).relative_to(repo_root))
    parts = [".venv/bin/python", "-m", "seglib", "run"] + ([params_file] if params_file else [])
    for o in overrides:
        parts += ["-p", o]
    parts += ["--name", run_name]
    return " ".join(shlex.quote(p) for p in parts), note


# --------------------------------------------------------------------------- tokens per answer


def load_tokenizer(checkpoint_dir: Path):
    """The checkpoint's ``tokenizer.json`` as a ``tokenizers.Tokenizer`` with its saved padding and truncation
    switched off (a batch would otherwise count the pads); None when it has none."""
    path = Path(checkpoint_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def tokens_per_answer(records: list[dict], tokenizer) -> float | None:
    """Mean token count over every text of the records (rule in the module docstring)."""
    texts = [str(t) for r in records for t in (r.get("texts") or []) if t is not None]
    if tokenizer is None or not texts:
        return None
    counts = [len(enc.ids) for enc in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return round(sum(counts) / len(counts), 2)


def all_tokens(run_dir: Path, entries: dict) -> dict[str, dict[str, float | None]]:
    """prediction file name → split → tokens per answer on that split, names and splits sorted."""
    out, tokenizers = {}, {}
    for name in sorted(entries):
        ckpt = entries[name].get("checkpoint", "")
        if ckpt not in tokenizers:
            tokenizers[ckpt] = load_tokenizer(run_dir / "checkpoints" / ckpt)
        path = run_dir / (entries[name].get("file") or f"predictions/{name}.jsonl")
        try:
            records = read_predictions(path) if path.is_file() else []
        except PredictionFileError as err:
            raise ReadmeError(f"tokens per answer of {name}: {err}") from None
        splits = sorted({str(r.get("split")) for r in records})
        out[name] = {sp: tokens_per_answer([r for r in records if str(r.get("split")) == sp], tokenizers[ckpt])
                     for sp in splits}
    return out


# --------------------------------------------------------------------------- the GRPO runs


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{k}: {_yaml_value(v)}" for k, v in settings.items())


def run_settings(params: dict, paradigm: str, stage: str) -> str:
    """What a GRPO run's parameters change, in words: a main run (``grpo``, ``grpo-rlonly``) names its
    ``grpo_paradigm_settings``; a variant stage ``grpo-<name>`` the fields of its ``grpo_variants`` item
    (besides name and paradigm) against the main run; a seed variant without a ``seed`` field its seed."""
    from seglib.train.settings import SEED_NAME

    shared = (params.get("grpo_paradigm_settings") or {}).get(paradigm) or {}
    shared_text = f" ({_settings_text(shared)})" if shared else ""
    if stage == "grpo":
        return "main run" + shared_text
    if stage == "grpo-rlonly":
        return "main RL-only run, from the base policy" + shared_text
    name = stage[len("grpo-"):]
    item = next((i for i in params.get("grpo_variants") or []
                 if isinstance(i, dict) and i.get("name") == name and i.get("paradigm") == paradigm), None)
    if item is None:
        return f"not among the run's grpo_variants ({name!r} of {paradigm})"
    changes = {k: v for k, v in item.items() if k not in ("name", "paradigm")}
    seed = SEED_NAME.match(name)
    if seed and "seed" not in changes:
        changes["seed"] = int(seed.group(1))
    return _settings_text(changes) or "as the main run"


def grpo_run_rows(run_dir: Path, entries: dict, params: dict) -> list[dict]:
    """``grpo_runs`` of the run on every split its GRPO greedy files have, each row with ``settings``."""
    wanted = {n for n, e in entries.items() if e.get("strategy") == "greedy"
              and (e.get("stage") in ("sft", "grpo") or str(e.get("stage", "")).startswith("grpo-"))}
    records = {}
    for name in sorted(wanted):
        path = run_dir / (entries[name].get("file") or f"predictions/{name}.jsonl")
        try:
            records[name] = read_predictions(path) if path.is_file() else []
        except PredictionFileError as err:
            raise ReadmeError(f"GRPO runs table, {name}: {err}") from None
    chosen = {n: entries[n] for n in wanted if records[n]}
    splits = splits_in_order([{"split": sp} for n in chosen for sp in entries[n]["splits"]])
    rows = grpo_runs(chosen, records, splits)
    return [dict(r, settings=run_settings(params, r["paradigm"], r["stage"])) for r in rows]


def empty_answer_row(run_dir: Path, entries: dict) -> dict | None:
    """``empty_answer`` on each split of the file with the most samples on the common split (ties: first by
    name): ``{"file", "splits": {split: {n, giou, ciou}}}``, splits in ``splits_in_order``; None without one."""
    split = common_split(entries)
    have = sorted((-e["splits"][split]["n"], n) for n, e in entries.items() if split in (e.get("splits") or {}))
    if not have:
        return None
    name = have[0][1]
    path = run_dir / (entries[name].get("file") or f"predictions/{name}.jsonl")
    try:
        records = read_predictions(path) if path.is_file() else []
    except PredictionFileError as err:
        raise ReadmeError(f"empty-answer floor, {name}: {err}") from None
    return {"file": name, "splits": {sp: empty_answer(records, sp) for sp in splits_in_order(records)}}


# --------------------------------------------------------------------------- figures


def stage_kind_bars(entries: dict, split: str | None) -> dict[str, tuple[float | None, float | None]]:
    """``"<paradigm> / <kind>"`` → (SFT gIoU, RL gIoU) of the greedy answers on ``split``, sorted."""
    by = {(e["paradigm"], e["stage"]): e for e in entries.values() if e.get("strategy") == "greedy"}
    bars = {}
    for paradigm in sorted({p for p, _ in by}):
        sft, rl = by.get((paradigm, "sft")), by.get((paradigm, "grpo"))
        if sft is None or rl is None:
            continue
        kinds = [e["splits"].get(split, {}).get("kinds", {}) for e in (sft, rl)]
        for kind in sorted(set(kinds[0]) | set(kinds[1])):
            bars[f"{paradigm} / {kind}"] = tuple(k.get(kind, {}).get("giou") for k in kinds)
    return bars


def copy_figures(run_dir: Path, dest: Path, metrics: dict) -> list[str]:
    """Copy the run's figures of ``FIGURES``, draw the SFT-vs-RL one; the file names written."""
    written = []
    for fname, _ in FIGURES:
        if (run_dir / "figures" / fname).is_file():
            shutil.copyfile(run_dir / "figures" / fname, dest / fname)
            written.append(fname)
    entries = metrics.get("predictions", {})
    split = common_split(entries)
    bars = stage_kind_bars(entries, split)
    if bars:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from seglib.viz.evaluation import plot_stage_kinds

        fig = plot_stage_kinds(bars, split)
        fig.savefig(dest / SFT_VS_RL, dpi=100, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        written.append(SFT_VS_RL)
    return sorted(written)


# --------------------------------------------------------------------------- the copy


def export_run(run_dir: str | Path, results_dir: Path = RESULTS_DIR, name: str | None = None,
               repo_root: Path = REPO_ROOT, bench: str | Path | None = None) -> Path:
    """Write ``<results_dir>/<name>/`` (default name: the run folder's) afresh; return its path.
    ``bench``: a ``python -m bench --out`` file, copied as ``bench.json`` (its rows are checked first)."""
    run_dir = Path(run_dir).resolve()
    bench_text = None
    if bench is not None:
        bench_text = Path(bench).read_text()
        try:
            rows = json.loads(bench_text)["rows"]
            assert isinstance(rows, list) and all(isinstance(r, dict) and "benchmark" in r for r in rows)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise RunError(f"{bench}: not a `python -m bench --out` file (a JSON object with a list of rows)") from None
    if not (run_dir / "metrics.json").is_file():
        raise RunError(f"{run_dir} has no metrics.json: run notebook 07 first")
    record = read_run(run_dir)
    if not record:
        raise RunError(f"{run_dir} has no {RUN_FILE}")
    name = name or run_dir.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise RunError(f"results name {name!r}: use letters, digits, '.', '_' and '-'")
    dest = Path(results_dir) / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    raw = (run_dir / "metrics.json").read_text()
    metrics = json.loads(raw)
    if len(raw.encode()) < WHOLE_METRICS_BYTES:
        shutil.copyfile(run_dir / "metrics.json", dest / "metrics.json")
    else:
        (dest / "metrics.json").write_text(json.dumps(trimmed_metrics(metrics), indent=1, sort_keys=True) + "\n")
    shutil.copyfile(run_dir / RUN_FILE, dest / RUN_FILE)
    if (run_dir / "params.yaml").is_file():
        shutil.copyfile(run_dir / "params.yaml", dest / "params.yaml")
    copy_figures(run_dir, dest, metrics)
    if bench_text is not None:
        (dest / BENCH_FILE).write_text(bench_text)
    command, note = run_command(record, run_dir.name, repo_root)
    section = {"run": run_dir.name, "command": command, "command_note": note,
               "methods_anchor": methods_anchor(repo_root),
               "tokens_per_answer": all_tokens(run_dir, metrics.get("predictions", {})),
               "grpo_runs": grpo_run_rows(run_dir, metrics.get("predictions", {}), record.get("params") or {}),
               "empty_answer": empty_answer_row(run_dir, metrics.get("predictions", {}))}
    (dest / SECTION_FILE).write_text(json.dumps(section, indent=1, sort_keys=True) + "\n")
    return dest
