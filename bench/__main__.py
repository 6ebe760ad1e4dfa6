"""Run every CPU benchmark in bench/ and print one line per figure: benchmark, figure, goal, met / not met.

    python -m bench                 # --quick (default): small sizes, about 3 minutes on 2 free cores
    python -m bench --full          # the scripts' own sizes (the README's benchmark table)
    python -m bench --list          # the index: every script and its goals, nothing run
    python -m bench --only voting,sft_step
    python -m bench --gpu           # also bench/gpu_check.py on the GPU (goal: under 8 minutes)
    python -m bench --gpu-tiny      # also bench/gpu_check.py --tiny, its CPU smoke version (no goal)
    python -m bench --run outputs/<run>   # also that run's wall time and peak RSS from its run.json
    python -m bench --out bench.json      # also write every printed line to bench.json (``seglib report --bench``)

Each script runs as a subprocess (``python bench/<name>.py <size args> --json FILE``) so that its own
process settings (CPU affinity, thread counts) stay its own; its figures are read from ``FILE``.
``-v`` shows the scripts' own output as well. The exit code is 0, also when a goal is not met, and 1
when a benchmark crashed (named on stderr, with the end of its output).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import BENCHMARKS, ROOT, Benchmark, Figure, scripts

COLUMNS = (38, 84, 20)


def line(name: str, figure: str, goal: str, verdict: str) -> str:
    a, b, c = COLUMNS
    return f"{name:<{a}} {figure:<{b}} {goal:<{c}} {verdict}"


def list_index() -> None:
    print(line("benchmark / figure", "script  (quick args | full args)", "goal", "stated in"))
    for name in scripts():
        b = BENCHMARKS.get(name)
        if b is None:
            print(line(name, f"bench/{name}.py", "?", "NOT IN bench.BENCHMARKS"))
            continue
        sizes = "(gpu: --gpu / --gpu-tiny)" if b.gpu else f"(quick: {' '.join(b.quick) or 'defaults'} | " \
                                                         f"full: {' '.join(b.full) or 'defaults'})"
        print(line(name, f"bench/{name}.py  {sizes}", "", ""))
        for label, goal in b.goals.items():
            print(line(f"  {label}", "", goal.text if goal else "—", goal.source if goal else "report"))


def run_one(b: Benchmark, args: tuple[str, ...], tmp: Path, verbose: bool) -> tuple[dict | None, str, float]:
    """Run ``bench/<name>.py`` with ``args``; its JSON figures (None if it crashed), its output, wall seconds."""
    out_json = tmp / f"{b.name}.json"
    cmd = [sys.executable, str(b.script), *args, "--json", str(out_json)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if verbose:
        print(f"--- {' '.join(cmd[1:])} (rc {proc.returncode}, {wall:.0f} s)\n{proc.stdout.rstrip()}\n---", flush=True)
    if proc.returncode != 0 or not out_json.exists():
        return None, proc.stdout, wall
    return json.loads(out_json.read_text()), proc.stdout, wall


def _parse_time(s: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(s) if s else None
    except ValueError:
        return None


def _find_rss(obj, path: str = "") -> list[tuple[str, object]]:
    """Every key mentioning RSS (any depth) in run.json: run.json records none today, a later one may."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            where = f"{path}.{k}" if path else str(k)
            if "rss" in str(k).lower() and isinstance(v, (int, float, str)):
                found.append((where, v))
            elif k not in ("packages", "params", "param_changes"):
                found += _find_rss(v, where)
    return found


def peak_rss_text(found: list[tuple[str, object]]) -> str:
    """The largest of the recorded peak RSS figures, in MiB, with the first place it was reached
    (a notebook's figure is the kernel's peak so far, so later notebooks repeat it)."""
    values = [(float(v), k) for k, v in found if isinstance(v, (int, float))]
    if not values:
        return "not recorded"
    top = max(v for v, _ in values)
    where = next(k for v, k in values if v == top)
    return f"{top:.0f} MiB (first reached at {where.removesuffix('.peak_rss_mb')})"


def run_record_line(run: str) -> str:
    folder = Path(run)
    if not folder.is_absolute() and not folder.exists():
        folder = ROOT / folder
    path = folder if folder.name == "run.json" else folder / "run.json"
    if not path.exists():
        return line(f"run {folder.name}", f"no run.json at {path}", "—", "report")
    record = json.loads(path.read_text())
    notebooks = record.get("notebooks") or {}
    secs = [nb["seconds"] for nb in notebooks.values() if isinstance(nb, dict) and nb.get("seconds") is not None]
    done = sum(1 for nb in notebooks.values() if isinstance(nb, dict) and nb.get("status") == "done")
    started, ended = record.get("started"), record.get("ended")
    t0, t1 = _parse_time(started), _parse_time(ended)
    span = f" = {(t1 - t0).total_seconds():.0f} s" if t0 and t1 else ""
    rss_text = peak_rss_text(_find_rss(record))
    figure = (f"notebooks {sum(secs):.0f} s ({done}/{len(notebooks)} done); started {started or '?'}, "
              f"ended {ended or 'not ended'}{span}; peak RSS {rss_text}")
    return line(f"run {folder.name}", figure, "—", "report")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="full", action="store_false", help="small sizes, about 3 minutes (default)")
    size.add_argument("--full", dest="full", action="store_true", help="the scripts' own sizes (the README's)")
    ap.set_defaults(full=False)
    ap.add_argument("--list", action="store_true", help="print the index (scripts, sizes, goals) and run nothing")
    ap.add_argument("--only", default=None, help="comma-separated benchmark names ('none': only --run)")
    ap.add_argument("--gpu", action="store_true", help="also run bench/gpu_check.py (full size, needs CUDA)")
    ap.add_argument("--gpu-tiny", action="store_true", help="also run bench/gpu_check.py --tiny (CPU smoke)")
    ap.add_argument("--run", action="append", default=[], metavar="outputs/<run>",
                    help="add a line with that run's wall time and peak RSS (from its run.json); repeatable")
    ap.add_argument("--out", default=None, metavar="FILE",
                    help="also write the lines to FILE as JSON (python -m seglib report --bench FILE puts them in "
                         "the README's results section)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show each script's own output too")
    args = ap.parse_args(argv)

    if args.list:
        list_index()
        return 0
    if args.only is None:
        names = [n for n in scripts() if n in BENCHMARKS and (not BENCHMARKS[n].gpu or args.gpu or args.gpu_tiny)]
    else:
        names = [n.strip() for n in args.only.split(",") if n.strip() and n.strip() != "none"]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    missing = [n for n in scripts() if n not in BENCHMARKS]
    if missing:
        print(f"warning: bench/ scripts missing from bench.BENCHMARKS: {', '.join(missing)}", file=sys.stderr)

    print(f"python -m bench: {'full' if args.full else 'quick'} sizes, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(line("benchmark / figure", "measured", "goal", "verdict"))
    record = {"command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
              "sizes": "full" if args.full else "quick", "cpus": os.cpu_count(),
              "load_average": round(os.getloadavg()[0], 2), "rows": []}
    crashed = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        for name in names:
            b = BENCHMARKS[name]
            if b.gpu:
                bench_args = ("--tiny",) if (args.gpu_tiny and not args.gpu) else ()
            else:
                bench_args = b.full if args.full else b.quick
            figures, output, wall = run_one(b, bench_args, Path(tmp), args.verbose)
            if figures is None:
                crashed.append(name)
                print(line(name, f"CRASHED after {wall:.0f} s (python bench/{name}.py {' '.join(bench_args)})",
                           "—", "crashed"), flush=True)
                record["rows"].append({"benchmark": name, "figure": "", "measured": f"crashed after {wall:.0f} s",
                                       "goal": "—", "verdict": "crashed"})
                tail = "\n".join(output.rstrip().splitlines()[-15:])
                print(f"--- end of bench/{name}.py output:\n{tail}\n---", file=sys.stderr, flush=True)
                continue
            try:
                rows: list[Figure] = b.figures(figures, b)
            except (KeyError, TypeError, ValueError) as err:
                crashed.append(name)
                print(line(name, f"unreadable figures ({type(err).__name__}: {err})", "—", "crashed"), flush=True)
                continue
            for i, f in enumerate(rows):
                figure = f.shown + (f"  [{wall:.0f} s]" if i == 0 else "")
                print(line(f"{name}: {f.label}", figure, f.goal.text if f.goal else "—", f.verdict()), flush=True)
                record["rows"].append({"benchmark": name, "figure": f.label, "measured": f.shown,
                                       "goal": f.goal.text if f.goal else "—", "verdict": f.verdict(),
                                       "seconds": round(wall, 1)})
        if not args.gpu and not args.gpu_tiny and args.only is None:
            print(line("gpu_check", "skipped (--gpu on a GPU, --gpu-tiny for the CPU smoke version)", "", ""))
    for run in args.run:
        print(run_record_line(run))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"total {time.perf_counter() - start:.0f} s" + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
    if crashed:
        print(f"benchmark(s) crashed: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
