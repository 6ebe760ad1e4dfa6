"""Greedy evaluation time per sample at a small and a large generation batch, side by side, with the answers compared.

Notebooks 03 and 04 score every checkpoint greedily (``seglib.train.sft_eval.evaluate_policy``,
``seglib.train.rl_stage.predict_checkpoints``) and notebook 06 runs whole test splits; on 2 CPU cores one
``generate`` call over many prompts costs far less per prompt than many calls over few. This script builds
the study's tiny policy (``params/study.yaml`` ``tiny_policy``) on a small generated SynthRef, trains it
for ``--sft-steps`` boxpoints SFT steps (so that answers end at a realistic length rather than at the
token limit), then evaluates the same ``--samples`` val samples at batch ``--small`` and ``--large``,
alternating ``--reps`` times, and prints the median milliseconds per sample of each, their ratio (goal:
the large batch is at least 1.5x faster) and the share of samples whose answer text is the same at both.

    .venv/bin/python bench/eval_batch.py [--samples 128] [--reps 2] [--small 8] [--large 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=128, help="val samples evaluated at each batch size")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--small", type=int, default=8)
    ap.add_argument("--large", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sft-steps", type=int, default=60)
    ap.add_argument("--images", type=int, default=600, help="SynthRef images generated")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy, load_for_training
    from seglib.paradigms import get
    from seglib.segmenters import build_segmenter
    from seglib.train import sft
    from seglib.train.sft_eval import evaluate_policy

    study = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "study.yaml").read_text())
    paradigm = get("boxpoints", study["sft_options"]["boxpoints"])
    work = Path(tempfile.mkdtemp(prefix="bench_eval_batch_"))
    synthref.generate(work / "data", n_images=args.images, seed=0, image_size=112, difficulty="easy")
    train = [s for s in load_samples(work / "data", "train") if s.kind == "referring"]
    val = [s for s in load_samples(work / "data", "val") if s.kind == "referring"][:args.samples]
    if len(val) < args.samples:
        raise SystemExit(f"only {len(val)} referring val samples for --samples {args.samples}; raise --images")
    base = build_tiny_policy(study["tiny_policy"], sft.training_texts([paradigm], train), work / "base")
    model, processor = load_for_training(base, device="cpu")
    settings = sft.SFTSettings(max_steps=args.sft_steps, batch_size=16, learning_rate=1e-3, save_steps=10**6,
                               logging_steps=10**6)
    sft.train_sft(model, processor, sft.sft_rows(paradigm.sft_examples(train)), None, work / "sft", settings)
    model.eval()
    segmenter = build_segmenter("classic")
    times: dict[int, list[float]] = {args.small: [], args.large: []}
    texts: dict[int, list[str]] = {}
    for _ in range(args.reps):
        for batch in (args.small, args.large):
            t0 = time.perf_counter()
            rows = evaluate_policy(model, processor, paradigm, val, segmenter, max_new_tokens=160, batch_size=batch)
            times[batch].append(1000 * (time.perf_counter() - t0) / len(val))
            texts[batch] = [r["text"] for r in rows]
    small, large = statistics.median(times[args.small]), statistics.median(times[args.large])
    same = sum(a == b for a, b in zip(texts[args.small], texts[args.large])) / len(val)
    print(f"boxpoints after {args.sft_steps} SFT steps, {len(val)} val samples, threads {args.threads}, "
          f"{args.reps} reps each, {os.cpu_count()} cpus")
    print(f"batch {args.small:>3}: {small:.1f} ms/sample")
    print(f"batch {args.large:>3}: {large:.1f} ms/sample")
    print(f"speed-up ({args.small} / {args.large}): {small / large:.2f}x  "
          f"(goal >= 1.5x: {'met' if small / large >= 1.5 else 'not met'})")
    print(f"same answer text at both sizes: {same:.3f} of samples")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": len(val), "reps": args.reps, "threads": args.threads,
                                               "small": args.small, "large": args.large, "small_ms": small,
                                               "large_ms": large, "speedup": small / large, "same": same}))


if __name__ == "__main__":
    main()
