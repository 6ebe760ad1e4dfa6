"""What the SAM2 backend's image cache and prompt batching buy for one GRPO group.

One image, G = 8 completions, each a box + 2 points (Seg-Zero's prompt), on the
SAM2 backend with randomly initialised sam2.1_hiera_t on CPU (timing does not
depend on the weights). Measured side by side in one run, best of ``--reps``:

  (a) naive:   set_image + predict for every prompt (the image is encoded G times);
  (b) cached:  set_image once (cache hit afterwards), then G predict calls;
  (c) batched: set_image once, one predict_many call, with the backend's default
               decode batching (one prompt per decoder call on CPU, see sam2.py);
  (c1) one decoder call: the same with all G prompts in a single decoder batch
               (``decode_batch_size=0``, the GPU default);
  limit:       the encode-once limit, straight on sam2's predictor: one
               ``SAM2ImagePredictor.set_image`` + G ``predict`` calls.

Goals: (a)/(c) >= 6 and (c) within 1.2x of the limit. Times are CPU seconds of
the process with one torch thread (``time.process_time``), so other jobs on a shared
machine do not distort the ratios the way they distort wall time.

    nice -n 10 .venv/bin/python bench/segmenter_cache.py [--reps 2] [--threads 1] [--image-size 1024]
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

import seglib  # noqa: F401  (torchvision beside CPU torch, before sam2)
from seglib.segmenters import Prompt, build_segmenter


def group_prompts(h: int, w: int, g: int, rng: np.random.Generator) -> list[Prompt]:
    out = []
    for _ in range(g):
        x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
        x1, y1 = x0 + rng.integers(w // 8, w // 2), y0 + rng.integers(h // 8, h // 2)
        pts = [(int(rng.integers(x0, x1)), int(rng.integers(y0, y1))) for _ in range(2)]
        out.append(Prompt(pts, [1, 1], (int(x0), int(y0), int(x1), int(y1))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=None, help="model input side (default: the config's 1024)")
    ap.add_argument("--config", default="configs/sam2.1/sam2.1_hiera_t.yaml")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = build_segmenter("sam2", sam2_config=args.config, image_size=args.image_size)
    predictor = seg.predictor
    default_batch = seg.decode_batch_size
    rng = np.random.default_rng(0)
    base = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    prompts = group_prompts(480, 640, args.group, rng)
    counter = [0]

    def fresh_image() -> np.ndarray:  # a new image each time, so no scenario profits from an earlier one
        counter[0] += 1
        img = base.copy()
        img[0, 0] = counter[0] % 256
        img[0, 1] = counter[0] // 256
        return img

    def naive():
        img = fresh_image()
        for p in prompts:
            seg.clear_cache()
            seg.set_image(img)
            seg.predict(p.points_xy, p.labels, p.box_xyxy)

    def cached():
        img = fresh_image()
        for p in prompts:
            seg.set_image(img)  # a cache hit after the first
            seg.predict(p.points_xy, p.labels, p.box_xyxy)

    def batched():
        img = fresh_image()
        seg.set_image(img)
        seg.predict_many(prompts)

    def one_call():
        seg.decode_batch_size = 0
        try:
            batched()
        finally:
            seg.decode_batch_size = default_batch

    def limit():
        img = fresh_image()
        predictor.set_image(img)
        for p in prompts:
            predictor.predict(np.asarray(p.points_xy, np.float32), np.asarray(p.labels), np.asarray(p.box_xyxy, np.float32))

    def timed(fn) -> float:
        # CPU time of this process (one torch thread): waiting for a shared CPU does not count
        t = time.process_time()
        fn()
        return time.process_time() - t

    timed(batched)  # warm-up (allocator, first-call overheads)
    times = {"a": [], "b": [], "c": [], "c1": [], "limit": []}
    encodes = {}
    for _ in range(args.reps):
        for key, fn in (("a", naive), ("b", cached), ("c", batched), ("c1", one_call), ("limit", limit)):
            before = seg.encode_count
            times[key].append(timed(fn))
            encodes[key] = seg.encode_count - before
    t = {k: min(v) for k, v in times.items()}
    side = seg.image_size
    print(f"SAM2 {args.config.split('/')[-1]} (random weights), input {side} px, CPU threads {args.threads}, "
          f"G = {args.group} box+2-point prompts on one 640x480 image, best of {args.reps}")
    print("CPU seconds:")
    print(f"  (a) naive   {t['a']:7.2f} s   ({encodes['a']} encodes)")
    print(f"  (b) cached  {t['b']:7.2f} s   ({encodes['b']} encode)")
    print(f"  (c) batched {t['c']:7.2f} s   ({encodes['c']} encode, predict_many, decode_batch_size={default_batch or 'all'})")
    print(f"  (c1) 1 call {t['c1']:7.2f} s   ({encodes['c1']} encode, predict_many, all {args.group} in one decoder call)")
    print(f"  limit       {t['limit']:7.2f} s   (1 encode + {args.group} decodes, raw sam2 predictor)")
    print(f"(a)/(b) = {t['a'] / t['b']:.2f}")
    print(f"(a)/(c) = {t['a'] / t['c']:.2f}   (goal >= 6)")
    print(f"(c)/limit = {t['c'] / t['limit']:.2f}   (goal <= 1.2)")
    print(f"(a)/(c1) = {t['a'] / t['c1']:.2f}, (c1)/limit = {t['c1'] / t['limit']:.2f}   (one decoder batch)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu_s": t, "encodes": encodes, "image_size": side, "group": args.group, "reps": args.reps,
                       "a_over_b": t["a"] / t["b"], "a_over_c": t["a"] / t["c"], "c_over_limit": t["c"] / t["limit"],
                       "a_over_c1": t["a"] / t["c1"], "c1_over_limit": t["c1"] / t["limit"]}, f)


if __name__ == "__main__":
    main()
