"""seglib.models: the tiny policy round trip, chat template, batch-invariant greedy generation, LoRA targets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seglib.models import build_tiny_policy, generate, load_policy

TINY = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
        "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14}
TEXTS = ["the red circle", "the leftmost shape", '{"bbox": [12, 40, 60, 99]}', "Positive point: (412, 377)"] * 5


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_policy(TINY, TEXTS, tmp_path_factory.mktemp("tiny") / "policy")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_policy(tiny_dir)


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 7 * i, 50 + 3 * i, 3), dtype=np.uint8) for i in range(n)]


def test_round_trip_loads_through_auto_classes(tiny_dir, tiny):
    from transformers import AutoModelForImageTextToText

    model, processor = tiny
    again = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    assert type(again) is type(model)
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert processor.tokenizer.padding_side == "left"


def test_tokenizer_splits_digits_and_knows_chat_tokens(tiny):
    _, processor = tiny
    tok = processor.tokenizer
    ids = tok("412", add_special_tokens=False)["input_ids"]
    assert [tok.decode([i]) for i in ids] == ["4", "1", "2"]
    for special in ("<|im_start|>", "<|im_end|>", "<image>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    assert tok.decode(tok('{"bbox": [1, 2]}', add_special_tokens=False)["input_ids"]) == '{"bbox": [1, 2]}'


def test_chat_template_puts_image_then_query_then_assistant_header(tiny):
    _, processor = tiny
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "the red circle"}]}]
    text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\n<image>the red circle<|im_end|>\n<|im_start|>assistant\n"
    full = msgs + [{"role": "assistant", "content": [{"type": "text", "text": "[1, 2]"}]}]
    assert processor.apply_chat_template(full, tokenize=False).endswith("<|im_start|>assistant\n[1, 2]<|im_end|>\n")
    # the processor expands the image placeholder to one token per image token (4x4 grid at 56 px, patch 14)
    enc = processor(images=[_images(1)[0]], text=[text], return_tensors="pt")
    assert int((enc["input_ids"] == processor.image_token_id).sum()) == 16


def test_greedy_generation_is_batch_size_invariant(tiny):
    model, processor = tiny
    torch.manual_seed(0)
    # random weights give arbitrary but deterministic text; prompts of different lengths force left padding
    prompts = ["the red circle", "x", "the leftmost shape of all", "Positive point"]
    ims = _images(4)
    one = generate(model, processor, ims, prompts, max_new_tokens=8, batch_size=1)
    four = generate(model, processor, ims, prompts, max_new_tokens=8, batch_size=4)
    assert one == four
    assert len(one) == 4 and all(len(o) == 1 for o in one)
    assert len({o[0] for o in one}) > 1 or one[0][0] != ""  # the model did write something


def test_sampling_returns_n_sequences(tiny):
    model, processor = tiny
    out = generate(model, processor, _images(2), ["a", "b"], max_new_tokens=4, do_sample=True,
                   num_return_sequences=3, seed=1)
    assert [len(o) for o in out] == [3, 3]


def test_lora_adapts_language_model_only_by_default(tiny_dir):
    model, _ = load_policy(tiny_dir, lora={"r": 4, "lora_alpha": 4})
    lora_names = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora_names, "no LoRA parameters were added"
    assert not any("vision_tower" in n or "multi_modal_projector" in n for n in lora_names)
    assert any("language_model" in n for n in lora_names)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert set(trainable) == set(lora_names)
    with_vision, _ = load_policy(tiny_dir, lora={"r": 4, "include_vision": True})
    assert any("vision_tower" in n for n, _ in with_vision.named_parameters() if "lora_" in n)


def test_qwen2_5_vl_architecture_round_trip(tmp_path):
    params = dict(TINY, arch="qwen2_5_vl", image_size=56, text_hidden=32, text_heads=2)
    path = build_tiny_policy(params, TEXTS, tmp_path / "qwen")
    model, processor = load_policy(path)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    out = generate(model, processor, _images(2), ["the red circle", "x"], max_new_tokens=4, batch_size=1)
    assert out == generate(model, processor, _images(2), ["the red circle", "x"], max_new_tokens=4, batch_size=2)


def test_unknown_tiny_param_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown params"):
        build_tiny_policy({"hidden": 3}, TEXTS, tmp_path / "x")
