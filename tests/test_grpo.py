"""GRPO/GSPO/REST over trl (seglib.train.grpo, .rest): REST selection by hand, tiny-policy runs, checkpoints, resume;
each paradigm's GRPO rows and rewards (Paradigm.rl_rows / score_group through seglib.rewards)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seglib.paradigms import get
from seglib.rewards import ComponentRewards, reward_functions
from seglib.train.common import last_checkpoint, make_dataset, read_log
from seglib.train.grpo import GRPOParams, train_grpo
from seglib.train.rest import rest_select, take_rows

TINY = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
        "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14, "max_position_embeddings": 256}
TEXTS = ["Segment the red circle.", "Positive point: (412, 377)", "Negative point: (88, 901)",
         '<think>one object</think><answer>{"bbox": [1, 2, 3, 4]}</answer>']


def build_tiny(out_dir: Path, arch: str = "llava") -> str:
    from seglib.models import build_tiny_policy

    return build_tiny_policy({**TINY, "arch": arch}, TEXTS * 4, out_dir)


def toy_rows(n: int = 4) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"prompt": "Segment the red circle.", "image": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
             "sample_id": f"s{i}", "target": "(4"} for i in range(n)]


def toy_scorer(texts, row):
    """Two components: a count of the target's characters, and a length term; both in [0, 1]."""
    return [{"has_target": sum(ch in row["target"] for ch in t) / max(len(t), 1),
             "short": 1.0 / (1.0 + len(t))} for t in texts]


COMPONENTS = ["has_target", "short"]


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> str:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "policy")


# ----------------------------------------------------------------------------- REST selection
def test_rest_select_hand_made():
    #            idx: 0    1   2  3   4   5
    adv = torch.tensor([0.5, -1., 2., 0., -3., 1.])
    # bottom 2: -3 (4), -1 (1); top 2: 2 (2), 1 (5)
    assert rest_select(adv, group_size=6, keep=4) == [1, 2, 4, 5]
    # two groups of 3, keep 2: per group the min and the max
    assert rest_select(adv, group_size=3, keep=2) == [1, 2, 4, 5]
    # odd m: the extra one goes to the top
    assert rest_select([0., 1., 2., 3.], group_size=4, keep=3) == [0, 2, 3]
    # ties: stable order (first occurrence counts as lower)
    assert rest_select([1., 1., 1., 1.], group_size=4, keep=2) == [0, 3]
    with pytest.raises(ValueError):
        rest_select([1., 2., 3.], group_size=2, keep=2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(2, 8), st.data())
def test_rest_select_keeps_the_extremes(n_groups, group_size, data):
    keep = data.draw(st.integers(1, group_size))
    adv = data.draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n_groups * group_size,
                             max_size=n_groups * group_size))
    kept = rest_select(adv, group_size, keep)
    assert len(kept) == n_groups * keep and kept == sorted(set(kept))
    low = keep // 2
    for g in range(n_groups):
        idx = range(g * group_size, (g + 1) * group_size)
        k = [i for i in idx if i in kept]
        d = [i for i in idx if i not in kept]
        assert len(k) == keep
        ranked = sorted(adv[i] for i in k)
        # every dropped advantage lies between the kept bottom block and the kept top block
        for i in d:
            if low:
                assert adv[i] >= ranked[low - 1]
            assert adv[i] <= ranked[low]


def test_take_rows_keeps_rows_and_images():
    batch = {
        "prompt_ids": torch.arange(8).view(4, 2),
        "completion_ids": torch.arange(12).view(4, 3),
        "completion_mask": torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]]),
        "advantages": torch.tensor([0.1, -1.0, 1.0, 0.0]),
        "num_items_in_batch": torch.tensor(9),
        # Qwen-style: 2 patches per image, one image per row
        "pixel_values": torch.arange(8).float().view(8, 1),
        "image_grid_thw": torch.tensor([[1, 1, 2]] * 4),
        "num_images": [1, 1, 1, 1],
    }
    out = take_rows(batch, [1, 2])
    assert out["completion_ids"].tolist() == [[3, 4, 5], [6, 7, 8]]
    assert out["advantages"].tolist() == [-1.0, 1.0]
    assert out["pixel_values"].flatten().tolist() == [2.0, 3.0, 4.0, 5.0]
    assert out["image_grid_thw"].shape == (2, 3) and out["num_images"] == [1, 1]
    assert int(out["num_items_in_batch"]) == 1 + 3


def test_component_rewards_score_each_group_once():
    calls = []

    def scorer(texts, row):
        calls.append((row["sample_id"], len(texts)))
        return [{"a": 1.0, "b": float(len(t))} for t in texts]

    cr = ComponentRewards(scorer, ["a", "b"])
    fa, fb = cr.functions()
    completions = [[{"role": "assistant", "content": t}] for t in ["x", "yy", "zzz", "w"]]
    kw = {"sample_id": ["p", "p", "q", "q"]}
    assert fa(completions=completions, **kw) == [1.0, 1.0, 1.0, 1.0]
    assert fb(completions=completions, **kw) == [1.0, 2.0, 3.0, 1.0]
    assert calls == [("p", 2), ("q", 2)]  # one scorer call per group, shared by both components


def test_gspo_shorthand_resolves_to_trl_fields():
    p = GRPOParams(gspo=True).resolved()
    assert (p.importance_sampling_level, p.loss_type, p.epsilon, p.epsilon_high) == ("sequence", "grpo", 3e-4, 4e-4)
    with pytest.raises(ValueError):
        GRPOParams(num_generations=4, rest_keep=6).resolved()


# ----------------------------------------------------------------------------- tiny-policy runs
class _Capture:
    def __init__(self):
        from transformers import TrainerCallback

        outer = self
        self.args = None

        class Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                outer.args = args

        self.callback = Cb()


def test_grpo_steps_write_checkpoint_and_log(tiny_policy, tmp_path):
    out = tmp_path / "grpo-toy"
    params = GRPOParams(num_generations=2, prompts_per_step=2, max_steps=2, save_steps=2, max_completion_length=6,
                        learning_rate=1e-3, beta=0.01, reward_weights={"short": 0.5})
    saved = train_grpo(tiny_policy, toy_rows(), toy_scorer, COMPONENTS, out, params)
    assert Path(saved) == out
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    assert (out / "config.json").exists() and (out / "grpo_done.json").exists()
    log = [e for e in read_log(out) if "reward" in e]
    assert [e["step"] for e in log] == [1, 2]
    for key in ("rewards/has_target/mean", "rewards/short/mean", "completions/mean_length", "kl", "reward_time_s",
                "step_time"):
        assert all(key in e for e in log), key
    # the weighted total trl optimises is 1 * has_target + 0.5 * short
    for e in log:
        assert e["reward"] == pytest.approx(e["rewards/has_target/mean"] + 0.5 * e["rewards/short/mean"], abs=1e-5)
    # the saved folder loads like any checkpoint
    from seglib.models import load_policy

    model, _ = load_policy(out)
    assert sum(p.numel() for p in model.parameters()) > 0
    # a finished folder is returned, not retrained
    assert train_grpo(tiny_policy, toy_rows(), toy_scorer, COMPONENTS, out, params) == str(out)


def test_gspo_flag_reaches_trl(tiny_policy, tmp_path):
    cap = _Capture()
    params = GRPOParams(gspo=True, num_generations=2, prompts_per_step=1, max_steps=1, save_steps=10,
                        max_completion_length=4, num_iterations=2)
    train_grpo(tiny_policy, toy_rows(2), toy_scorer, COMPONENTS, tmp_path / "gspo", params, callbacks=[cap.callback])
    assert cap.args.importance_sampling_level == "sequence"
    assert cap.args.loss_type == "grpo" and cap.args.epsilon == 3e-4 and cap.args.epsilon_high == 4e-4


def test_rest_trains_on_kept_rollouts(tiny_policy, tmp_path):
    params = GRPOParams(num_generations=4, rest_keep=2, prompts_per_step=1, max_steps=1, save_steps=10,
                        max_completion_length=4)
    out = tmp_path / "rest"
    train_grpo(tiny_policy, toy_rows(2), toy_scorer, COMPONENTS, out, params)
    log = [e for e in read_log(out) if "reward" in e]
    assert log and log[0]["rest/kept_fraction"] == pytest.approx(0.5)


def test_lora_run_saves_merged_weights(tiny_policy, tmp_path):
    from safetensors.torch import load_file

    params = GRPOParams(num_generations=2, prompts_per_step=1, max_steps=1, save_steps=10, max_completion_length=4,
                        learning_rate=1e-2, lora={"r": 4, "lora_alpha": 4})
    out = tmp_path / "lora"
    train_grpo(tiny_policy, toy_rows(2), toy_scorer, COMPONENTS, out, params)
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    before, after = load_file(Path(tiny_policy) / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(before) == set(after)  # plain weights, same names: LoRA merged, no separate merge step
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all("vision" not in k for k in changed)  # the vision tower is left out of LoRA


def test_qwen2_5_vl_tiny_policy_runs(tmp_path):
    policy = build_tiny(tmp_path / "qwen", arch="qwen2_5_vl")
    params = GRPOParams(num_generations=4, rest_keep=2, prompts_per_step=1, max_steps=1, save_steps=10,
                        max_completion_length=4, beta=0.01)
    train_grpo(policy, toy_rows(2), toy_scorer, COMPONENTS, tmp_path / "rest-qwen", params)
    assert (tmp_path / "rest-qwen" / "grpo_done.json").exists()


# ----------------------------------------------------------------------------- kill and resume
_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {test_dir!r})
    import seglib
    from test_grpo import toy_rows, toy_scorer, COMPONENTS
    from seglib.train.grpo import GRPOParams, train_grpo

    import random
    rnd = random.Random(0)

    def slow_scorer(texts, row):  # random rewards: non-zero advantages, so the weights move every step
        time.sleep(0.3)
        return [{{"has_target": rnd.random(), "short": 0.0}} for t in texts]

    params = GRPOParams(num_generations=2, prompts_per_step=1, max_steps=12, save_steps=2, save_total_limit=None,
                        max_completion_length=4, learning_rate=1e-2)
    train_grpo({policy!r}, toy_rows(), slow_scorer, COMPONENTS, {out!r}, params)
""")


@pytest.mark.slow
def test_sigkill_after_checkpoint_then_resume(tiny_policy, tmp_path):
    out = tmp_path / "grpo-kill"
    script = _CHILD.format(test_dir=str(Path(__file__).parent), policy=tiny_policy, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            ckpt = last_checkpoint(out)
            if ckpt and int(ckpt.name.rsplit("-", 1)[1]) >= 4:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    steps_logged = max(e["step"] for e in read_log(out))
    ckpt_step = int(last_checkpoint(out).name.rsplit("-", 1)[1])
    assert not (out / "grpo_done.json").exists()
    assert steps_logged - ckpt_step <= 2  # at most one save interval (save_steps=2) lost

    params = GRPOParams(num_generations=2, prompts_per_step=1, max_steps=12, save_steps=2, save_total_limit=None,
                        max_completion_length=4)
    from transformers import AutoModelForImageTextToText, TrainerCallback

    saved = AutoModelForImageTextToText.from_pretrained(last_checkpoint(out)).state_dict()
    base = AutoModelForImageTextToText.from_pretrained(tiny_policy).state_dict()
    seen = {}

    class WeightsAtResume(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            sd = model.state_dict()
            seen["checkpoint"] = all(torch.equal(sd[k], v) for k, v in saved.items())
            seen["base"] = all(torch.equal(sd[k], v) for k, v in base.items())

    train_grpo(tiny_policy, toy_rows(), toy_scorer, COMPONENTS, out, params, callbacks=[WeightsAtResume()])
    # training continues from the checkpoint's weights (transformers 5.23 alone would restart from the base's)
    assert seen == {"checkpoint": True, "base": False}
    done = json.loads((out / "grpo_done.json").read_text())
    assert done["steps"] == 12
    assert done["resumed_from"].endswith(f"checkpoint-{ckpt_step}")
    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12


# ----------------------------------------------------------------------------- paradigm rows and rewards
def test_paradigm_rows_score_the_sft_target_at_the_maximum(tmp_path):
    from seglib.data import load_samples, synthref
    from seglib.paradigms import boxpoints, polygon

    synthref.generate(tmp_path / "data", n_images=6, seed=0, image_size=112)
    samples = load_samples(tmp_path / "data", split="train")
    rows = get("boxpoints").rl_rows(samples)
    adapter = reward_functions(get("boxpoints"), None, ["segzero", "visionreasoner"])
    scorer, components = adapter.scorer, adapter.components
    assert components[:5] == ["segzero_think_format", "segzero_answer_format", "segzero_bbox_iou",
                              "segzero_bbox_l1", "segzero_points"]
    make_dataset(rows)  # every column is storable
    for s, row in zip(samples, rows):
        best, junk = scorer([boxpoints.target_for_sample(s), "no answer"], row)
        if len(s.target_rles) == 1:  # Seg-Zero style: five binary rewards, all earned by the SFT target
            assert row["style"] == "segzero" and sum(best.values()) == 5.0 and set(best) == set(components[:5])
            assert sum(junk.values()) == 0.0
        else:  # list style (multi / empty): VisionReasoner's format 3 + accuracy 3 + non-repeat 1
            assert row["style"] == "list" and best == {"visionreasoner_format": 3.0, "visionreasoner_accuracy": 3.0,
                                                       "visionreasoner_non_repeat": 1.0}
    rows = get("polygon").rl_rows(samples)
    scorer = reward_functions(get("polygon")).scorer
    outlined = reward_functions(get("polygon", outline=True)).scorer  # traced contours decode onto themselves
    for s, row in zip(samples, rows):
        best, junk = scorer([polygon.target_for_sample(s), "no answer"], row)
        # pycocotools alone drops the right column and bottom row: a small target keeps about half its IoU
        assert best["simpleseg_iou"] > 0.5 and best["simpleseg_format"] == 1.0 and junk["simpleseg_format"] == 0.0
        assert outlined([polygon.target_for_sample(s)], row)[0]["simpleseg_iou"] > 0.7


def test_segmenter_rewards_encode_once_and_predict_once_per_group(tmp_path):
    """StAR's reward for a group of G answers: one image encoding, one ``predict_many`` holding all G prompts."""
    from seglib.data import load_samples, synthref
    from seglib.paradigms import boxpoints
    from seglib.segmenters import build_segmenter

    synthref.generate(tmp_path / "data", n_images=4, seed=1, image_size=112)
    by_image = {s.image_path: s for s in load_samples(tmp_path / "data", split="train") if s.target_rles}
    samples = list(by_image.values())[:2]  # two different images: each must be encoded exactly once
    seg = build_segmenter("classic")
    calls = []
    original = seg.predict_many

    def counting(prompts):
        calls.append(len(prompts))
        return original(prompts)

    seg.predict_many = counting
    rows = get("boxpoints", style="list").rl_rows(samples)
    scorer = reward_functions(get("boxpoints", style="list"), seg, ["star"]).scorer
    for s, row in zip(samples, rows):
        texts = [boxpoints.target_for_sample(s, style="list")] * 4
        encodes, calls[:] = seg.encode_count, []
        scores = scorer(texts, row)
        n_objects = len(s.target_rles)
        assert seg.encode_count - encodes == 1 and calls == [4 * n_objects]
        assert all(sc["star_accuracy"] > 0 for sc in scores)


def test_rows_show_the_policy_the_image_its_frame_implies(tmp_path):
    """Seg-Zero's resize shrinks the image (SFT and GRPO alike); ``resize_image: false`` keeps it, coarse frame only."""
    from seglib.data import load_samples, synthref
    from seglib.train.sft import sft_rows

    synthref.generate(tmp_path / "data", n_images=3, seed=0, image_size=112)
    samples = [s for s in load_samples(tmp_path / "data", split="train") if len(s.target_rles) == 1][:2]
    for opts, side in (({"resize": 56}, 56), ({"resize": 28, "resize_image": False}, 112), ({}, 112)):
        opts = {"style": "segzero", **opts}
        paradigm = get("boxpoints", opts)
        assert [np.asarray(r["image"]).shape[:2] for r in paradigm.rl_rows(samples)] == [(side, side)] * 2
        assert [r["images"][0].size for r in sft_rows(paradigm.sft_examples(samples))] == [(side, side)] * 2
    coarse = sft_rows(get("boxpoints", style="segzero", resize=28, resize_image=False).sft_examples(samples))
    x0, y0, x1, y1 = samples[0].target_boxes()[0]
    text = coarse[0]["completion"][0]["content"][0]["text"]
    assert f"[{int(x0 * 28 / 112 + 0.5)}, {int(y0 * 28 / 112 + 0.5)}, " in text
