"""SFT step time of the embedded study policy, with and without activation checkpointing, side by side.

trl's configs turn activation (gradient) checkpointing on by default. It saves GPU
memory by recomputing each layer's forward pass during the backward pass; on a CPU
there is no memory to save, only the recomputation to pay. This script builds the
study's tiny policy (``params/study.yaml`` ``tiny_policy``) on a small generated
SynthRef, then trains the boxpoints paradigm for ``--steps`` steps of batch 16 twice
in one process, checkpointing on and off, alternating ``--reps`` times, and prints
the median seconds per step of each and their ratio (goal: off is at least 1.15x faster).

    .venv/bin/python bench/sft_step.py [--steps 30] [--reps 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy, load_for_training
    from seglib.train import sft

    study = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "study.yaml").read_text())
    options = study["sft_options"]["boxpoints"]
    work = Path(tempfile.mkdtemp(prefix="bench_sft_"))
    synthref.generate(work / "data", n_images=120, seed=0, image_size=112, difficulty="easy")
    train = [s for s in load_samples(work / "data", "train") if s.kind == "referring"]
    base = build_tiny_policy(study["tiny_policy"], sft.training_texts(["boxpoints"], train, [], study["sft_options"]),
                             work / "base")
    rows = sft.sample_rows("boxpoints", train, options)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for rep in range(args.reps):
        for mode in ("on", "off"):
            model, processor = load_for_training(base, device="cpu")
            settings = sft.SFTSettings(max_steps=args.steps, batch_size=16, save_steps=10**6, logging_steps=10**6,
                                       activation_checkpointing=(mode == "on"))
            out = sft.train_sft(model, processor, rows, None, work / f"out-{mode}-{rep}", settings)
            runtime = next(e["train_runtime"] for e in reversed(out["log_history"]) if "train_runtime" in e)
            times[mode].append(runtime / args.steps)  # trainer's own clock: the training loop, not set-up or saving
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    print(f"threads {args.threads}, {args.steps} steps of batch 16, {args.reps} reps each, {os.cpu_count()} cpus")
    print(f"checkpointing on : {on:.3f} s/step")
    print(f"checkpointing off: {off:.3f} s/step")
    print(f"speed-up (on / off): {on / off:.2f}x  (goal >= 1.15x: {'met' if on / off >= 1.15 else 'not met'})")


if __name__ == "__main__":
    main()
