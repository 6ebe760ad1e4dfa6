"""SFT step time of the embedded study policy, with and without activation checkpointing, side by side.

trl's configs turn activation (gradient) checkpointing on by default. It saves GPU
memory by recomputing each layer's forward pass during the backward pass; on a CPU
there is no memory to save, only the recomputation to pay. This script builds the
study's tiny policy (``params/study.yaml`` ``tiny_policy``) on a small generated
SynthRef, then trains the boxpoints paradigm (``--paradigm``, with the study's ``sft_options``;
rows: ``seglib.train.sft.sft_rows`` of its ``sft_examples``) for ``--steps`` steps of batch 16 twice
in one process, checkpointing on and off, alternating ``--reps`` times, and prints the median
seconds per step of each and their ratio (goal: off is at least 1.15x faster).

    .venv/bin/python bench/sft_step.py [--steps 30] [--reps 2] [--threads 2] [--paradigm boxpoints]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paradigm", default="boxpoints",
                    help="the paradigm trained (one whose SFT needs no F_sim trajectories)")
    ap.add_argument("--images", type=int, default=120, help="SynthRef images generated")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy, load_for_training
    from seglib.paradigms import get
    from seglib.train import sft

    study = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "study.yaml").read_text())
    paradigm = get(args.paradigm, study["sft_options"].get(args.paradigm))
    work = Path(tempfile.mkdtemp(prefix="bench_sft_"))
    synthref.generate(work / "data", n_images=args.images, seed=0, image_size=112, difficulty="easy")
    train = [s for s in load_samples(work / "data", "train") if s.kind == "referring"]
    base = build_tiny_policy(study["tiny_policy"], sft.training_texts([paradigm], train), work / "base")
    rows = sft.sft_rows(paradigm.sft_examples(train))
    if not rows:
        raise SystemExit(f"{args.paradigm}: no SFT rows without F_sim trajectories; choose another --paradigm")
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
    print(f"{paradigm.name}, threads {args.threads}, {args.steps} steps of batch 16, {args.reps} reps each, "
          f"{os.cpu_count()} cpus")
    print(f"checkpointing on : {on:.3f} s/step")
    print(f"checkpointing off: {off:.3f} s/step")
    print(f"speed-up (on / off): {on / off:.2f}x  (goal >= 1.15x: {'met' if on / off >= 1.15 else 'not met'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"paradigm": paradigm.name, "steps": args.steps, "reps": args.reps,
                                               "threads": args.threads, "on_s_per_step": on, "off_s_per_step": off,
                                               "speedup": on / off}))


if __name__ == "__main__":
    main()
