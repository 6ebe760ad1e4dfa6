"""The full-scale training path on the tiny policy: a LoRA SFT checkpoint that GRPO and StaR+ really train,
fp32 master weights for full fine-tuning, an fp32 LoRA merge on save, and the global GRPO batch."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seglib.models import build_tiny_policy, load_for_training, load_policy, merged_for_saving, require_trainable
from seglib.train.grpo import GRPOParams, batch_layout, train_grpo

TINY = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
        "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14, "max_position_embeddings": 256}
TEXTS = ["Segment the red circle.", "Positive point: (412, 377)", "Negative point: (88, 901)",
         '<think>one object</think><answer>{"bbox": [1, 2, 3, 4]}</answer>'] * 4
COMPONENTS = ["noise"]
LM_LINEAR = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "gate_proj.weight",
             "up_proj.weight", "down_proj.weight")


def rows(n: int = 2) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"prompt": "Segment the red circle.", "image": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
             "sample_id": f"s{i}"} for i in range(n)]


def noisy_scorer():
    """A reward that varies inside every group (random in [0, 1]): the advantages are non-zero."""
    rnd = random.Random(0)
    return lambda texts, row: [{"noise": rnd.random()} for _ in texts]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    return build_tiny_policy(TINY, TEXTS, tmp_path_factory.mktemp("tiny") / "policy")


@pytest.fixture(scope="module")
def base_bf16(base, tmp_path_factory) -> str:
    """The tiny policy saved in bf16, as a real Qwen checkpoint is (config dtype bfloat16)."""
    out = tmp_path_factory.mktemp("tiny_bf16") / "policy"
    model, processor = load_policy(base)
    model.to(torch.bfloat16).save_pretrained(out)
    processor.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def lora_sft(base, tmp_path_factory) -> str:
    """A LoRA SFT checkpoint as notebook 03 leaves it (adapter files + processor), with a non-zero adapter."""
    out = tmp_path_factory.mktemp("sft") / "sft-boxpoints"
    model, processor = load_policy(base, lora={"r": 4, "lora_alpha": 4})
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    assert (out / "adapter_config.json").exists() and not (out / "config.json").exists()
    return str(out)


def lm_changed_fraction(before: dict, after: dict) -> float:
    """Share of the language model's linear-layer weight elements that differ (compared in fp32)."""
    keys = [k for k in before if k.endswith(LM_LINEAR) and "vision" not in k]
    assert keys
    changed = sum(int((before[k].float() != after[k].float()).sum()) for k in keys)
    return changed / sum(before[k].numel() for k in keys)


# ----------------------------------------------------------------------------- 1. GRPO from a LoRA SFT checkpoint
def test_frozen_adapter_is_refused_naming_the_checkpoint(lora_sft):
    model, _ = load_policy(lora_sft)  # inference load: the adapter is frozen
    with pytest.raises(ValueError, match="sft-boxpoints.*no parameter requires grad"):
        require_trainable(model, lora_sft)
    with pytest.raises(ValueError, match="trains nothing"):
        load_for_training(lora_sft, adapter="frozen")


def test_train_sft_refuses_a_policy_with_nothing_to_train(lora_sft, tmp_path):
    from seglib.train.sft import SFTSettings, train_sft

    model, processor = load_policy(lora_sft)
    with pytest.raises(ValueError, match="sft-boxpoints"):
        train_sft(model, processor, [{"x": 1}], None, tmp_path / "out", SFTSettings(max_steps=1))


def test_adapter_source_loads_merged_fp32_or_trainable(lora_sft):
    merged, _ = load_for_training(lora_sft)  # default "merge": plain fp32 weights, all trainable
    assert not hasattr(merged, "peft_config")
    assert all(p.dtype == torch.float32 and p.requires_grad for p in merged.parameters())
    cont, _ = load_for_training(lora_sft, adapter="trainable")  # the SFT adapter itself trains, the base is frozen
    trainable = {n for n, p in cont.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


@pytest.mark.parametrize("adapter", ["merge", "trainable"])
def test_grpo_from_lora_sft_changes_the_weights_with_beta_zero(lora_sft, tmp_path, adapter):
    # beta 0 (StAR): without trainable parameters trl's loss has no grad and the step crashed
    params = GRPOParams(num_generations=4, prompts_per_step=1, max_steps=1, save_steps=10, max_completion_length=4,
                        learning_rate=1e-3, beta=0.0, adapter=adapter)
    out = tmp_path / f"grpo-{adapter}"
    train_grpo(lora_sft, rows(), noisy_scorer(), COMPONENTS, out, params)
    sft_merged, _ = load_policy(lora_sft, adapter="merge")
    sft_merged.save_pretrained(tmp_path / "sft-merged")  # the SFT policy in the saved key layout
    before = load_file(tmp_path / "sft-merged" / "model.safetensors")
    after = load_file(out / "model.safetensors")
    # Adam's first step moves every weight with a non-zero gradient by ~lr (1e-3 >> fp32 resolution at |w| ~ 0.02);
    # "merge" trains every LM linear element; "trainable" trains B A (rank 4), which also reaches every element
    fraction = lm_changed_fraction(before, after)
    assert fraction > 0.9, fraction


# ----------------------------------------------------------------------------- 2. StaR+ (see also test_star.py)
# ----------------------------------------------------------------------------- 3. fp32 master weights
def test_full_fine_tuning_loads_fp32_from_a_bf16_checkpoint(base_bf16):
    plain, _ = load_policy(base_bf16)
    assert next(plain.parameters()).dtype == torch.bfloat16  # the checkpoint's own dtype ("auto")
    model, _ = load_for_training(base_bf16)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_grpo_step_at_lr_1e_6_changes_almost_every_weight(base_bf16, tmp_path):
    # Seg-Zero's lr 1e-6: Adam's first step changes each weight by ~1e-6. At |w| ~ 0.02 the bf16 spacing is
    # 2^-6 * 2^-7 ~ 1.2e-4 (updates round away: ~2 % survive), fp32's ~1.9e-9 (all survive).
    params = GRPOParams(num_generations=4, prompts_per_step=1, max_steps=1, save_steps=10, max_completion_length=4,
                        learning_rate=1e-6, beta=0.0)
    out = tmp_path / "grpo-fp32"
    train_grpo(base_bf16, rows(), noisy_scorer(), COMPONENTS, out, params)
    before = load_file(Path(base_bf16) / "model.safetensors")
    after = load_file(out / "model.safetensors")
    assert {v.dtype for v in after.values()} == {torch.float32}
    assert lm_changed_fraction(before, after) > 0.9


# ----------------------------------------------------------------------------- 4. LoRA merge in fp32
def test_merge_runs_in_fp32_and_keeps_small_updates(base_bf16):
    model, _ = load_policy(base_bf16, lora={"r": 4, "lora_alpha": 4, "lora_dropout": 0.0})
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(1e-4)  # delta W = (alpha / r) B A = 1 * 1e-4 * sum_r A: ~1e-4, below bf16's spacing at 0.02
    layer = model.base_model.model.model.language_model.layers[0].self_attn.q_proj
    w = layer.base_layer.weight.detach().float().clone()
    expected = w + layer.lora_B["default"].weight.float() @ layer.lora_A["default"].weight.float()
    merged = merged_for_saving(model)
    got = merged.model.language_model.layers[0].self_attn.q_proj.weight
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-7)
    assert float((got != w).float().mean()) > 0.99  # the update reached every element
    assert hasattr(model, "peft_config")  # inplace=False left the model as it was


def test_grpo_lora_save_carries_the_update(base_bf16, tmp_path):
    params = GRPOParams(num_generations=4, prompts_per_step=1, max_steps=1, save_steps=10, max_completion_length=4,
                        learning_rate=1e-4, beta=0.0, lora={"r": 4, "lora_alpha": 4, "lora_dropout": 0.0})
    out = tmp_path / "grpo-lora"
    train_grpo(base_bf16, rows(), noisy_scorer(), COMPONENTS, out, params)
    before = load_file(Path(base_bf16) / "model.safetensors")
    after = load_file(out / "model.safetensors")
    # after one Adam step B = +-1e-4 everywhere and B A is dense: every q/k/v/o/gate/up/down element moves by
    # ~1e-4 * |A| * 4; saved in fp32 they all show, rounded to bf16 most would not
    assert lm_changed_fraction(before, after) > 0.9


# ----------------------------------------------------------------------------- 5. global prompts per step
@pytest.mark.parametrize("world, micro, expected", [
    (1, None, (128, 1)),  # 16 prompts x 8 = 128 completions on one process, one pass
    (2, None, (64, 1)),  # 128 / 2 processes
    (8, None, (16, 1)),  # 128 / 8
    (8, 4, (4, 4)),  # 16 per process in passes of 4: 4 accumulation steps
    (1, 32, (32, 4)),  # 128 in passes of 32
])
def test_batch_layout_divides_the_global_step(world, micro, expected):
    assert batch_layout(16, 8, world, micro) == expected


def test_batch_layout_refuses_uneven_splits_naming_the_numbers():
    with pytest.raises(ValueError, match=r"3 x 3 = 9 .* 2 processes"):
        batch_layout(3, 3, 2)
    with pytest.raises(ValueError, match=r"micro_batch 5 .* 16 completions per process"):
        batch_layout(16, 8, 8, 5)


def test_micro_batch_reaches_trl(base, tmp_path):
    from transformers import TrainerCallback

    seen = {}

    class Capture(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            seen.update(per_device=args.per_device_train_batch_size, accum=args.gradient_accumulation_steps)

    params = GRPOParams(num_generations=2, prompts_per_step=2, micro_batch=2, max_steps=1, save_steps=10,
                        max_completion_length=4)
    train_grpo(base, rows(), noisy_scorer(), COMPONENTS, tmp_path / "micro", params, callbacks=[Capture()])
    assert seen == {"per_device": 2, "accum": 2}  # 2 prompts x G 2 = 4 completions, passes of 2
    done = json.loads((tmp_path / "micro" / "grpo_done.json").read_text())
    assert done["steps"] == 1
