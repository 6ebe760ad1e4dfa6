"""seglib.train.sft: assistant-only labels, loss goes down on a fixed batch, resume from a checkpoint;
seglib.train.settings: the notebooks build their settings with the command line's builders."""
from __future__ import annotations

import json

import pytest
import torch

from seglib.models import build_tiny_policy, load_policy
from seglib.paradigms import get
from seglib.train import sft
from seglib.train.dense import DenseCollator
from seglib.train.settings import settings_for
from seglib.train.pretrain_vision import dense_targets, grid_for, scene_objects, SceneObject

TINY = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 48, "text_layers": 1,
        "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14}
OPTS = {"prompt_template": "compact", "style": "list", "think": False}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from seglib.data import load_samples, synthref

    root = tmp_path_factory.mktemp("sft")
    synthref.generate(root / "data", 12, seed=3, image_size=56)
    samples = [s for s in load_samples(root / "data") if s.kind != "reasoning"][:6]
    paradigm = get("boxpoints", OPTS)
    texts = sft.training_texts([paradigm], samples)
    path = build_tiny_policy(TINY, texts, root / "policy")
    model, processor = load_policy(path)
    scene = scene_objects(root / "data")
    rows = sft.sft_rows(paradigm.sft_examples(samples[:4]), scene, grid_for(model, processor))
    return root, path, rows


def test_labels_mask_prompt_and_keep_only_the_answer(setup):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    _, path, rows = setup
    _, processor = load_policy(path)
    collate = DenseCollator(DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True))
    batch = collate([dict(r) for r in rows[:3]])
    tok = processor.tokenizer
    for i, row in enumerate(rows[:3]):
        labels = batch["labels"][i]
        kept = labels[labels != -100]
        # exactly the answer and the end of its turn are trained; every prompt token (image included) is -100
        assert tok.decode(kept) == row["completion"][0]["content"][0]["text"] + "<|im_end|>\n"
        ids = batch["input_ids"][i][batch["attention_mask"][i] == 1]
        assert processor.image_token_id in ids.tolist()
        assert (labels[batch["input_ids"][i] == processor.image_token_id] == -100).all()
    assert batch["dense_targets"]["objectness"].shape == (3, 16)
    # the "queried target" token map covers the target of each row and nothing for an empty query
    for i, row in enumerate(rows[:3]):
        assert (batch["dense_targets"]["target"][i].sum() > 0) == (row["kind"] != "empty")


def test_dense_targets_by_hand():
    import numpy as np

    mask = np.zeros((4, 4), bool)
    mask[0:2, 0:2] = True  # fills the top-left cell of a 2x2 grid
    t = dense_targets([SceneObject(mask, (0, 0, 1, 1), "blue", "square", "large")], 4, 4, 2)
    assert t["objectness"].tolist() == [1, 0, 0, 0]
    assert t["colour"].tolist() == [3, 0, 0, 0]  # 1 + index of "blue"
    assert t["shape"].tolist() == [2, 0, 0, 0]
    assert np.allclose(t["box"][0], [0, 0, 0.5, 0.5])


def _loss_on(model, processor, rows):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    collate = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    batch = collate([{k: v for k, v in r.items() if k in ("prompt", "completion", "images")} for r in rows])
    model.eval()
    with torch.no_grad():
        return float(model(**batch).loss)


def test_a_few_steps_reduce_loss_on_a_fixed_batch(setup, tmp_path):
    _, path, rows = setup
    model, processor = load_policy(path)
    before = _loss_on(model, processor, rows)
    settings = sft.SFTSettings(max_steps=8, learning_rate=3e-3, batch_size=4, warmup_ratio=0.0,
                               lr_scheduler_type="constant", logging_steps=4, save_steps=100, eval_steps=100,
                               dense_weight=1.0, target_weight=1.0)
    res = sft.train_sft(model, processor, rows, None, tmp_path / "out", settings)
    after = _loss_on(model, processor, rows)
    assert after < before - 0.5, (before, after)
    assert any("dense_loss" in h for h in res["log_history"])
    assert any("target_loss" in h for h in res["log_history"])
    reloaded, _ = load_policy(tmp_path / "out")
    assert abs(_loss_on(reloaded, processor, rows) - after) < 1e-4


def test_resume_continues_from_the_last_checkpoint(setup, tmp_path):
    _, path, rows = setup
    out = tmp_path / "out"
    model, processor = load_policy(path)
    settings = sft.SFTSettings(max_steps=2, batch_size=2, save_steps=2, eval_steps=100, logging_steps=1)
    sft.train_sft(model, processor, rows, None, out, settings)
    assert sft.last_checkpoint(out).name == "checkpoint-2"
    model, processor = load_policy(path)
    settings.max_steps = 3
    res = sft.train_sft(model, processor, rows, None, out, settings, resume=True)
    steps = [h["step"] for h in res["log_history"] if "loss" in h]
    assert steps[-1] == 3 and 1 in steps  # the resumed trainer kept the first run's log and did one more step
    state = json.loads((sft.last_checkpoint(out) / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def test_hold_rows_show_the_finished_mask_with_a_click_inside_the_target(setup):
    import numpy as np

    from seglib import frames
    from seglib.data import load_samples
    from seglib.paradigms import clicks
    from seglib.segmenters import build_segmenter
    from seglib.trajectories import simulate

    root, _, _ = setup
    samples = [s for s in load_samples(root / "data") if s.kind == "referring"][:4]
    seg = build_segmenter("classic")
    trajs = [t for t in (simulate(s, seg, tau_stop=0.8) for s in samples) if t is not None]
    finished = [t for t in trajs if t.stop_reason == "tau_stop" and t.steps]
    assert finished, "the classic segmenter should finish some easy SynthRef trajectories"
    opts = {"prm": True, "prompt_template": "compact"}
    plain = sft.sft_rows(get("clicks", opts).sft_examples(samples, trajs))
    held = sft.sft_rows(get("clicks", opts, hold=True).sft_examples(samples, [t.to_json() for t in trajs]))
    assert len(plain) == sum(len(t.steps) for t in trajs)
    assert len(held) == len(plain) + len(finished)
    by_id = {s.sample_id: s for s in samples}
    extra = [r for r in held if r["completion"] not in [p["completion"] for p in plain]
             or r["images"][0].tobytes() not in [p["images"][0].tobytes() for p in plain]]
    assert len(extra) == len(finished)
    for row, traj in zip(extra, finished):
        s = by_id[traj.sample_id]
        action = clicks.parse(row["completion"][0]["content"][0]["text"])
        assert action is not None and action.positive
        assert action.iou == pytest.approx(round(100 * traj.ious[-1], 1) / 100, abs=1e-6)
        x, y = frames.from_grid(action.x, action.y, s.width, s.height)
        assert s.union_mask()[y, x]
        want = clicks.state_image(s.image(), traj.masks()[-1])
        assert np.array_equal(np.asarray(row["images"][0]), want)


def test_per_paradigm_settings_override_one_paradigm_and_name_bad_fields():
    base = sft.SFTSettings(max_steps=100, learning_rate=1e-3)
    over = {"clicks": {"learning_rate": 2e-3, "max_steps": 250}}
    clicks = settings_for(base, "clicks", over)
    assert (clicks.learning_rate, clicks.max_steps) == (2e-3, 250)
    assert settings_for(base, "polygon", over) == base
    assert settings_for(base, "clicks", None) == base
    with pytest.raises(ValueError, match="lr"):
        settings_for(base, "clicks", {"clicks": {"lr": 2e-3}})


def test_the_accelerate_path_builds_the_notebooks_settings():
    from seglib.train.settings import sft_settings

    tiny = sft_settings({"sft_steps": 10, "sft_dense_weight": 1.0, "sft_target_weight": 3.0})
    assert (tiny.max_steps, tiny.dense_weight, tiny.target_weight) == (10, 1.0, 3.0)
    real = sft_settings({"sft_steps": 10, "sft_target_weight": 3.0, "policy": "Qwen/Qwen2.5-VL-3B-Instruct"})
    assert real.target_weight == 0.0 and real.dense_weight == 0.0


@pytest.mark.parametrize("notebook, builder", [("03_sft.ipynb", "sft_settings"), ("04_rl_grpo.ipynb", "grpo_params")])
def test_the_notebooks_call_the_command_lines_builder_on_their_own_parameters(notebook, builder):
    """Notebooks 03/04 and ``python -m seglib.train`` build their settings with one builder (seglib.train.settings):
    the notebook calls it on its globals, and every parameter the builder reads is declared in its parameters cell."""
    import ast
    import inspect
    import re
    from pathlib import Path

    from seglib.train import settings as settings_module

    nb = json.loads((Path(__file__).parents[1] / "notebooks" / notebook).read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(re.search(rf"^\w+ = {builder}\(globals\(\)\)", c, re.M) for c in code), f"{notebook} builds its own"
    params_cell = next("".join(c["source"]) for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    declared = {t.id for node in ast.parse(params_cell).body if isinstance(node, ast.Assign) for t in node.targets}
    source = inspect.getsource(getattr(settings_module, builder))
    read = set(re.findall(r'(?:pick\(params, |params\.get\()"(\w+)"', source))
    assert read and read <= declared, sorted(read - declared)
    namespace: dict = {}
    exec(params_cell, namespace)  # the notebook's defaults through the builder, as the notebook's call does
    built = getattr(settings_module, builder)(namespace)
    if builder == "sft_settings":
        assert (built.max_steps, built.learning_rate, built.batch_size, built.eval_steps, built.save_steps) == (
            namespace["sft_steps"], namespace["sft_learning_rate"], namespace["sft_batch_size"],
            namespace["sft_eval_steps"], namespace["sft_eval_steps"])
    else:
        assert (built.max_steps, built.num_generations, built.prompts_per_step, built.seed) == (
            namespace["grpo_steps"], namespace["grpo_num_generations"], namespace["grpo_prompts_per_step"],
            namespace["seed"])


def test_start_policy_is_the_base_or_an_earlier_finished_paradigm(tmp_path):
    ckpt = tmp_path / "checkpoints"
    order = ["boxpoints", "polygon", "clicks"]
    assert sft.start_policy("polygon", "BASE", ckpt, {}, order) == "BASE"
    assert sft.start_policy("boxpoints", "BASE", ckpt, {"polygon": "boxpoints"}, order) == "BASE"
    with pytest.raises(FileNotFoundError, match="sft-boxpoints"):  # not trained (or unfinished)
        sft.start_policy("polygon", "BASE", ckpt, {"polygon": "boxpoints"}, order)
    (ckpt / "sft-boxpoints").mkdir(parents=True)
    (ckpt / "sft-boxpoints" / "sft_done.json").write_text("{}")
    assert sft.start_policy("polygon", "BASE", ckpt, {"polygon": "boxpoints"}, order) == ckpt / "sft-boxpoints"
    with pytest.raises(ValueError, match="'clicks' must be trained before 'polygon'"):
        sft.start_policy("polygon", "BASE", ckpt, {"polygon": "clicks"}, order)
    with pytest.raises(ValueError, match="itself"):
        sft.start_policy("polygon", "BASE", ckpt, {"polygon": "polygon"}, order)
    with pytest.raises(ValueError, match="LoRA"):
        sft.start_policy("polygon", "BASE", ckpt, {"polygon": "boxpoints"}, order, lora={"r": 8})


# ----------------------------------------------------------------------------- token budgets and pixel caps
def test_target_token_report_counts_texts_over_each_budget():
    from seglib.train.sft import format_token_report, target_token_report

    class Words:  # one token per word
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}

    # lengths with the end-of-turn token: "a b c" 3 + 1 = 4, "a" 1 + 1 = 2, "a b c d e" 5 + 1 = 6
    report = target_token_report(Words(), ["a b c", "a", "a b c d e"], {"short": 4, "long": 6, "tiny": 1})
    assert report == {"n": 3, "mean": 4.0, "max": 6, "over": {"short": 1, "long": 0, "tiny": 3}}
    assert "1 over short" in format_token_report(report, "polygon")


def test_max_pixels_caps_a_dynamic_resolution_processor(tmp_path):
    import json as _json

    import numpy as _np

    from seglib.models import build_tiny_policy, load_policy

    tiny = {"arch": "qwen2_5_vl", "vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32,
            "text_layers": 1, "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14}
    path = build_tiny_policy(tiny, ["the red circle"] * 8, tmp_path / "qwen")
    cfg_file = tmp_path / "qwen" / "processor_config.json"
    cfg = _json.loads(cfg_file.read_text())
    cfg["image_processor"]["size"] = {"shortest_edge": 3136, "longest_edge": 12845056}  # Qwen2.5-VL's own range
    cfg_file.write_text(_json.dumps(cfg))
    image = _np.zeros((560, 840, 3), _np.uint8)
    _, free = load_policy(path)
    _, capped = load_policy(path, max_pixels=28 * 28 * 16)
    count = lambda proc: int(proc(images=[image], text=["<|vision_start|><|image_pad|><|vision_end|>"],
                                  return_tensors="pt")["image_grid_thw"].prod()) // 4
    # 560 x 840 px at 28 px per token: 20 x 30 = 600 tokens; capped at 16 tokens' worth of pixels
    assert count(free) == 600 and count(capped) <= 16
    with pytest.raises(ValueError, match="min_pixels"):
        load_policy(path, max_pixels=100)
