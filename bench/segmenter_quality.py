"""Quality and speed of the weightless default segmenter on SynthRef val.

Targets: GT box + Seg-Zero's two representative points → mean IoU ≥ 0.85;
F_sim clicks alone → mean NoC@85 ≤ 4 (cap 20); ≤ 50 ms per predict call at the smoke
image size on one core (CPU time of the process with one thread, printed beside wall time, which on a
shared machine also counts waiting). Generates a small SynthRef into a temp dir.

    nice -n 10 .venv/bin/python bench/segmenter_quality.py [--images 150] [--image-size 112] [--difficulty easy]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from seglib.clicker import next_click  # noqa: E402
from seglib.data import load_samples, synthref  # noqa: E402
from seglib.masks import box_from_mask, mask_iou, representative_points  # noqa: E402
from seglib.metrics import noc  # noqa: E402
from seglib.segmenters import build_segmenter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--difficulty", default="easy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="val")
    ap.add_argument("--data", default=None, help="an existing SynthRef folder (skips generation)")
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = os.path.join(tmp, "synthref")
            synthref.generate(data, args.images, seed=args.seed, image_size=args.image_size, difficulty=args.difficulty)
        samples = [s for s in load_samples(data, split=args.split) if s.target_rles]
        seg = build_segmenter("classic")
        box_ious, nocs85, nocs90, times, cpu = [], [], [], [], []
        per_shape = defaultdict(list)
        for s in samples:
            gt = s.union_mask()
            seg.set_image(s.image())
            pts = [p for m in s.target_masks() for p in representative_points(m, 2)]
            boxes = [box_from_mask(m) for m in s.target_masks()]
            # box + points per target (the boxpoints paradigm), union over targets
            pred = np.zeros_like(gt)
            for box, pp in zip(boxes, [pts[2 * i : 2 * i + 2] for i in range(len(boxes))]):
                t, c0 = time.perf_counter(), time.process_time()
                pred |= seg.predict(pp, [1, 1], box_xyxy=box).mask
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c0)
            box_ious.append(mask_iou(pred, gt))
            # F_sim clicks alone
            clicks, logits, ious, mask = [], None, [], np.zeros_like(gt)
            for _ in range(args.max_clicks):
                c = next_click(gt, mask, clicks)
                if c is None:
                    ious.append(1.0)
                    break
                clicks.append(c)
                t, c0 = time.perf_counter(), time.process_time()
                out = seg.predict([(c.x, c.y) for c in clicks], [c.label for c in clicks], mask_logits=logits)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c0)
                mask, logits = out.mask, out.logits
                ious.append(mask_iou(mask, gt))
                if ious[-1] >= 0.9:
                    break
            nocs85.append(noc(ious, 0.85, args.max_clicks))
            nocs90.append(noc(ious, 0.90, args.max_clicks))
            shapes = s.meta.get("target_shapes") or ["?"]
            per_shape[str(shapes[0]) if len(shapes) == 1 else "multi"].append((box_ious[-1], nocs85[-1]))
        print(f"SynthRef {args.split}: {len(samples)} samples with targets ({args.difficulty}, {args.image_size} px)")
        print(f"box + 2 points: mean IoU {np.mean(box_ious):.3f} (target >= 0.85); min {np.min(box_ious):.3f}")
        print(f"F_sim clicks:   mean NoC@85 {np.mean(nocs85):.2f} (target <= 4), NoC@90 {np.mean(nocs90):.2f}")
        print(f"CPU per call:   mean {1e3 * np.mean(cpu):.1f} ms, p95 {1e3 * np.percentile(cpu, 95):.1f} ms "
              f"(one thread; target <= 50)")
        print(f"wall per call:  mean {1e3 * np.mean(times):.1f} ms, p95 {1e3 * np.percentile(times, 95):.1f} ms "
              "(includes waiting for a shared CPU)")
        for k, v in sorted(per_shape.items()):
            v = np.array(v)
            print(f"  {k:10s} n={len(v):3d}  box IoU {v[:, 0].mean():.3f}  NoC@85 {v[:, 1].mean():.2f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"samples": len(samples), "difficulty": args.difficulty, "image_size": args.image_size,
                           "box_iou": float(np.mean(box_ious)), "noc85": float(np.mean(nocs85)),
                           "noc90": float(np.mean(nocs90)), "cpu_ms": 1e3 * float(np.mean(cpu)),
                           "wall_ms": 1e3 * float(np.mean(times))}, f)


if __name__ == "__main__":
    main()
