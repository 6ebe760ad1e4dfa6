"""``python -m bench --list`` names every bench/*.py script, and bench.BENCHMARKS has a goal entry for each."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in ("__init__", "__main__"))


def test_list_names_every_script():
    out = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    listed = {ln.split()[0] for ln in out.splitlines()[1:] if ln and not ln.startswith(" ")}
    assert SCRIPTS, "no bench scripts found"
    assert set(SCRIPTS) <= listed, f"not listed by python -m bench --list: {sorted(set(SCRIPTS) - listed)}"
    assert "NOT IN bench.BENCHMARKS" not in out


def test_goal_table_has_an_entry_per_script():
    sys.path.insert(0, str(ROOT))
    try:
        import bench
    finally:
        sys.path.remove(str(ROOT))
    assert bench.scripts() == SCRIPTS
    for name in SCRIPTS:
        b = bench.BENCHMARKS.get(name)
        assert b is not None, f"bench/{name}.py has no entry in bench.BENCHMARKS"
        assert b.goals, f"bench/{name}.py: no figures/goals (use None for 'report')"
        for label, goal in b.goals.items():
            assert goal is None or (goal.op in (">=", "<=") and goal.text and goal.source), (name, label)
    assert set(bench.BENCHMARKS) == set(SCRIPTS), "bench.BENCHMARKS names a script that is not in bench/"


def test_run_line_gives_the_largest_peak_rss_once(tmp_path):
    import json

    sys.path.insert(0, str(ROOT))
    try:
        from bench.__main__ import run_record_line
    finally:
        sys.path.remove(str(ROOT))
    record = {"started": "2026-01-01T00:00:00+00:00", "ended": "2026-01-01T00:01:40+00:00",
              "notebooks": {"01_data_prep": {"seconds": 40.0, "status": "done", "peak_rss_mb": 600.0},
                            "03_sft": {"seconds": 60.0, "status": "done", "peak_rss_mb": 2900.4},
                            "04_rl_grpo": {"seconds": None, "status": "failed", "peak_rss_mb": 2900.4}}}
    (tmp_path / "run.json").write_text(json.dumps(record))
    text = run_record_line(str(tmp_path))
    assert "notebooks 100 s (2/3 done)" in text and "= 100 s" in text
    assert "peak RSS 2900 MiB (first reached at notebooks.03_sft)" in text and "600" not in text
