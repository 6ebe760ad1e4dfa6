"""Notebook 04 (GRPO) on smoke parameters, from untrained tiny "SFT" checkpoints.

Runs 01, puts one untrained tiny policy under ``checkpoints/`` as the SFT
policy of boxpoints and clicks and as the base policy, then resumes the run
through 04 with RL-only switched on. Asserts on the files 04 wrote.
"""
import json
import shutil

import pytest

from seglib.runs import run_notebooks
from seglib.train.grpo import read_log

OVERRIDES = ["paradigms=[boxpoints, clicks]", "grpo_rl_from_base=true", "grpo_max_new_tokens=16",
             "grpo_variants=[{name: seed1, paradigm: boxpoints}]"]


@pytest.mark.slow
def test_notebook_04_trains_logs_and_compares(tmp_path):
    from seglib.data import load_samples
    from seglib.models import build_tiny_policy
    from seglib.train.settings import BASE_POLICY_DIR

    run_dir = run_notebooks("params/smoke.yaml", OVERRIDES, only="01", run_name="nb04", outputs_dir=tmp_path)
    texts = [s.query for s in load_samples(run_dir / "data")][:50] + ['{"bbox": [1, 2, 3, 4]}', "Positive point: (1, 2)"]
    small = {"image_size": 56, "vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32,
             "text_layers": 1, "text_heads": 2, "vocab_size": 300}
    base = build_tiny_policy(small, texts, run_dir / BASE_POLICY_DIR)  # where notebook 03 leaves it
    for p in ("boxpoints", "clicks"):
        shutil.copytree(base, run_dir / "checkpoints" / f"sft-{p}")
    run_notebooks("params/smoke.yaml", OVERRIDES, only="04", run_name="nb04", outputs_dir=tmp_path, resume=True)

    ckpts = run_dir / "checkpoints"
    for name, components in [("grpo-boxpoints", ["segzero_think_format", "segzero_points", "star_accuracy"]),
                             ("grpo-boxpoints-rlonly", ["segzero_bbox_iou"]),
                             ("grpo-clicks", ["clicks_format", "clicks_iou_gain"]),
                             ("grpo-boxpoints-seed1", ["segzero_think_format", "star_accuracy"])]:
        done = json.loads((ckpts / name / "grpo_done.json").read_text())
        assert done["steps"] == 1 and (ckpts / name / "config.json").exists()
        assert json.loads((ckpts / name / "task.json").read_text())["paradigm"] == name.split("-")[1]
        assert done["params"]["seed"] == (1 if name.endswith("-seed1") else 0)  # a variant named seed1: seed 1
        log = [e for e in read_log(ckpts / name) if "reward" in e]
        assert len(log) == 1 and "completions/mean_length" in log[0] and "reward_time_s" in log[0]
        for c in components:
            assert c in done["components"]
    assert done["resumed_from"] is None
    assert "grpo-boxpoints-seed1" in json.loads((run_dir / "rl_eval" / "04_sft_vs_rl.json").read_text())["reward_share"]
    result = json.loads((run_dir / "rl_eval" / "04_sft_vs_rl.json").read_text())
    seen = {(m["checkpoint"], m["split"]) for m in result["metrics"] if m["kind"] == "all"}
    for ck in ("sft-boxpoints", "grpo-boxpoints", "grpo-boxpoints-rlonly", "grpo-boxpoints-seed1", "sft-clicks",
               "grpo-clicks"):
        assert {(ck, "val"), (ck, "test_reasoning")} <= seen, ck
    assert all(0 <= m["giou"] <= 100 for m in result["metrics"])
    for fig in ("04_training_curves.png", "04_before_after_boxpoints.png", "04_before_after_clicks.png"):
        assert (run_dir / "figures" / fig).stat().st_size > 0
