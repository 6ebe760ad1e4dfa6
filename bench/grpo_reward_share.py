"""The reward's share of a GRPO step, with the segmenter in the loop (goal ≤ 15 %).

Trains the embedded tiny policy (``seglib.models.build_tiny_policy`` defaults)
for a few GRPO steps on a small SynthRef, with the default ("classic")
segmenter, for the two rewards that call the segmenter:

- boxpoints, list style, StAR's tiered mask-IoU reward (box + point → mask);
- clicks, SegAgent's IoU gain (all clicks so far + the new one → mask).

Each reward scores a group with one ``set_image`` and one ``predict_many``
(``seglib.rewards``). An untrained policy writes nothing parsable, and an
unparsable answer never reaches the segmenter, which would make the share
look free. So, by default (``--valid-answers``), every completion that does not
parse is scored as a valid answer instead: the ground-truth objects moved by a
few random pixels (boxpoints) or a random click (clicks). Every completion then
costs a segmenter call: the worst case. (The rewards then carry no learning
signal; this script only times.) The share is Σ reward time / Σ step time over the
measured steps (trl's ``step_time`` covers generation, reward, loss and
backward); the first step is left out as warm-up. Both numbers come from the
same run. Usage::

    nice -n 10 .venv/bin/python bench/grpo_reward_share.py [--steps 4] [--segmenter classic]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import seglib  # noqa: F401  (torchvision shim)


def valid_answer_scorer(paradigm: str, scorer, seed: int = 0):
    """Wrap a group scorer: unparsable completions are replaced by valid jittered answers before scoring."""
    import json

    import numpy as np

    from seglib.clicker import Click
    from seglib.masks import decode_rle
    from seglib.paradigms import boxpoints, clicks

    rng = np.random.default_rng(seed)

    def fake(row: dict) -> str:
        h, w = int(row["height"]), int(row["width"])
        if paradigm == "clicks":
            return clicks.target_text(Click(int(rng.integers(w)), int(rng.integers(h)), bool(rng.integers(2))), w, h)
        rles = row["target_rles"]
        rles = json.loads(rles) if isinstance(rles, str) else rles
        objs = boxpoints.objects_from_masks([decode_rle(r) for r in rles], n_points=1)
        moved = []
        for o in objs:
            d = rng.integers(-4, 5, size=2)
            box = tuple(float(np.clip(v + d[i % 2], 0, (w, h)[i % 2] - 1)) for i, v in enumerate(o.box))
            pts = tuple((float(np.clip(x + d[0], 0, w - 1)), float(np.clip(y + d[1], 0, h - 1))) for x, y in o.points)
            moved.append(boxpoints.BoxPoints(box=box, points=pts, label=o.label))
        return boxpoints.target_text(moved, w, h, style="list")

    parse = clicks.parse if paradigm == "clicks" else boxpoints.parse

    def score(texts, row):
        texts = [t if parse(t) is not None else fake(row) for t in texts]
        return scorer(texts, row)

    return score


def measure(paradigm: str, rewards: list[str], policy: str, data_dir: Path, out_dir: Path, segmenter, args) -> dict:
    from seglib.data import load_samples
    from seglib.train.grpo import GRPOParams, grpo_rows, paradigm_scorer, read_log, train_grpo

    samples = load_samples(data_dir, split="train")[: args.prompts * (args.steps + 1)]
    options = {"style": "list"} if paradigm == "boxpoints" else {}
    rows = grpo_rows(paradigm, samples, options, segmenter=segmenter, max_history=2, seed=0)
    scorer, components = paradigm_scorer(paradigm, rewards, segmenter)
    if args.valid_answers:
        scorer = valid_answer_scorer(paradigm, scorer)
    params = GRPOParams(num_generations=args.g, prompts_per_step=args.prompts, max_steps=args.steps,
                        max_completion_length=args.max_len, save_steps=10_000, learning_rate=1e-5)
    t0 = time.perf_counter()
    train_grpo(policy, rows, scorer, components, out_dir, params)
    wall = time.perf_counter() - t0
    log = [e for e in read_log(out_dir) if "reward_time_s" in e and "step_time" in e][1:]  # drop warm-up step
    reward_s = sum(e["reward_time_s"] for e in log)
    step_s = sum(e["step_time"] for e in log)
    return {"paradigm": paradigm, "rewards": "+".join(rewards), "steps": len(log), "reward_s": reward_s,
            "step_s": step_s, "share": reward_s / step_s if step_s else float("nan"), "wall_s": wall,
            "mean_len": sum(e.get("completions/mean_length", 0) for e in log) / max(len(log), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="GRPO steps per paradigm (the first is warm-up)")
    ap.add_argument("--g", type=int, default=8, help="group size G")
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--max-len", type=int, default=48, help="max completion tokens")
    ap.add_argument("--segmenter", default="classic")
    ap.add_argument("--policy", default=None, help="a checkpoint to start from (default: a fresh tiny policy)")
    ap.add_argument("--valid-answers", action=argparse.BooleanOptionalAction, default=True,
                    help="score unparsable completions as valid jittered answers (worst case)")
    args = ap.parse_args()

    from seglib.data import synthref
    from seglib.models import build_tiny_policy
    from seglib.paradigms import boxpoints, clicks
    from seglib.segmenters import build_segmenter

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthref.generate(tmp / "data", n_images=24, seed=0, image_size=112)
        from seglib.data import load_samples

        samples = load_samples(tmp / "data", split="train")
        texts = [boxpoints.target_for_sample(s, style="list") for s in samples] + [
            clicks.prompt(s) for s in samples] + [boxpoints.prompt(s, style="list") for s in samples]
        policy = args.policy or build_tiny_policy(None, texts, tmp / "policy")
        seg = build_segmenter(args.segmenter)
        results = [
            measure("boxpoints", ["star"], policy, tmp / "data", tmp / "grpo-boxpoints", seg, args),
            measure("clicks", ["clicks"], policy, tmp / "data", tmp / "grpo-clicks", seg, args),
        ]
    print(f"\nreward share of a GRPO step, tiny policy, segmenter={args.segmenter}, G={args.g}, "
          f"{args.prompts} prompts/step, max {args.max_len} tokens, valid answers: {args.valid_answers} "
          f"(goal <= 15%)")
    print(f"{'paradigm':<10} {'reward':<8} {'steps':>5} {'reward s':>9} {'step s':>8} {'share':>7} {'len':>5}")
    for r in results:
        print(f"{r['paradigm']:<10} {r['rewards']:<8} {r['steps']:>5} {r['reward_s']:>9.3f} {r['step_s']:>8.2f} "
              f"{100 * r['share']:>6.1f}% {r['mean_len']:>5.1f}")


if __name__ == "__main__":
    main()
