"""seglib's benchmarks: one script per measurement (``bench/<name>.py``) and ``python -m bench`` to run them all.

Each script measures side by side in one run and prints its ratios; with ``--json FILE`` it also writes
its figures to ``FILE``. ``python -m bench`` (``bench/__main__.py``) runs every CPU script as a subprocess at
a small size (``--quick``, the default, about 3 minutes on 2 free cores) or at the scripts' own sizes, the
ones the README's benchmark table was measured at (``--full``), reads those JSON files and prints one line
per figure: benchmark, figure measured, goal, and ``met`` / ``not met`` (``report`` where the script
states no goal).

``BENCHMARKS`` below is the index: every ``bench/*.py`` script has an entry (``tests/test_bench_index.py``
checks that), with its arguments for each size, where its goals are stated, and how its figures are read.
This package imports nothing but the standard library at import time; the scripts import seglib.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


@dataclass(frozen=True)
class Goal:
    """``value op threshold`` is the goal; ``text`` is how it prints; ``source`` is where it is stated."""

    op: str  # ">=" or "<="
    threshold: float
    text: str
    source: str

    def met(self, value: float) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


@dataclass(frozen=True)
class Figure:
    """One printed line: what was measured, its value (for the goal) and how it prints."""

    label: str
    value: float | None
    shown: str
    goal: Goal | None = None

    def verdict(self) -> str:
        if self.goal is None:
            return "report"
        return "met" if self.goal.met(self.value) else "not met"


@dataclass(frozen=True)
class Benchmark:
    name: str  # the script's stem: bench/<name>.py
    quick: tuple[str, ...]  # arguments at --quick
    full: tuple[str, ...]  # arguments at --full (the script's defaults: the README's sizes)
    goals: dict[str, Goal | None]  # figure label -> goal (None: the script states none; "report")
    figures: Callable[[dict, "Benchmark"], list[Figure]] = field(compare=False)
    gpu: bool = False  # run only with --gpu / --gpu-tiny

    @property
    def script(self) -> Path:
        return BENCH_DIR / f"{self.name}.py"


def _fig(bench: Benchmark, label: str, value: float | None, shown: str) -> Figure:
    return Figure(label, value, shown, bench.goals[label])


def _voting(d: dict, b: Benchmark) -> list[Figure]:
    return [_fig(b, "vectorised / loop", d["speedup"],
                 f"{d['speedup']:.1f}x pairwise IoU (N = {d['n']}; {d['speedup_half']:.1f}x vs i<=j loop)")]


def _synthref(d: dict, b: Benchmark) -> list[Figure]:
    worst = max(d["rows"], key=lambda r: r["s_per_1000"])
    each = ", ".join(f"{r['difficulty']} {r['s_per_1000']:.1f}" for r in d["rows"])
    return [_fig(b, "s per 1,000 images", worst["s_per_1000"],
                 f"{worst['s_per_1000']:.1f} s per 1,000 (worst; {each}; from {d['n']} images)")]


def _quality(d: dict, b: Benchmark) -> list[Figure]:
    where = f"{d['samples']} val samples, {d['difficulty']}"
    return [
        _fig(b, "box + 2 points IoU", d["box_iou"], f"mean IoU {d['box_iou']:.3f} ({where})"),
        _fig(b, "F_sim NoC@85", d["noc85"], f"mean NoC@85 {d['noc85']:.2f} (NoC@90 {d['noc90']:.2f})"),
        _fig(b, "CPU ms per call", d["cpu_ms"], f"{d['cpu_ms']:.1f} ms CPU per call (wall {d['wall_ms']:.1f} ms)"),
    ]


def _cache(d: dict, b: Benchmark) -> list[Figure]:
    t = d["cpu_s"]
    return [
        _fig(b, "(a)/(c)", d["a_over_c"], f"(a)/(c) = {d['a_over_c']:.2f} (naive {t['a']:.2f} s, batched "
                                          f"{t['c']:.2f} s CPU, {d['image_size']} px, best of {d['reps']})"),
        _fig(b, "(c)/limit", d["c_over_limit"], f"(c)/limit = {d['c_over_limit']:.2f} (limit {t['limit']:.2f} s CPU)"),
    ]


def _grpo(d: dict, b: Benchmark) -> list[Figure]:
    rows = d["rows"]
    worst = max((r["share"] for r in rows), default=float("nan"))
    each = ", ".join(f"{r['paradigm']} {100 * r['share']:.1f} %" for r in rows)
    steps = rows[0]["steps"] if rows else 0
    return [_fig(b, "reward share", worst, f"{100 * worst:.1f} % of step time (worst; {each}; {steps} steps timed)")]


def _sft(d: dict, b: Benchmark) -> list[Figure]:
    return [_fig(b, "checkpointing on / off", d["speedup"],
                 f"{d['speedup']:.2f}x ({d['on_s_per_step']:.3f} vs {d['off_s_per_step']:.3f} s/step, "
                 f"{d['steps']} steps x {d['reps']})")]


def _eval_batch(d: dict, b: Benchmark) -> list[Figure]:
    return [_fig(b, "batch small / large", d["speedup"],
                 f"{d['speedup']:.2f}x ({d['small_ms']:.1f} ms at {d['small']} vs {d['large_ms']:.1f} ms at "
                 f"{d['large']} a sample; same answers {d['same']:.3f})")]


def _demo(d: dict, b: Benchmark) -> list[Figure]:
    out = []
    for r in d["rows"]:
        label = f"{r['backend']} click->view"
        out.append(Figure(label, r["handler_ms"], f"{r['handler_ms']:.1f} ms per click, median (segmenter "
                          f"{r['segmenter_ms']:.1f} ms; encode once {r['encode_ms']:.0f} ms)", b.goals.get(label)))
    return out


def _tier(d: dict, b: Benchmark) -> list[Figure]:
    out = []
    for r in d["rows"]:
        t, at = r["difficulty"], r["iou_at"]
        label = f"{t} F_sim NoC@85"
        out.append(Figure(label, r["noc85"], f"mean NoC@85 {r['noc85']:.2f} (NoC@90 {r['noc90']:.2f}; IoU after 1/3/5 "
                          f"clicks {at['1']:.3f}/{at['3']:.3f}/{at['5']:.3f}; {r['samples']} samples)", b.goals.get(label)))
        label = f"{t} GT box + points IoU"
        out.append(Figure(label, r["gt_box_points_iou"], f"mean IoU {r['gt_box_points_iou']:.3f} (perturbed box + "
                          f"points {r['perturbed_box_points_iou']:.3f})", b.goals.get(label)))
    return out


def _gpu(d: dict, b: Benchmark) -> list[Figure]:
    total = next((r["seconds"] for r in d["rows"] if r["part"] == "total"), None)
    skipped = [r["part"] for r in d["rows"] if "skipped" in str(r.get("note"))]
    shown = f"{total:.1f} s total on {d['device']}" + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    if d["tiny"]:
        return [Figure("total (tiny, CPU smoke)", total, shown + " (tiny sizes)", b.goals["total (tiny, CPU smoke)"])]
    return [_fig(b, "total", total, shown)]


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("voting", quick=(), full=(),
              goals={"vectorised / loop": Goal(">=", 10, ">= 10x", "bench/voting.py docstring")},
              figures=_voting),
    Benchmark("synthref_speed", quick=("--n", "300"), full=(),
              goals={"s per 1,000 images": Goal("<=", 30, "<= 30 s per 1,000", "bench/synthref_speed.py docstring")},
              figures=_synthref),
    Benchmark("segmenter_quality", quick=("--images", "150"), full=(),
              goals={"box + 2 points IoU": Goal(">=", 0.85, "IoU >= 0.85", "bench/segmenter_quality.py docstring"),
                     "F_sim NoC@85": Goal("<=", 4, "NoC@85 <= 4", "bench/segmenter_quality.py docstring"),
                     "CPU ms per call": Goal("<=", 50, "<= 50 ms", "bench/segmenter_quality.py docstring")},
              figures=_quality),
    Benchmark("segmenter_cache", quick=("--reps", "1"), full=(),
              goals={"(a)/(c)": Goal(">=", 6, ">= 6", "bench/segmenter_cache.py docstring"),
                     "(c)/limit": Goal("<=", 1.2, "<= 1.2", "bench/segmenter_cache.py docstring")},
              figures=_cache),
    Benchmark("grpo_reward_share", quick=("--steps", "3"), full=(),
              goals={"reward share": Goal("<=", 0.15, "<= 15 %", "bench/grpo_reward_share.py docstring")},
              figures=_grpo),
    Benchmark("sft_step", quick=("--steps", "10", "--reps", "2", "--images", "60"), full=(),
              goals={"checkpointing on / off": Goal(">=", 1.15, ">= 1.15x", "bench/sft_step.py docstring")},
              figures=_sft),
    Benchmark("eval_batch", quick=("--samples", "64", "--reps", "1", "--sft-steps", "30", "--images", "400"), full=(),
              goals={"batch small / large": Goal(">=", 1.5, ">= 1.5x", "bench/eval_batch.py docstring")},
              figures=_eval_batch),
    # No latency goal is stated in demo_latency.py or the README (only measured figures): report.
    Benchmark("demo_latency", quick=("--clicks", "5"), full=("--threads", "1"),
              goals={"classic click->view": None, "sam2 click->view": None},
              figures=_demo),
    Benchmark("bench_synthref_tier", quick=("--quick",), full=(),
              goals={"easy F_sim NoC@85": None, "easy GT box + points IoU": None,
                     "parts F_sim NoC@85": Goal(">=", 3, "NoC@85 >= 3", "bench/bench_synthref_tier.py docstring"),
                     "parts GT box + points IoU": Goal(">=", 0.8, "IoU >= 0.8", "bench/bench_synthref_tier.py docstring")},
              figures=_tier),
    # The README: "under 8 minutes on one GPU" for the full check; --tiny (CPU smoke) states no time goal.
    Benchmark("gpu_check", quick=(), full=(), gpu=True,
              goals={"total": Goal("<=", 480, "<= 480 s on one GPU", "README (make gpu-check)"),
                     "total (tiny, CPU smoke)": None},
              figures=_gpu),
]}


def scripts() -> list[str]:
    """The benchmark scripts in bench/ (every ``*.py`` but ``__init__`` and ``__main__``), by stem."""
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("__"))
