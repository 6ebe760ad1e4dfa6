"""Benchmark: StAR mask majority voting, vectorised pairwise IoU against a plain Python loop.

N = 32 sampled masks at 480×640 (jittered ellipses around 2 objects, as 32
samples of one query would give). Both versions run here, in the same process:

- loop: ``mask_iou`` for every ordered pair (the straightforward way), and
  for unordered pairs only (i ≤ j, half the calls);
- vectorised: ``seglib.voting.pairwise_iou`` (crop + one matrix product).

Then a full ``majority_vote`` call is timed as well. Prints the ratio; the goal is ≥ 10×.

    .venv/bin/python bench/voting.py [--n 32] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from seglib.masks import mask_iou
from seglib.voting import majority_vote, pairwise_iou


def make_samples(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = [(200, 240), (450, 200)]
    masks = []
    for i in range(n):
        cx, cy = centres[i % 2]
        m = np.zeros((height, width), np.uint8)
        cv2.ellipse(
            m,
            (int(cx + rng.integers(-4, 5)), int(cy + rng.integers(-4, 5))),
            (int(120 + rng.integers(-6, 7)), int(90 + rng.integers(-6, 7))),
            float(rng.uniform(0, 10)),
            0,
            360,
            1,
            -1,
        )
        masks.append(m.astype(bool))
    return masks


def loop_pairwise(masks: list[np.ndarray]) -> np.ndarray:
    n = len(masks)
    out = np.ones((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = mask_iou(masks[i], masks[j])
    return out


def loop_pairwise_symmetric(masks: list[np.ndarray]) -> np.ndarray:
    """The same loop over unordered pairs only (i ≤ j), filling the mirror."""
    n = len(masks)
    out = np.ones((n, n))
    for i in range(n):
        for j in range(i, n):
            out[i, j] = out[j, i] = mask_iou(masks[i], masks[j])
    return out


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    masks = make_samples(args.n, args.height, args.width)
    per_sample = [[m] for m in masks]
    assert np.allclose(loop_pairwise(masks), pairwise_iou(masks), atol=1e-12), "vectorised IoU disagrees"
    # Interleave the three so that load from other processes hits them alike; keep each one's best.
    t_loop = t_half = t_vec = t_vote = float("inf")
    for _ in range(args.repeats):
        t_loop = min(t_loop, best_time(lambda: loop_pairwise(masks), 1)[0])
        t_half = min(t_half, best_time(lambda: loop_pairwise_symmetric(masks), 1)[0])
        t_vec = min(t_vec, best_time(lambda: pairwise_iou(masks), 3)[0])
        t, chosen = best_time(lambda: majority_vote(per_sample, [[0.5]] * len(masks)), 3)
        t_vote = min(t_vote, t)
    print(f"N={args.n} masks at {args.height}x{args.width}, best of {args.repeats} interleaved rounds")
    print(f"pairwise IoU, Python loop of mask_iou : {t_loop * 1e3:9.2f} ms")
    print(f"pairwise IoU, loop over i <= j only   : {t_half * 1e3:9.2f} ms")
    print(f"pairwise IoU, vectorised (seglib)     : {t_vec * 1e3:9.2f} ms")
    print(f"full majority_vote (incl. clustering) : {t_vote * 1e3:9.2f} ms  -> {len(chosen)} mask(s)")
    print(f"speed-up pairwise IoU: {t_loop / t_vec:.1f}x  (goal >= 10x; {t_half / t_vec:.1f}x against the i <= j loop)")
    print(f"speed-up loop vs whole vote: {t_loop / t_vote:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "loop_ms": 1e3 * t_loop, "half_loop_ms": 1e3 * t_half,
                                               "vectorised_ms": 1e3 * t_vec, "vote_ms": 1e3 * t_vote,
                                               "speedup": t_loop / t_vec, "speedup_half": t_half / t_vec}))


if __name__ == "__main__":
    main()
