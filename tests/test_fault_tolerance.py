"""Fault tolerance: killed long steps resume, bad inputs give short errors, low disk stops cleanly.

- SIGKILL during trajectory simulation, inference and SFT, then resume: nothing
  written before is lost or duplicated, and the final file equals an
  uninterrupted run's (GRPO's kill test lives in tests/test_grpo.py).
- Corrupt or missing inputs each give one error naming the file and the record
  (a truncated PNG, an annotation pointing at a missing image, an empty mask, a
  wrong type or an unknown key in a parameter file, a checkpoint that does not
  exist), printed by ``python -m seglib`` as one line without a traceback.
- ``check_free_space`` refuses to write when the disk is short, and the
  training entry point calls it before any checkpoint is written.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

import seglib  # noqa: F401  (torchvision beside CPU torch)
from seglib.data import DataError, load_samples, synthref
from seglib.masks import encode_rle

ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _dataset(path: Path, n_images: int = 10, size: int = 64) -> Path:
    synthref.generate(path, n_images, 0, image_size=size, progress=False)
    return path


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _run_and_kill(script: str, ready, timeout: float = 240.0) -> None:
    """Start ``script`` in a fresh interpreter, SIGKILL it as soon as ``ready()`` holds."""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=CHILD_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:]
            pytest.fail(f"the child ended (rc {proc.returncode}) before it could be killed:\n{err}")
        assert ready(), "the child never reached the point to kill it at"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- SIGKILL: trajectories
_TRAJ_CHILD = textwrap.dedent("""
    import time
    import seglib
    from seglib.data import load_samples
    from seglib.segmenters import build_segmenter
    from seglib.trajectories import simulate_split

    class Slow:
        # the classic segmenter, 0.3 s slower per image, so the parent can kill between lines
        def __init__(self, seg):
            self._seg = seg
        def __getattr__(self, name):
            return getattr(self._seg, name)
        def set_image(self, image):
            time.sleep(0.3)
            return self._seg.set_image(image)

    samples = load_samples({data!r}, split="train")
    simulate_split(samples, Slow(build_segmenter("classic")), {out!r}, max_clicks=5, seed=3, progress=False)
""")


@pytest.mark.slow
def test_sigkill_during_trajectory_simulation_then_resume(tmp_path):
    from seglib.segmenters import build_segmenter
    from seglib.trajectories import read_trajectories, simulate_split

    data = _dataset(tmp_path / "data")
    samples = load_samples(data, split="train")
    reference = tmp_path / "reference.jsonl"
    ref_summary = simulate_split(samples, build_segmenter("classic"), reference, max_clicks=5, seed=3, progress=False)
    assert ref_summary["written"] >= 8

    out = tmp_path / "killed.jsonl"
    _run_and_kill(_TRAJ_CHILD.format(data=str(data), out=str(out)), lambda: _lines(out) >= 3)
    kept = _lines(out)
    assert 3 <= kept < ref_summary["written"]
    with open(out, "ab") as fh:  # a write cut in the middle of a line, as a kill during write() leaves it
        fh.write(b'{"sample_id": "99-0", "height": 64, "wid')

    summary = simulate_split(samples, build_segmenter("classic"), out, max_clicks=5, seed=3, progress=False)
    assert summary["skipped_done"] == kept
    assert summary["written"] == ref_summary["written"] - kept
    ids = [t.sample_id for t in read_trajectories(out)]
    assert len(ids) == len(set(ids)) == ref_summary["written"]
    assert out.read_bytes() == reference.read_bytes()


# ----------------------------------------------------------------------------- SIGKILL: inference
TINY = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
        "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14, "max_position_embeddings": 256}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny policy saved as ``checkpoints/sft-polygon`` (its answers are noise, which is fine here)."""
    from seglib.models import build_tiny_policy

    out = tmp_path_factory.mktemp("ckpt") / "sft-polygon"
    texts = ["Segment the red circle.", "[[12, 30], [40, 31], [25, 50]]", "Outline the blue square."] * 4
    build_tiny_policy(TINY, texts, out)
    (out / "task.json").write_text(json.dumps({"paradigm": "polygon"}))
    return out


_INFER_CHILD = textwrap.dedent("""
    import time
    import seglib
    from seglib.data import load_samples
    from seglib.inference import load_checkpoint_policy, load_task, predict_split

    policy = load_checkpoint_policy({ckpt!r}, max_new_tokens=12, temperature=1.0, top_p=0.9, batch_size=1)
    generate = policy.__call__

    class Slow:
        # the policy, 0.4 s slower per call, so the parent can kill between lines; reseed and the recorded
        # generation settings pass through
        reseed = staticmethod(policy.reseed)
        settings = staticmethod(policy.settings)
        def __call__(self, *args, **kwargs):
            time.sleep(0.4)
            return generate(*args, **kwargs)

    samples = load_samples({data!r}, split="train")
    predict_split(samples, Slow(), None, load_task({ckpt!r}), {run!r}, "sft-polygon", "vote", n_samples=2,
                  seed=5, batch_size=1, progress=False)
""")


@pytest.mark.slow
def test_sigkill_during_inference_then_resume(tiny_checkpoint, tmp_path):
    """Sampled answers (vote) are reseeded per sample, so a resumed file equals an uninterrupted one byte for byte."""
    from seglib.inference import load_checkpoint_policy, load_task, predict_split, read_predictions

    data = _dataset(tmp_path / "data", n_images=6)
    samples = load_samples(data, split="train")
    spec = load_task(tiny_checkpoint)
    policy = load_checkpoint_policy(tiny_checkpoint, max_new_tokens=12, temperature=1.0, top_p=0.9, batch_size=1)
    kwargs = dict(n_samples=2, seed=5, batch_size=1, progress=False)
    reference = predict_split(samples, policy, None, spec, tmp_path / "ref", "sft-polygon", "vote", **kwargs)

    run = tmp_path / "killed"
    path = run / "predictions" / reference.name
    script = _INFER_CHILD.format(ckpt=str(tiny_checkpoint), data=str(data), run=str(run))
    _run_and_kill(script, lambda: _lines(path) >= 2)
    kept = _lines(path)
    assert 2 <= kept < len(samples)
    with open(path, "ab") as fh:
        fh.write(b'{"sample_id": "torn", "checkpo')

    predict_split(samples, policy, None, spec, run, "sft-polygon", "vote", **kwargs)
    ids = [r["sample_id"] for r in read_predictions(path)]
    assert len(ids) == len(set(ids)) == len(samples)
    assert path.read_bytes() == reference.read_bytes()


# ----------------------------------------------------------------------------- SIGKILL: SFT
_SFT_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {test_dir!r})
    import seglib
    from test_fault_tolerance import sft_inputs
    from seglib.train.sft import train_sft

    model, processor, rows, settings = sft_inputs({policy!r}, {data!r})
    # one second per step (a task-eval hook that only sleeps), so the parent can kill between checkpoints
    train_sft(model, processor, rows, None, {out!r}, settings, eval_fn=lambda m: time.sleep(1.0) or {{}}, eval_every=1)
""")


def sft_inputs(policy: str, data: str):
    """(model, processor, rows, settings) of a small SFT run: 8 boxpoints rows, batch 2, 8 steps, a checkpoint every 2."""
    from seglib.models import load_policy
    from seglib.paradigms import get
    from seglib.train.sft import SFTSettings, sft_rows

    model, processor = load_policy(policy)
    rows = sft_rows(get("boxpoints").sft_examples(load_samples(data, split="train")))
    settings = SFTSettings(max_steps=8, batch_size=2, save_steps=2, save_total_limit=None, logging_steps=1,
                           eval_steps=1000, learning_rate=1e-3, seed=0)
    return model, processor, rows, settings


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from seglib.models import build_tiny_policy

    out = tmp_path_factory.mktemp("base") / "base"
    texts = ["Segment the red circle.", '<think>one</think><answer>{"bbox": [1, 2, 3, 4]}</answer>'] * 4
    build_tiny_policy(TINY, texts, out)
    return out


def _safetensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_during_sft_then_resume(tiny_base, tmp_path):
    """Killed after a checkpoint, SFT resumes from it and ends with the weights of an uninterrupted run."""
    import torch

    from seglib.train.common import last_checkpoint
    from seglib.train.sft import train_sft

    data = _dataset(tmp_path / "data", n_images=6)
    reference = tmp_path / "reference"
    model, processor, rows, settings = sft_inputs(str(tiny_base), str(data))
    train_sft(model, processor, rows, None, reference, settings)

    out = tmp_path / "killed"
    script = _SFT_CHILD.format(test_dir=str(Path(__file__).parent), policy=str(tiny_base), data=str(data),
                               out=str(out))
    _run_and_kill(script, lambda: (out / "checkpoint-4" / "trainer_state.json").is_file())
    assert not (out / "model.safetensors").exists()  # killed before the end
    resumed_from = last_checkpoint(out)
    assert resumed_from is not None and int(resumed_from.name.split("-")[1]) in (4, 6)

    model, processor, rows, settings = sft_inputs(str(tiny_base), str(data))
    result = train_sft(model, processor, rows, None, out, settings, resume=True)
    steps = [e["step"] for e in result["log_history"] if "loss" in e]
    assert steps == list(range(1, 9))  # the checkpoint's history, then the rest: no step lost or trained twice
    a, b = _safetensors(reference), _safetensors(out)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")


# ----------------------------------------------------------------------------- corrupt or missing inputs
@pytest.fixture
def dataset(tmp_path) -> Path:
    return _dataset(tmp_path / "data", n_images=6)


def test_truncated_png_names_the_file_and_the_sample(dataset):
    samples = load_samples(dataset)
    s = samples[0]
    png = Path(s.image_path)
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    with pytest.raises(DataError) as err:
        s.image()
    msg = str(err.value)
    assert str(png) in msg and f"sample {s.sample_id}" in msg and "truncated" in msg
    assert "\n" not in msg


def test_annotation_pointing_at_a_missing_image_names_the_file_and_the_ref(dataset):
    samples = load_samples(dataset)
    s = samples[0]
    Path(s.image_path).unlink()
    with pytest.raises(DataError) as err:
        load_samples(dataset)
    msg = str(err.value)
    assert s.image_path in msg and f"ref {s.meta['ref_id']}" in msg and "missing" in msg


def test_empty_mask_of_a_target_names_the_file_and_the_annotation(dataset):
    inst_path = dataset / "instances.json"
    instances = json.loads(inst_path.read_text())
    refs = json.loads((dataset / "refs.json").read_text())
    target = next(r for r in refs if r.get("ann_ids"))
    ann_id = target["ann_ids"][0]
    ann = next(a for a in instances["annotations"] if a["id"] == ann_id)
    ann["segmentation"] = encode_rle(np.zeros((64, 64), dtype=bool))
    inst_path.write_text(json.dumps(instances))
    with pytest.raises(DataError) as err:
        load_samples(dataset)
    msg = str(err.value)
    assert str(inst_path) in msg and f"annotation {ann_id}" in msg and "empty" in msg


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from seglib.__main__ import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.err


def test_wrong_type_in_params_file_is_one_line_naming_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\nn_images: sixty\n")
    rc, err = _cli(["run", str(bad), "--outputs", str(tmp_path / "out")], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'n_images'" in err and "sixty" in err and str(bad) in err
    assert not (tmp_path / "out").exists()  # refused before a run folder was made


def test_unknown_parameter_is_one_line_naming_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\nn_imagez: 60\n")
    rc, err = _cli(["run", str(bad), "--outputs", str(tmp_path / "out")], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'n_imagez'" in err and str(bad) in err and "n_images" in err  # lists the valid keys
    assert not (tmp_path / "out").exists()


def test_checkpoint_path_that_does_not_exist_is_named(tmp_path):
    from seglib.models import load_policy

    missing = tmp_path / "run" / "checkpoints" / "sft-boxpoints"
    with pytest.raises((FileNotFoundError, OSError, ValueError)) as err:
        load_policy(str(missing))
    msg = str(err.value)
    assert str(missing) in msg and ("does not exist" in msg or "not found" in msg)


# ----------------------------------------------------------------------------- disk
Usage = namedtuple("Usage", "total used free")


def test_check_free_space_stops_cleanly_with_a_clear_message(tmp_path, monkeypatch):
    from seglib.runs import RunError, check_free_space

    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 * 2**30, 10 * 2**30 - 5 * 2**20, 5 * 2**20))
    target = tmp_path / "checkpoints" / "sft-boxpoints"  # does not exist yet: its existing parent is probed
    with pytest.raises(RunError) as err:
        check_free_space(target, 100 * 2**20)
    msg = str(err.value)
    assert str(target) in msg and "100 MiB" in msg and "5 MiB free" in msg
    check_free_space(target, 1 * 2**20)  # enough: no error
    assert not target.exists()


def test_training_entry_point_checks_disk_before_any_checkpoint(tiny_base, tmp_path, monkeypatch, capsys):
    """``python -m seglib.train sft`` stops with one line naming the folder before writing anything there."""
    from seglib.train.__main__ import main

    run = tmp_path / "run"
    _dataset(run / "data", n_images=6)
    shutil.copytree(tiny_base, run / "checkpoints" / "policy-base")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 * 2**30, 10 * 2**30 - 2**10, 2**10))
    rc = main(["sft", "--params", str(ROOT / "params" / "smoke.yaml"), "--run-dir", str(run),
               "--paradigm", "boxpoints", "--max-steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    out_dir = run / "checkpoints" / "sft-boxpoints"
    assert "not enough disk space" in err and str(out_dir) in err and "Traceback" not in err
    assert not out_dir.exists()


def test_training_checks_disk_space_before_the_first_checkpoint(tmp_path, monkeypatch):
    """The notebooks' training path (not only the CLI) stops before writing when the disk is short."""
    import torch

    from seglib.runs import RunError
    from seglib.train import check_checkpoint_space

    model = torch.nn.Linear(100, 100)  # 10,100 fp32 parameters: 40,400 bytes of weights
    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage(10**9, 10**9 - 100_000, 100_000))
    with pytest.raises(RunError, match="not enough disk space"):  # (40,400 + 80,800) × 2 + 40,400 > 100,000
        check_checkpoint_space(model, tmp_path / "ckpt", keep=2)
    check_checkpoint_space(torch.nn.Linear(10, 10), tmp_path / "ckpt", keep=2)  # 440 B of weights fit
