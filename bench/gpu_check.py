"""One prepared device check of the full-scale path: ``python bench/gpu_check.py`` (or ``--tiny`` on a CPU).

Parts, each timed and measured (peak memory, tokens/s), printed as one table at the end:

1. **SFT step**: a randomly initialised *full-size* Qwen2.5-VL-3B (36 layers; the config values are in
   ``seglib.fullscale.QWEN25_VL_3B``, nothing is downloaded), fp32 master weights with bf16 autocast,
   AdamW, one optimiser step on a batch of prompts holding one 840x840 image (900 image tokens) and a
   512-token answer, loss on the answer only.
2. **GRPO step**: G = 8 completions of exactly 512 new tokens sampled from one prompt (HF ``generate``,
   EOS ignored), then the policy-gradient loss of GRPO with group-normalised advantages of a reward
   that varies within the group (beta = 0, one iteration: ratio 1), backward and one AdamW step.
   Logits are computed for the completion tokens only (``logits_to_keep``).
3. **SAM2.1 hiera-l**: ``build_sam2`` from the ``sam2`` package's config with random weights, one image
   encode (1024 px) and one batched decode of 64 box prompts.
4. **vLLM** (only when ``vllm`` is installed): the same random 3B saved to a temporary folder, 8 x 512
   tokens generated from token ids (no tokenizer needed).

``--tiny`` runs the same parts on the CPU with the shrunk stand-in sizes (2 + 2 layers), G = 2,
16-token completions, a 224 px image and SAM2.1 hiera-t, in well under a minute; CI runs it so the
script cannot rot. On one GPU the whole check is meant to finish in under 8 minutes; ``--budget-s``
(default 450) stops before a part that would start after it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from seglib.fullscale import QWEN25_VL_3B, STANDIN_SIZES, qwen25_vl_config  # noqa: E402


def _peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB -> GiB (process peak)


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def image_inputs(side: int, device: str):
    """pixel_values and image_grid_thw of one side x side image through Qwen2.5-VL's own image processor."""
    import numpy as np
    from PIL import Image
    from transformers import Qwen2VLImageProcessor

    c, v = QWEN25_VL_3B, QWEN25_VL_3B["vision"]
    proc = Qwen2VLImageProcessor(min_pixels=c["min_pixels"], max_pixels=c["max_pixels"], patch_size=v["patch_size"],
                                 merge_size=v["spatial_merge_size"], temporal_patch_size=v["temporal_patch_size"],
                                 image_mean=c["image_mean"], image_std=c["image_std"])
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8))
    out = proc(images=[img], return_tensors="pt")
    return out["pixel_values"].to(device), out["image_grid_thw"].to(device)


def prompt_ids(grid: torch.Tensor, n_text: int, device: str) -> torch.Tensor:
    """<|vision_start|> <|image_pad|> x (t*h*w/4) <|vision_end|> then n_text ordinary token ids."""
    c = QWEN25_VL_3B
    n_image = int(grid.prod().item()) // (QWEN25_VL_3B["vision"]["spatial_merge_size"] ** 2)
    g = torch.Generator().manual_seed(1)
    text = torch.randint(0, 151643, (n_text,), generator=g)
    ids = torch.cat([torch.tensor([c["vision_start_token_id"]]), torch.full((n_image,), c["image_token_id"]),
                     torch.tensor([c["vision_end_token_id"]]), text])
    return ids.to(device)


def build_model(tiny: bool, device: str):
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    cfg = qwen25_vl_config(STANDIN_SIZES["text"], STANDIN_SIZES["vision"]) if tiny else qwen25_vl_config()
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(cfg)  # fp32 master weights; bf16 only as autocast
    if not tiny:  # as the trainers do off the CPU: activations of 36 layers x 8 x 1.5k tokens need it
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def sft_step(model, device: str, side: int, answer_len: int, batch: int) -> dict:
    pixel_values, grid = image_inputs(side, device)
    prompt = prompt_ids(grid, 32, device)
    g = torch.Generator().manual_seed(2)
    answer = torch.randint(0, 151643, (answer_len,), generator=g).to(device)
    ids = torch.cat([prompt, answer]).unsqueeze(0).repeat(batch, 1)
    labels = ids.clone()
    labels[:, : prompt.numel()] = -100
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.0)
    model.train()
    _reset_peak(device)
    _sync(device)
    t0 = time.perf_counter()
    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels,
                    pixel_values=pixel_values.repeat(batch, 1), image_grid_thw=grid.repeat(batch, 1))
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    _sync(device)
    seconds = time.perf_counter() - t0
    del opt
    return {"part": f"SFT step (batch {batch}, {ids.shape[1]} tokens each)", "seconds": seconds,
            "tokens": ids.numel(), "peak_gib": _peak_gib(device), "note": f"loss {out.loss.item():.2f}"}


def grpo_step(model, device: str, side: int, group: int, completion_len: int) -> list[dict]:
    pixel_values, grid = image_inputs(side, device)
    prompt = prompt_ids(grid, 32, device).unsqueeze(0)
    rows = []
    model.eval()
    _reset_peak(device)
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad(), torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
        seqs = model.generate(input_ids=prompt.repeat(group, 1),
                              attention_mask=torch.ones_like(prompt).repeat(group, 1),
                              pixel_values=pixel_values.repeat(group, 1), image_grid_thw=grid.repeat(group, 1),
                              do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=completion_len,
                              min_new_tokens=completion_len, eos_token_id=None, pad_token_id=151643,
                              repetition_penalty=1.0)
    _sync(device)
    gen_s = time.perf_counter() - t0
    completion = seqs[:, prompt.shape[1]:]
    rows.append({"part": f"GRPO generate (G {group} x {completion.shape[1]} new tokens, HF)", "seconds": gen_s,
                 "tokens": completion.numel(), "peak_gib": _peak_gib(device), "note": ""})
    # a reward that varies within the group: the share of even token ids (any spread works for the check)
    reward = (completion % 2 == 0).float().mean(dim=1)
    adv = (reward - reward.mean()) / (reward.std() + 1e-4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6, weight_decay=0.01)
    model.train()
    _reset_peak(device)
    _sync(device)
    t0 = time.perf_counter()
    n = completion.shape[1]
    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
        out = model(input_ids=seqs, attention_mask=torch.ones_like(seqs), pixel_values=pixel_values.repeat(group, 1),
                    image_grid_thw=grid.repeat(group, 1), logits_to_keep=n + 1)
    logits = out.logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    # one iteration, beta 0: ratio exp(logp - logp.detach()) = 1 with the gradient of logp
    ratio = torch.exp(logp - logp.detach())
    loss = -(ratio * adv.unsqueeze(1)).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    _sync(device)
    rows.append({"part": f"GRPO loss + backward + step ({group} x {seqs.shape[1]} tokens)",
                 "seconds": time.perf_counter() - t0, "tokens": seqs.numel(), "peak_gib": _peak_gib(device),
                 "note": f"reward spread {reward.min().item():.2f}-{reward.max().item():.2f}"})
    del opt, out, logits, logp
    return rows


def sam2_part(device: str, tiny: bool, n_boxes: int) -> list[dict]:
    import numpy as np
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    config = "configs/sam2.1/sam2.1_hiera_t.yaml" if tiny else "configs/sam2.1/sam2.1_hiera_l.yaml"
    torch.manual_seed(0)
    model = build_sam2(config, None, device=device, mode="eval")
    predictor = SAM2ImagePredictor(model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    x0 = rng.uniform(0, 400, n_boxes)
    y0 = rng.uniform(0, 300, n_boxes)
    boxes = np.stack([x0, y0, x0 + 120, y0 + 100], axis=1)
    name = Path(config).stem
    rows = []
    with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                                                enabled=device.startswith("cuda")):
        predictor.set_image(image)  # warm-up (kernels, allocator)
        _reset_peak(device)
        _sync(device)
        t0 = time.perf_counter()
        predictor.set_image(image)
        _sync(device)
        rows.append({"part": f"SAM2.1 {name} encode (1024 px)", "seconds": time.perf_counter() - t0, "tokens": None,
                     "peak_gib": _peak_gib(device), "note": "1 image"})
        _reset_peak(device)
        t0 = time.perf_counter()
        masks, scores, _ = predictor.predict(box=boxes, multimask_output=False)
        _sync(device)
        rows.append({"part": f"SAM2.1 {name} batched decode", "seconds": time.perf_counter() - t0, "tokens": None,
                     "peak_gib": _peak_gib(device), "note": f"{n_boxes} boxes -> masks {tuple(masks.shape)}"})
    del predictor, model
    return rows


def save_for_vllm(model, folder: str) -> None:
    """The random model in bf16, plus Qwen2.5-VL's processor files when the pinned tokenizer package is there."""
    model.to(torch.bfloat16).save_pretrained(folder)
    try:
        from seglib.fullscale import QWEN25_VL_CHAT_TEMPLATE, write_qwen25_tokenizer
        from transformers import AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        write_qwen25_tokenizer(folder)
        c, v = QWEN25_VL_3B, QWEN25_VL_3B["vision"]
        Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(min_pixels=c["min_pixels"], max_pixels=c["max_pixels"]),
            tokenizer=AutoTokenizer.from_pretrained(folder), video_processor=Qwen2VLVideoProcessor(),
            chat_template=QWEN25_VL_CHAT_TEMPLATE).save_pretrained(folder)
    except Exception as err:  # noqa: BLE001  (vLLM may still start from token ids alone)
        print(f"vLLM folder without processor files: {err}", file=sys.stderr)


def vllm_part(folder: str, group: int, completion_len: int) -> list[dict]:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return [{"part": "vLLM generate", "seconds": None, "tokens": None, "peak_gib": None,
                 "note": "vllm not installed: skipped"}]
    from vllm import LLM, SamplingParams

    tmp = folder
    try:
        llm = LLM(model=tmp, skip_tokenizer_init=True, dtype="bfloat16", gpu_memory_utilization=0.5,
                  max_model_len=2048, enforce_eager=True, limit_mm_per_prompt={"image": 0})
        params = SamplingParams(n=1, temperature=1.0, max_tokens=completion_len, min_tokens=completion_len,
                                ignore_eos=True, detokenize=False)
        prompt = {"prompt_token_ids": list(range(1000, 1064))}
        t0 = time.perf_counter()
        outs = llm.generate([prompt] * group, params)
        seconds = time.perf_counter() - t0
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    except Exception as err:  # noqa: BLE001  (the table still prints the other parts)
        return [{"part": "vLLM generate", "seconds": None, "tokens": None, "peak_gib": None,
                 "note": f"failed: {type(err).__name__}: {str(err)[:120]}"}]
    return [{"part": f"vLLM generate ({group} x {completion_len} tokens)", "seconds": seconds, "tokens": tokens,
             "peak_gib": None, "note": "vLLM reserves 50 % of the GPU"}]


def table(rows: list[dict]) -> str:
    lines = ["| part | seconds | tokens | tokens/s | peak memory (GiB) | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        sec, tok = r["seconds"], r["tokens"]
        rate = f"{tok / sec:,.0f}" if sec and tok else "—"
        secs = "—" if sec is None else f"{sec:.2f}"
        toks = "—" if tok is None else str(tok)
        peak = "—" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        lines.append(f"| {r['part']} | {secs} | {toks} | {rate} | {peak} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="shrunk sizes on the CPU (what CI runs)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    ap.add_argument("--budget-s", type=float, default=450.0, help="skip parts that would start after this")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE as JSON")
    args = ap.parse_args(argv)
    device = args.device or ("cpu" if args.tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny for the CPU version", file=sys.stderr)
        return 2
    if args.tiny:
        side, group, completion_len, sft_batch, answer_len, n_boxes = 224, 2, 16, 2, 16, 8
    else:
        side, group, completion_len, sft_batch, answer_len, n_boxes = 840, 8, 512, 8, 512, 64
    start = time.perf_counter()
    rows: list[dict] = []

    def in_budget(name: str) -> bool:
        if time.perf_counter() - start > args.budget_s:
            rows.append({"part": name, "seconds": None, "tokens": None, "peak_gib": None,
                         "note": "over budget: skipped"})
            return False
        return True

    t0 = time.perf_counter()
    model = build_model(args.tiny, device)
    n_params = sum(p.numel() for p in model.parameters())
    rows.append({"part": f"build Qwen2.5-VL ({n_params / 1e9:.2f} B params, fp32)", "seconds": time.perf_counter() - t0,
                 "tokens": None, "peak_gib": _peak_gib(device), "note": "random init"})
    if in_budget("SFT step"):
        rows.append(sft_step(model, device, side, answer_len, sft_batch))
    if in_budget("GRPO step"):
        rows += grpo_step(model, device, side, group, completion_len)
    gc.collect()
    if in_budget("SAM2.1"):
        rows += sam2_part(device, args.tiny, n_boxes)
    if device.startswith("cuda") and in_budget("vLLM generate"):
        with tempfile.TemporaryDirectory() as folder:
            save_for_vllm(model, folder)
            del model
            gc.collect()
            torch.cuda.empty_cache()
            rows += vllm_part(folder, group, completion_len)
    rows.append({"part": "total", "seconds": time.perf_counter() - start, "tokens": None, "peak_gib": None,
                 "note": f"{'tiny, ' if args.tiny else ''}{device}"
                         + (f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else "")})
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"tiny": args.tiny, "device": device, "rows": rows}, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
