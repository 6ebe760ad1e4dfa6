"""Notebook 03 on smoke parameters: one SFT checkpoint per paradigm that loads, its task and val metrics files."""
from __future__ import annotations

import json

import numpy as np

PARADIGMS = ("boxpoints", "polygon", "clicks")


def test_notebook_03_writes_loadable_checkpoints_and_metrics(smoke_run):
    from seglib.models import generate, load_policy

    run_dir = smoke_run.require("03")
    ckpt = run_dir / "checkpoints"
    assert (ckpt / "policy-base" / "config.json").is_file()
    for paradigm in PARADIGMS:
        out = ckpt / f"sft-{paradigm}"
        assert (out / "config.json").is_file(), f"{out}: no final model"
        assert any(out.glob("checkpoint-*")), f"{out}: no trl checkpoint"
        task = json.loads((out / "task.json").read_text())
        assert task["paradigm"] == paradigm
        metrics = json.loads((out / "val_metrics.json").read_text())
        assert metrics["n_train_rows"] > 0
        assert 0.0 <= metrics["all"]["giou"] <= 1.0 and metrics["all"]["n"] > 0
        if paradigm == "boxpoints":
            assert 0.0 <= metrics["all"]["acc05"] <= 1.0
        history = json.loads((out / "log_history.json").read_text())
        assert any("loss" in h and np.isfinite(h["loss"]) for h in history)
        model, processor = load_policy(out)
        text = generate(model, processor, [np.zeros((112, 112, 3), np.uint8)], ["the red circle"], max_new_tokens=4)
        assert len(text) == 1 and isinstance(text[0][0], str)
    # smoke.yaml's sft_init: clicks starts from the finished boxpoints policy, the others from the base
    starts = {p: json.loads((ckpt / f"sft-{p}" / "sft_done.json").read_text())["start"] for p in PARADIGMS}
    assert starts["clicks"].endswith("sft-boxpoints"), starts
    assert starts["boxpoints"].endswith("policy-base") and starts["polygon"].endswith("policy-base"), starts
    for name in ("03_dense_pretraining", "03_sft_curves", "03_before_after"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 1000
    table = (run_dir / "tables" / "03_sft_val.md").read_text()
    assert all(p in table for p in PARADIGMS) and "Acc@0.5" in table
