"""Notebook 02 on smoke parameters (after 01): the trajectory files, checked against values
recomputed from the dataset (F_sim's first click, IoU of every stored mask, NoC)."""
import json

import numpy as np
import pytest

from seglib.clicker import next_click
from seglib.data import load_samples
from seglib.masks import decode_rle, mask_iou
from seglib.metrics import noc
from seglib.paradigms import clicks


@pytest.mark.slow
def test_notebook_02_writes_checked_trajectories(smoke_run):
    run_dir = smoke_run.require("02")
    train = load_samples(run_dir / "data", split="train")
    with_target = {s.sample_id: s for s in train if s.target_rles}
    assert with_target and len(with_target) < len(train)  # smoke data has empty queries too
    lines = (run_dir / "trajectories" / "train.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    # one trajectory per sample with a target, none for empty ones
    assert sorted(r["sample_id"] for r in records) == sorted(with_target)
    params = json.loads((run_dir / "run.json").read_text())["params"]
    tau_stop, max_clicks = params["tau_stop"], params["max_clicks"]
    multi_steps = []
    for r in records:
        s = with_target[r["sample_id"]]
        gt = s.union_mask()
        assert r["start"] == "empty" and r["ious"][0] == 0.0
        assert r["n_steps"] == len(r["steps"]) == len(r["ious"]) - 1 >= 1
        assert r["stop_reason"] in {"tau_stop", "max_clicks", "small_gain", "no_click"}
        if r["stop_reason"] == "tau_stop":
            assert r["ious"][-1] >= tau_stop
        first = next_click(gt, np.zeros_like(gt))
        assert r["steps"][0]["click"] == [first.x, first.y, first.positive]
        for k, step in enumerate(r["steps"]):
            mask = decode_rle(step["mask_rle"])
            assert mask.shape == gt.shape
            assert step["iou"] == pytest.approx(mask_iou(mask, gt)) == pytest.approx(r["ious"][k + 1])
            action = clicks.parse(step["action"])
            x, y, positive = step["click"]
            assert action is not None and action.positive == positive
            back = clicks.to_click(action, s.height, s.width)
            assert abs(back.x - x) <= 1 and abs(back.y - y) <= 1
        if s.kind == "multi":
            multi_steps.append(r["n_steps"])
    assert all(n >= 2 for n in multi_steps)  # a union of several objects needs a click on each
    assert (run_dir / "trajectories" / "val.jsonl").is_file()
    summary = json.loads((run_dir / "trajectories" / "summary.json").read_text())
    overall = next(row for row in summary["noc"]["train"] if row["group"] == "all")
    assert overall["NoC@85"] == pytest.approx(np.mean([noc(r["ious"][1:], 0.85, max_clicks) for r in records]))
    assert overall["NoC@85"] <= 4 and summary["box_points_mean_iou"] >= 0.85
    for name in ("02_trajectory_strip", "02_iou_vs_clicks", "02_stop_reasons"):
        png = run_dir / "figures" / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
