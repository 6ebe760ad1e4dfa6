"""SynthRef tiers side by side: how many F_sim clicks the weightless segmenter needs, and what box + points give.

For each difficulty (default: easy and the multi-part tier ``parts``) it generates ``--images`` SynthRef images,
all in the val split, and over every val sample with a target measures:

- F_sim clicks alone, as notebook 02 simulates them (``seglib.trajectories.simulate``: empty start,
  at most 20 clicks, stop at IoU 0.98, a click that lowers IoU ends the trajectory): mean NoC@85, NoC@90
  (capped at 20) and mean IoU after 1 / 3 / 5 clicks (a stopped trajectory keeps its mask);
- the boxpoints paradigm's oracle answer (each target's GT box + Seg-Zero's two representative points)
  decoded through the segmenter (``boxpoints.decode``): mean IoU (gIoU) against the union of the targets;
- a stand-in for a predicted answer: each box corner coordinate moved by a uniform ±15 % of the box side
  (then clipped to the image), and the second point moved to a pixel off the target inside the moved
  box (the first such pixel of a seeded random order; kept where the box holds none): gIoU.

Goals for the ``parts`` tier (its DIFFICULTIES entry): NoC@85 >= 3 (one click is not enough) while the GT box +
points still give gIoU >= 0.8.

    nice -n 19 .venv/bin/python bench/bench_synthref_tier.py [--images 300] [--difficulties easy parts] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from seglib.data import load_samples, synthref  # noqa: E402
from seglib.masks import mask_iou  # noqa: E402
from seglib.metrics import noc  # noqa: E402
from seglib.paradigms.boxpoints import format as fmt  # noqa: E402
from seglib.segmenters import build_segmenter  # noqa: E402
from seglib.trajectories import simulate  # noqa: E402
from seglib.trajectories.summaries import iou_curve  # noqa: E402

JITTER = 0.15  # × box side: how far each predicted box corner coordinate may move


def perturbed_objects(masks: list[np.ndarray], rng: np.random.Generator) -> list[fmt.BoxPoints]:
    """The predicted-answer stand-in (module docstring): jittered boxes, second point off the target."""
    out = []
    for obj, m in zip(fmt.objects_from_masks(masks, n_points=2), [m for m in masks if m.any()]):
        h, w = m.shape
        x0, y0, x1, y1 = obj.box
        sw, sh = x1 - x0 + 1, y1 - y0 + 1
        dx = rng.uniform(-JITTER, JITTER, 2) * sw
        dy = rng.uniform(-JITTER, JITTER, 2) * sh
        bx0, bx1 = sorted(np.clip([x0 + dx[0], x1 + dx[1]], 0, w - 1))
        by0, by1 = sorted(np.clip([y0 + dy[0], y1 + dy[1]], 0, h - 1))
        box = tuple(float(v) for v in (round(bx0), round(by0), round(bx1), round(by1)))
        off = np.zeros_like(m)
        off[int(box[1]): int(box[3]) + 1, int(box[0]): int(box[2]) + 1] = True
        ys, xs = np.nonzero(off & ~m)
        points = list(obj.points)
        if len(xs):
            i = int(rng.permutation(len(xs))[0])
            points[1] = (float(xs[i]), float(ys[i]))
        out.append(fmt.BoxPoints(box=box, points=tuple(points)))
    return out


def box_points_iou(seg, sample, image: np.ndarray, objects: list[fmt.BoxPoints]) -> float:
    pred = fmt.decode(fmt.Answer(tuple(objects)), sample.height, sample.width, segmenter=seg, image=image)
    return mask_iou(pred, sample.union_mask())


def measure(samples, max_clicks: int = 20, seed: int = 0) -> dict:
    """The figures of the module docstring over ``samples`` (those with a target)."""
    seg = build_segmenter("classic")
    noc85, noc90, curves, gt_ious, pert_ious = [], [], [], [], []
    for s in samples:
        image, masks = s.image(), s.target_masks()
        traj = simulate(s, seg, max_clicks=max_clicks, image=image)
        noc85.append(noc(traj.ious[1:], 0.85, max_clicks))
        noc90.append(noc(traj.ious[1:], 0.90, max_clicks))
        curves.append(iou_curve(traj, max_clicks))
        gt_ious.append(box_points_iou(seg, s, image, fmt.objects_from_masks(masks, n_points=2)))
        rng = np.random.default_rng([seed, zlib.crc32(str(s.sample_id).encode())])
        pert_ious.append(box_points_iou(seg, s, image, perturbed_objects(masks, rng)))
    curves = np.array(curves)
    return {"samples": len(samples), "noc85": float(np.mean(noc85)), "noc90": float(np.mean(noc90)),
            "iou_at": {str(k): float(curves[:, k - 1].mean()) for k in (1, 3, 5)},
            "gt_box_points_iou": float(np.mean(gt_ious)), "perturbed_box_points_iou": float(np.mean(pert_ious)),
            "share_one_click_below_85": float(np.mean(curves[:, 0] < 0.85))}


def tier_samples(tmp: str, difficulty: str, n_images: int, image_size: int, seed: int) -> tuple[list, int]:
    """``n_images`` generated images, all val; the samples with a target (and the number of images)."""
    data = os.path.join(tmp, difficulty)
    synthref.generate(data, n_images, seed=seed, image_size=image_size, difficulty=difficulty,
                      split_fractions={"val": 1.0})
    samples = [s for s in load_samples(data, split="val") if s.target_rles]
    return samples, len({s.image_path for s in samples})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300, help="images per difficulty (all val)")
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--difficulties", nargs="+", default=["easy", "parts"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="small sizes (40 images per difficulty; under a minute)")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()
    n_images = 40 if args.quick else args.images

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for diff in args.difficulties:
            t0 = time.perf_counter()
            samples, n_img = tier_samples(tmp, diff, n_images, args.image_size, args.seed)
            row = {"difficulty": diff, "images": n_img, **measure(samples, args.max_clicks, args.seed)}
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
    print(f"SynthRef val, {n_images} images per tier, {args.image_size} px, classic segmenter, F_sim max "
          f"{args.max_clicks} clicks")
    head = ["tier", "samples", "NoC@85", "NoC@90", "IoU@1", "IoU@3", "IoU@5", "GT box+pts", "pert. box+pts"]
    print(" ".join(f"{h:>13}" for h in head))
    for r in rows:
        vals = [r["difficulty"], r["samples"], f"{r['noc85']:.2f}", f"{r['noc90']:.2f}",
                *(f"{r['iou_at'][k]:.3f}" for k in ("1", "3", "5")),
                f"{r['gt_box_points_iou']:.3f}", f"{r['perturbed_box_points_iou']:.3f}"]
        print(" ".join(f"{v:>13}" for v in vals))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images": n_images, "image_size": args.image_size, "max_clicks": args.max_clicks,
                       "rows": rows}, f)


if __name__ == "__main__":
    main()
