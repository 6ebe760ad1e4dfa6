"""Notebook 05 (StaR+) on smoke parameters, from an untrained tiny clicks "SFT" policy.

Runs 01 and 02 (the original F_sim trajectories), puts an untrained tiny
policy at ``checkpoints/sft-clicks`` (S_0), then resumes through 05. The
logged shares are recounted from the refined rollouts the round wrote.
"""
import json

import pytest

from seglib.runs import run_notebooks
from seglib.train.star import read_rollouts

OVERRIDES = ["star_max_samples=3", "star_eval_samples=2", "max_clicks=2", "star_sft_steps=1", "star_max_new_tokens=8"]


@pytest.mark.slow
def test_notebook_05_refines_and_retrains(tmp_path):
    from seglib.data import load_samples
    from seglib.models import build_tiny_policy

    run_dir = run_notebooks("params/smoke.yaml", OVERRIDES, only="01,02", run_name="nb05", outputs_dir=tmp_path)
    texts = [s.query for s in load_samples(run_dir / "data")][:50] + ["Positive point: (1, 2)"]
    small = {"image_size": 56, "vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32,
             "text_layers": 1, "text_heads": 2, "vocab_size": 300}
    build_tiny_policy(small, texts, run_dir / "checkpoints" / "sft-clicks")
    run_notebooks("params/smoke.yaml", OVERRIDES, only="05", run_name="nb05", outputs_dir=tmp_path, resume=True)

    star = run_dir / "checkpoints" / "star-clicks"
    done = json.loads((star / "star_done.json").read_text())
    (r,) = done["rounds"]
    refined = read_rollouts(star / "round-1" / "rollouts_refined.jsonl")
    steps = [st for ro in refined for st in ro.steps]
    assert r["n_actions"] == len(steps) > 0
    assert r["n_replaced"] == sum(st.replaced for st in steps)
    assert r["share_replaced"] == pytest.approx(r["n_replaced"] / r["n_actions"])
    n_parsed = sum(st.policy_click is not None for st in steps)
    assert r["n_unparsable"] == len(steps) - n_parsed
    assert r["dataset_size"] == r["n_original_examples"] + r["n_refined_examples"]
    assert len(r["iou_curve_policy"]) == len(r["iou_curve_refined"]) == 3  # 0, 1, 2 clicks
    assert (star / "config.json").exists() and json.loads((star / "task.json").read_text())["paradigm"] == "clicks"
    curves = json.loads((star / "eval_curves.json").read_text())
    assert len(curves) == 2
    for fig in ("05_star_rounds.png", "05_iou_vs_clicks_s0_s1.png", "05_refined_example.png"):
        assert (run_dir / "figures" / fig).stat().st_size > 0
