"""Determinism: two smoke runs with the same parameters and seed write the same files.

The first run is the session's ``smoke_run`` (tests/conftest.py: the whole
pipeline on params/smoke.yaml); this test runs the pipeline once more with the
same parameters into another folder and compares the two run folders file by
file. Paths of the run folder inside files are replaced by ``<run_dir>`` first
(the two runs live in different folders). What may differ, and why:

- ``run.json`` and the executed notebooks: start/end times, durations and
  progress output (they describe the run, they are not its results);
- trainer bookkeeping: ``training_args.bin`` (a pickle naming the output
  folder);
- ``figures/04_training_curves.png``: one of its panels is the reward's share
  of the step time;
- timing fields measured while the run ran (``*_runtime``, ``*_per_second``,
  ``step_time``, ``reward_time_s``, ``reward_share``, ``ms_per_call``, ``seconds``): they are
  dropped from JSON/JSONL files before those are compared.

``metrics.json``, ``predictions/*.jsonl``, ``trajectories/*.jsonl``, ``data/``
and every ``*.safetensors`` are compared byte for byte with nothing dropped;
everything else (optimizer and RNG states, tables, figures, logs) must be
identical too. A mismatch lists the files that differ.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Files that describe the run rather than its results (times, progress bars, the machine).
VOLATILE = (re.compile(r"^run\.json$"), re.compile(r"\.ipynb$"), re.compile(r"(^|/)training_args\.bin$"),
            # notebook 04 plots the reward's share of the step time (a timing) beside the reward curves
            re.compile(r"^figures/04_training_curves\.png$"))
#: Results compared byte for byte, with no field dropped: the issue's "identical metrics.json and prediction files",
#: and the dataset, trajectories and weights they come from.
STRICT = re.compile(r"^(metrics\.json|predictions/.*\.jsonl|trajectories/.*\.jsonl|data/.*)$|\.safetensors$")
#: Other JSON/JSONL files are compared without timing fields (durations measured while the run ran).
TIMING_KEY = re.compile(r"(runtime|per_second|step_time|reward_time_s|reward_share|^seconds$|_seconds$|^time$|ms_per_call"
                        r"|flos)")


def _drop_timing(obj):
    if isinstance(obj, dict):
        return {k: _drop_timing(v) for k, v in obj.items() if not TIMING_KEY.search(str(k))}
    if isinstance(obj, list):
        return [_drop_timing(v) for v in obj]
    return obj


def _content(path: Path, rel: str, run_dir: Path) -> bytes:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    text = text.replace(str(run_dir), "<run_dir>")
    if not STRICT.search(rel) and rel.endswith((".json", ".jsonl")):
        try:
            if rel.endswith(".jsonl"):
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
                return json.dumps([_drop_timing(r) for r in rows], sort_keys=True).encode()
            return json.dumps(_drop_timing(json.loads(text)), sort_keys=True).encode()
        except ValueError:  # not JSON after all: compare the text
            pass
    return text.encode()


def files_of(run_dir: Path) -> dict[str, Path]:
    return {p.relative_to(run_dir).as_posix(): p for p in sorted(run_dir.rglob("*")) if p.is_file()}


def compare_run_folders(a: Path, b: Path) -> dict[str, list[str]]:
    """``{"only_a", "only_b", "differ", "volatile"}``: relative paths, volatile files set apart."""
    fa, fb = files_of(a), files_of(b)
    out = {"only_a": [], "only_b": [], "differ": [], "volatile": []}
    for rel in sorted(set(fa) | set(fb)):
        if any(v.search(rel) for v in VOLATILE):
            out["volatile"].append(rel)
        elif rel not in fb:
            out["only_a"].append(rel)
        elif rel not in fa:
            out["only_b"].append(rel)
        elif _content(fa[rel], rel, a) != _content(fb[rel], rel, b):
            out["differ"].append(rel)
    return out


@pytest.mark.slow
def test_a_second_smoke_run_writes_the_same_files(smoke_run, tmp_path):
    from seglib.runs import RunError, read_run, run_notebooks

    first = smoke_run.run_dir
    done_first = [k for k, v in read_run(first).get("notebooks", {}).items() if v.get("status") == "done"]
    assert done_first, f"the smoke pipeline wrote nothing to compare: {smoke_run.error}"
    only = ",".join(stem.split("_", 1)[0] for stem in done_first)
    try:
        second = run_notebooks(ROOT / "params" / "smoke.yaml", only=only, run_name=first.name, outputs_dir=tmp_path)
    except RunError as err:
        pytest.fail(f"the second run failed where the first did not: {err}")

    assert read_run(second)["params"] == read_run(first)["params"]
    result = compare_run_folders(first, second)
    compared = len(files_of(first)) - len(result["volatile"])
    assert compared > 0
    problems = {k: v for k, v in result.items() if k != "volatile" and v}
    assert not problems, f"{sum(map(len, problems.values()))} of {compared} result files are not reproducible: {problems}"
    # the results the issue names explicitly
    names = set(files_of(first))
    if "07_evaluation" in done_first:
        assert "metrics.json" in names
    if "06_inference" in done_first:
        assert any(n.startswith("predictions/") and n.endswith(".jsonl") for n in names)
