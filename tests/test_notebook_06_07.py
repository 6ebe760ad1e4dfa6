"""Notebooks 06 (inference) and 07 (evaluation) on smoke parameters.

The first test needs no trained checkpoint: it runs 01, puts one untrained
tiny polygon policy under ``checkpoints/`` (a run that has only some
checkpoints), then resumes the run through 06 and 07. The second asserts on
the session-wide smoke pipeline (01 → 07) when it ran.
"""
import json

import pytest

from seglib.evaluation import METRICS_SCHEMA_VERSION
from seglib.inference import REQUIRED_KEYS, read_predictions
from seglib.runs import run_notebooks

OVERRIDES = ["inference_max_samples=1", "inference_max_new_tokens=16", "vote_n=2"]
ENTRY_KEYS = {"checkpoint", "stage", "paradigm", "strategy", "file", "n", "parse_rate", "overall", "splits",
              "acc_at_05", "clicks", "vote_curve", "search"}
CLAIM_KEYS = {"paper", "claim", "published", "measured", "split", "seed", "kinds", "a", "b", "n", "delta_giou",
              "delta_ciou", "ci95_giou", "verdict", "budget"}


def check_metrics(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"schema_version", "conventions", "predictions", "comparisons", "claims"}
    assert metrics["schema_version"] == METRICS_SCHEMA_VERSION
    for e in metrics["predictions"].values():
        assert set(e) == ENTRY_KEYS
    # one row per claim (Seg-Zero's RL-alone claim: one per split), more for second seeds the run has
    assert len(metrics["claims"]) >= 10 and all(set(c) == CLAIM_KEYS for c in metrics["claims"])
    for name in ("results.md", "claims.md", "comparisons.md", "curves.md"):
        assert (run_dir / "tables" / name).stat().st_size > 0
    return metrics


def test_notebooks_06_07_with_one_untrained_checkpoint(tmp_path):
    from seglib.data import load_samples
    from seglib.models import build_tiny_policy

    run_dir = run_notebooks("params/smoke.yaml", OVERRIDES, only="01", run_name="nb0607", outputs_dir=tmp_path)
    texts = [s.query for s in load_samples(run_dir / "data")][:50] + ["[[0.1,0.2],[0.3,0.4],[0.5,0.6]]"] * 5
    small = {"image_size": 56, "vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 64,
             "text_layers": 2, "text_heads": 2, "vocab_size": 300}
    build_tiny_policy(small, texts, run_dir / "checkpoints" / "sft-polygon")
    run_notebooks("params/smoke.yaml", OVERRIDES, only="06,07", run_name="nb0607", outputs_dir=tmp_path,
                  resume=True)
    preds = run_dir / "predictions"
    assert sorted(p.name for p in preds.glob("*.jsonl")) == ["sft-polygon-greedy.jsonl", "sft-polygon-vote.jsonl"]
    greedy = read_predictions(preds / "sft-polygon-greedy.jsonl")
    assert {r["split"] for r in greedy} == {"test", "test_reasoning"} and len(greedy) == 2
    assert all(set(REQUIRED_KEYS) <= set(r) for r in greedy)
    vote = read_predictions(preds / "sft-polygon-vote.jsonl")
    assert all(len(r["samples"]) == 2 and r["vote"]["n"] == 2 for r in vote)
    metrics = check_metrics(run_dir)
    assert set(metrics["predictions"]) == {"sft-polygon-greedy", "sft-polygon-vote"}
    assert all(c["verdict"] == "not measured" for c in metrics["claims"])  # no second stage, no boxpoints, no clicks
    assert (run_dir / "figures" / "07_giou_bars.png").stat().st_size > 0
    assert (run_dir / "06_inference.ipynb").is_file() and (run_dir / "07_evaluation.ipynb").is_file()


@pytest.mark.slow
def test_smoke_pipeline_predicts_every_checkpoint_and_scores_it(smoke_run):
    run_dir = smoke_run.require("07")
    from seglib.inference import find_checkpoints

    checkpoints = [p.name for p in find_checkpoints(run_dir)]
    files = sorted(p.stem for p in (run_dir / "predictions").glob("*.jsonl"))
    for ckpt in checkpoints:
        assert f"{ckpt}-greedy" in files, (ckpt, files)
    metrics = check_metrics(run_dir)
    assert set(metrics["predictions"]) == set(files)
