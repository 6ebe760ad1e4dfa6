"""``python -m seglib compare A B``: the parameters that differ and the metric deltas of two runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seglib.runs.folder import RUN_FILE, read_run
from seglib.system import RunError

# Parameters that decide which samples a run evaluates on: runs that differ in one are not comparable sample for sample.
DATA_KEYS = ("dataset", "n_images", "image_size", "difficulty", "seed", "data_root", "refcoco_dataset",
             "refcoco_split_by", "reasonseg_root", "eval_max_samples")


def compare_runs(a: Path, b: Path, all_rows: bool = False) -> str:
    """Markdown report: parameters that differ, then the metrics that changed (b − a) from metrics.json.

    Metrics equal in both runs, or present in only one, are counted rather than listed (``all_rows`` lists
    them). A warning heads the report when the runs differ in a parameter that decides their data.
    """
    ra, rb = read_run(a), read_run(b)
    if not ra or not rb:
        missing = [str(p) for p, r in ((a, ra), (b, rb)) if not r]
        raise RunError(f"not a run folder (no {RUN_FILE}): {', '.join(missing)}")
    pa, pb = ra.get("params", {}), rb.get("params", {})
    lines = [f"# {Path(a).name} vs {Path(b).name}", ""]
    data_diff = [k for k in DATA_KEYS if pa.get(k) != pb.get(k)]
    if data_diff:
        lines += [f"**Not comparable sample for sample**: the runs differ in {', '.join(data_diff)}, so their "
                  "metrics come from different data.", ""]
    diff = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
    lines += ["## Parameters that differ", "", "| parameter | a | b |", "|---|---|---|"]
    lines += [f"| {k} | {pa.get(k)!r} | {pb.get(k)!r} |" for k in diff] or ["| (none) | | |"]
    ma, mb = (_flat_metrics(Path(p) / "metrics.json") for p in (a, b))
    both = sorted(set(ma) & set(mb))
    changed = [k for k in both if abs(mb[k] - ma[k]) > 1e-12]
    only_a, only_b = sorted(set(ma) - set(mb)), sorted(set(mb) - set(ma))
    lines += ["", "## Metrics (b − a)", ""]
    if not ma or not mb:
        lines.append(f"no metrics.json in {', '.join(str(p) for p, m in ((a, ma), (b, mb)) if not m)} "
                     "(run notebook 07 first)")
        return "\n".join(lines) + "\n"
    lines.append(f"{len(changed)} of {len(both)} shared metrics changed; {len(both) - len(changed)} equal; "
                 f"{len(only_a)} only in a, {len(only_b)} only in b.")
    rows = both if all_rows else changed
    if rows:
        lines += ["", "| metric | a | b | delta |", "|---|---|---|---|"]
        lines += [f"| {k} | {_fmt(ma[k])} | {_fmt(mb[k])} | {mb[k] - ma[k]:+.4f} |" for k in rows]
    return "\n".join(lines) + "\n"


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def _flat_metrics(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    out: dict[str, float] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out[prefix] = float(node)

    walk("", json.loads(path.read_text()))
    return out
