"""The reward's share of a GRPO step, with the segmenter in the loop (goal ≤ 15 %).

Trains the embedded tiny policy (``seglib.models.build_tiny_policy`` defaults)
for a few GRPO steps on a small SynthRef, with the default ("classic")
segmenter, for each paradigm of ``--paradigms`` with its reward (``MEASURED``). By default the two
rewards that call the segmenter:

- boxpoints, list style, StAR's tiered mask-IoU reward (box + point → mask);
- clicks, SegAgent's IoU gain (all clicks so far + the new one → mask).

The rows are the paradigm's ``rl_rows``; the rewards are its ``score_group`` through
``seglib.rewards.reward_functions`` (one ``set_image`` and one ``predict_many`` per group).
An untrained policy writes nothing parsable, and an unparsable answer never
reaches the segmenter, which would make the share look free. So, by default
(``--valid-answers``), every completion the paradigm's ``parse`` rejects is scored as a valid answer
instead: the paradigm's ``oracle_answer`` for the sample's ground truth moved by a few
random pixels, written by its ``target_text`` (boxpoints: jittered boxes and points; clicks: F_sim's
click on the moved target). Every completion then costs a segmenter call: the worst
case. (The rewards then carry no learning signal; this script only times.) The
share is Σ reward time / Σ step time over the measured steps (trl's
``step_time`` covers generation, reward, loss and backward); the first step is
left out as warm-up. Both numbers come from the same run. Usage::

    nice -n 10 .venv/bin/python bench/grpo_reward_share.py [--steps 4] [--segmenter classic] \\
        [--paradigms boxpoints clicks]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import seglib  # noqa: F401  (torchvision shim)

#: paradigm → (its options, the rewards measured); a paradigm not listed runs with no options and its
#: ``default_rewards``
MEASURED = {"boxpoints": ({"style": "list"}, ["star"]), "clicks": ({}, ["clicks"])}
DEFAULT_PARADIGMS = ("boxpoints", "clicks")
JITTER_PX = 4
VALID_COLUMN = "bench_valid_texts"


def jittered(sample, rng, px: int = JITTER_PX):
    """``sample`` with every target mask moved by one random offset of at most ``px`` pixels (zero fill)."""
    import numpy as np

    from seglib.masks import encode_rle

    dx, dy = (int(v) for v in rng.integers(-px, px + 1, size=2))
    moved = []
    for m in sample.target_masks():
        out = np.zeros_like(m)
        h, w = m.shape
        out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = m[max(-dy, 0):h + min(-dy, 0),
                                                                       max(-dx, 0):w + min(-dx, 0)]
        moved.append(out)
    if not any(m.any() for m in moved):  # moved out of the image: keep the ground truth
        return sample
    return dataclasses.replace(sample, target_rles=[encode_rle(m) for m in moved])


def valid_texts(paradigm, sample, n: int, rng, segmenter=None) -> list[str]:
    """``n`` texts ``paradigm`` parses: its oracle answer for jittered copies of ``sample``'s ground truth."""
    image = sample.image()
    texts: list[str] = []
    for _ in range(4 * n):
        state = paradigm.start(jittered(sample, rng), image)
        answer = paradigm.oracle_answer(state, segmenter)
        if answer is None:
            continue
        text = paradigm.target_text(state, answer)
        if paradigm.parse(text) is not None:
            texts.append(text)
        if len(texts) == n:
            break
    return texts


def rows_with_valid_texts(paradigm, samples, segmenter, n: int, max_history: int, seed: int) -> list[dict]:
    """``paradigm.rl_rows``, one sample at a time, each row carrying ``n`` valid texts of its sample."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i, s in enumerate(samples):
        try:
            sample_rows = paradigm.rl_rows([s], segmenter=segmenter, max_history=max_history, seed=seed + i)
        except ValueError:  # no usable row for this sample (e.g. no target)
            continue
        texts = valid_texts(paradigm, s, n, rng, segmenter)
        rows += [{**r, VALID_COLUMN: texts} for r in sample_rows]
    if not rows:
        raise ValueError(f"no GRPO rows for paradigm {paradigm.name!r}")
    return rows


def valid_answer_scorer(paradigm, scorer):
    """Wrap a group scorer: completions ``paradigm.parse`` rejects become the row's valid texts before scoring."""

    def score(texts, row):
        row = dict(row)
        valid = row.pop(VALID_COLUMN, None)
        valid = json.loads(valid) if isinstance(valid, str) else (valid or [])
        if valid:
            texts = [t if paradigm.parse(t) is not None else valid[i % len(valid)] for i, t in enumerate(texts)]
        return scorer(texts, row)

    return score


def plain_scorer(scorer):
    """Wrap a group scorer: the benchmark's column is left out of the row."""

    def score(texts, row):
        return scorer(texts, {k: v for k, v in row.items() if k != VALID_COLUMN})

    return score


def measure(paradigm, rewards: list[str], policy: str, data_dir: Path, out_dir: Path, segmenter, args) -> dict:
    from seglib.data import load_samples
    from seglib.rewards import reward_functions
    from seglib.train.common import read_log
    from seglib.train.grpo import GRPOParams, train_grpo

    samples = load_samples(data_dir, split="train")[: args.prompts * (args.steps + 1)]
    rows = rows_with_valid_texts(paradigm, samples, segmenter, args.g if args.valid_answers else 0,
                                 max_history=2, seed=0)
    adapter = reward_functions(paradigm, segmenter, rewards)
    scorer = valid_answer_scorer(paradigm, adapter.scorer) if args.valid_answers else plain_scorer(adapter.scorer)
    params = GRPOParams(num_generations=args.g, prompts_per_step=args.prompts, max_steps=args.steps,
                        max_completion_length=args.max_len, save_steps=10_000, learning_rate=1e-5)
    t0 = time.perf_counter()
    train_grpo(policy, rows, scorer, adapter.components, out_dir, params, paradigm=paradigm)
    wall = time.perf_counter() - t0
    log = [e for e in read_log(out_dir) if "reward_time_s" in e and "step_time" in e][1:]  # drop warm-up step
    reward_s = sum(e["reward_time_s"] for e in log)
    step_s = sum(e["step_time"] for e in log)
    return {"paradigm": paradigm.name, "rewards": "+".join(rewards), "steps": len(log), "reward_s": reward_s,
            "step_s": step_s, "share": reward_s / step_s if step_s else float("nan"), "wall_s": wall,
            "mean_len": sum(e.get("completions/mean_length", 0) for e in log) / max(len(log), 1)}


def tokenizer_texts(paradigms, samples) -> list[str]:
    """What the tiny policy's tokenizer is trained on: each paradigm's prompts and ground-truth answers."""
    texts = []
    for p in paradigms:
        for s in samples:
            state = p.start(s)
            answer = p.oracle_answer(state)
            texts.append(p.prompt(s))
            if answer is not None:
                texts.append(p.target_text(state, answer))
    return texts


def main() -> None:
    from seglib.paradigms import PARADIGMS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="GRPO steps per paradigm (the first is warm-up)")
    ap.add_argument("--g", type=int, default=8, help="group size G")
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--max-len", type=int, default=48, help="max completion tokens")
    ap.add_argument("--segmenter", default="classic")
    ap.add_argument("--paradigms", nargs="+", default=list(DEFAULT_PARADIGMS), choices=PARADIGMS,
                    help="paradigms to measure (options and rewards: MEASURED, else none and the defaults)")
    ap.add_argument("--policy", default=None, help="a checkpoint to start from (default: a fresh tiny policy)")
    ap.add_argument("--valid-answers", action=argparse.BooleanOptionalAction, default=True,
                    help="score unparsable completions as valid jittered answers (worst case)")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args()

    from seglib import paradigms as registry
    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy
    from seglib.segmenters import build_segmenter

    chosen = []
    for name in args.paradigms:
        options, rewards = MEASURED.get(name, ({}, None))
        p = registry.get(name, options)
        chosen.append((p, list(rewards or p.default_rewards)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthref.generate(tmp / "data", n_images=24, seed=0, image_size=112)
        samples = load_samples(tmp / "data", split="train")
        policy = args.policy or build_tiny_policy(None, tokenizer_texts([p for p, _ in chosen], samples),
                                                  tmp / "policy")
        seg = build_segmenter(args.segmenter)
        results = [measure(p, rewards, policy, tmp / "data", tmp / f"grpo-{p.name}", seg, args)
                   for p, rewards in chosen]
    print(f"\nreward share of a GRPO step, tiny policy, segmenter={args.segmenter}, G={args.g}, "
          f"{args.prompts} prompts/step, max {args.max_len} tokens, valid answers: {args.valid_answers} "
          f"(goal <= 15%)")
    print(f"{'paradigm':<12} {'reward':<14} {'steps':>5} {'reward s':>9} {'step s':>8} {'share':>7} {'len':>5}")
    for r in results:
        print(f"{r['paradigm']:<12} {r['rewards']:<14} {r['steps']:>5} {r['reward_s']:>9.3f} {r['step_s']:>8.2f} "
              f"{100 * r['share']:>6.1f}% {r['mean_len']:>5.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"segmenter": args.segmenter, "g": args.g, "steps": args.steps,
                                               "valid_answers": args.valid_answers, "rows": results}))


if __name__ == "__main__":
    main()
