"""Multi-process training on an existing engine: ``accelerate launch`` with two CPU processes (gloo).

``python -m seglib.train {sft,grpo}`` runs a few steps of the tiny policy on a
tiny SynthRef under ``accelerate launch --config_file configs/accelerate/cpu_2proc.yaml``.
Checks: both ranks wrote their record after the training call returned (a
world of 2, gloo, distinct processes, the same step count), the two replicas
ended with the same weights (gradients were synchronised), and the saved
checkpoint reloads with ``seglib.models.load_policy`` and holds those weights.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import seglib  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"
TINY = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
        "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14, "max_position_embeddings": 512}
SMALL_GRPO = ["-p", "grpo_num_generations=2", "-p", "grpo_prompts_per_step=1", "-p", "grpo_max_completion_length=8",
              "-p", "grpo_max_train_samples=4"]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(stage: str, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--config_file", str(CONFIG),
           "--main_process_port", str(_free_port()), "-m", "seglib.train", stage, "--params",
           str(ROOT / "params" / "smoke.yaml"), "--run-dir", str(run_dir), "--paradigm", "boxpoints", *extra]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _ranks(out_dir: Path) -> list[dict]:
    files = sorted((out_dir / "ranks").glob("rank-*.json"))
    return [json.loads(f.read_text()) for f in files]


def _weights_sum(model) -> float:
    from seglib.train.__main__ import weights_sum

    return weights_sum(model)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder with a 6-image SynthRef and a tiny untrained base policy (where notebooks 01/03 leave them)."""
    from seglib.config import load_params
    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy
    from seglib.paradigms import get
    from seglib.train.sft import training_texts

    run = tmp_path_factory.mktemp("mp") / "run"
    synthref.generate(run / "data", 6, 0, image_size=64, progress=False)
    options = load_params(ROOT / "params" / "smoke.yaml").get("sft_options") or {}
    texts = training_texts([get("boxpoints", options.get("boxpoints"))], load_samples(run / "data", "train"), [])
    build_tiny_policy(TINY, texts, run / "checkpoints" / "policy-base")
    return run


def _check_both_ranks(out_dir: Path, stage: str, steps: int) -> list[dict]:
    ranks = _ranks(out_dir)
    assert [r["process_index"] for r in ranks] == [0, 1]
    assert all(r["num_processes"] == 2 and r["backend"] == "gloo" and r["stage"] == stage for r in ranks)
    assert len({r["pid"] for r in ranks}) == 2
    assert [r["global_step"] for r in ranks] == [steps, steps]
    return ranks


def test_sft_then_grpo_on_two_processes(run_dir):
    from seglib.models import load_policy
    from seglib.train.launch import launch_accelerate

    base, _ = load_policy(run_dir / "checkpoints" / "policy-base")
    base_sum = _weights_sum(base)

    _launch("sft", run_dir, "--max-steps", "2", "-p", "sft_eval_samples=1")
    sft_dir = run_dir / "checkpoints" / "sft-boxpoints"
    ranks = _check_both_ranks(sft_dir, "sft", 2)
    # the replicas were kept in sync by the gradient all-reduce, and training changed them
    assert ranks[0]["weights_sum"] == pytest.approx(ranks[1]["weights_sum"], rel=1e-12)
    assert ranks[0]["weights_sum"] != pytest.approx(base_sum, rel=1e-9)
    model, processor = load_policy(sft_dir)
    assert _weights_sum(model) == pytest.approx(ranks[0]["weights_sum"], rel=1e-9)
    assert json.loads((sft_dir / "task.json").read_text())["paradigm"] == "boxpoints"
    state = json.loads((sft_dir / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2

    # GRPO through the helper notebooks use with `launcher: accelerate` (streams the launcher's output)
    launch_accelerate("grpo", run_dir, CONFIG, params_file=ROOT / "params" / "smoke.yaml", paradigms=["boxpoints"],
                      resume=False, overrides=[o for o in SMALL_GRPO if o != "-p"], extra_args=["--max-steps", "2"])
    grpo_dir = run_dir / "checkpoints" / "grpo-boxpoints"
    _check_both_ranks(grpo_dir, "grpo", 2)
    assert json.loads((grpo_dir / "grpo_done.json").read_text())["steps"] == 2
    model, processor = load_policy(grpo_dir)
    assert processor.tokenizer is not None and sum(p.numel() for p in model.parameters()) > 0
