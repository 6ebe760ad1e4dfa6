"""SynthRef generator speed on one core, against its budget (1,000 images in <= 30 s).

Pins the process to one CPU (``os.sched_setaffinity``), limits OpenCV to one thread,
generates ``--n`` images per difficulty into a temporary folder and prints images/s
and the time for 1,000 images as a ratio of the 30 s budget (< 1 is within budget).

    .venv/bin/python bench/synthref_speed.py [--n 1000] [--image-size 112] [--difficulty easy hard]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

BUDGET_S_PER_1000 = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--difficulty", nargs="+", default=["easy", "medium", "hard"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2

    cv2.setNumThreads(1)
    from seglib.data.synthref import generate

    print(f"SynthRef speed, {args.n} images of {args.image_size} px, one core "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'difficulty':<10} {'seconds':>8} {'images/s':>9} {'s/1000':>8} {'ratio to 30 s':>14}")
    rows = []
    for diff in args.difficulty:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summary = generate(tmp, args.n, seed=args.seed, image_size=args.image_size, difficulty=diff)
            dt = time.perf_counter() - t0
        per_1000 = dt * 1000 / args.n
        print(f"{diff:<10} {dt:8.2f} {args.n / dt:9.1f} {per_1000:8.2f} {per_1000 / BUDGET_S_PER_1000:14.2f}"
              f"   ({summary['n_refs']} refs, {summary['n_annotations']} objects)")
        rows.append({"difficulty": diff, "seconds": dt, "s_per_1000": per_1000, "ratio": per_1000 / BUDGET_S_PER_1000})
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "budget_s_per_1000": BUDGET_S_PER_1000, "rows": rows}))


if __name__ == "__main__":
    main()
