"""Training from the command line, one process or many: ``python -m seglib.train {sft,grpo}``.

The same stages notebooks 03 (SFT) and 04 (GRPO) run, on a run folder, with
the parameters of a ``params/*.yaml`` file (validated by ``seglib.config``)::

    python -m seglib.train sft  --params params/smoke.yaml --run-dir outputs/smoke --paradigm boxpoints
    python -m seglib.train grpo --params params/smoke.yaml --run-dir outputs/smoke --paradigm boxpoints

and, unchanged, under ``accelerate launch`` (trl/transformers' Trainer reads the
distributed environment the launcher sets)::

    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m seglib.train sft --params ...
    accelerate launch --config_file configs/accelerate/multi_gpu_zero2.yaml -m seglib.train grpo --params params/full.yaml ...

What it does, per stage:

- the run folder's ``data/`` (notebook 01) is made first if it is missing (the
  main process writes it, the others wait); ``clicks`` SFT also needs notebook
  02's ``trajectories/train.jsonl`` and makes it the same way;
- ``sft``: notebook 03's ``seglib.train.sft.sft_paradigm`` from ``policy`` (HF
  name or path) or the run's tiny base ``checkpoints/policy-base`` (built as
  notebook 03 builds it when missing) into ``checkpoints/sft-<paradigm>``;
- ``grpo``: ``seglib.train.grpo.run_grpo_stage`` from ``checkpoints/sft-<paradigm>``
  into ``checkpoints/grpo-<paradigm>``, with ``GRPOParams`` built from the
  ``grpo_*`` parameters exactly as notebook 04 builds them;
- before training, the free disk space is checked against an estimate of what
  the checkpoints will take (``seglib.runs.check_free_space``);
- every process writes ``<out>/ranks/rank-<i>.json`` (process index, world
  size, backend, host, pid, times, steps) once its training call returned, so
  a multi-process run shows that each rank took part.

Errors in parameters or inputs print one line naming the file or key and exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PARADIGMS = ("boxpoints", "polygon", "clicks")
BASE_DIR = "checkpoints/policy-base"  # where notebook 03 leaves the tiny base


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _log(state, text: str) -> None:
    print(f"[rank {state.process_index}/{state.num_processes}] {text}", flush=True)


def _pick(params: dict, name: str, default: Any) -> Any:
    """``params[name]`` unless it is missing or None (the notebooks' "use the default")."""
    value = params.get(name)
    return default if value is None else value


# --------------------------------------------------------------------------- run-folder inputs
def ensure_data(run_dir: Path, params: dict, state) -> Path:
    """``<run_dir>/data`` as notebook 01 writes it; made by the main process if missing."""
    import inspect

    from seglib.data import prepare_dataset

    data_dir = run_dir / "data"
    with state.main_process_first():
        if not (data_dir / "refs.json").is_file():
            names = inspect.signature(prepare_dataset).parameters
            kwargs = {k: params[k] for k in names if k in params and k not in ("dataset", "out_dir")}
            _log(state, f"no dataset in {data_dir}: preparing it as notebook 01 does")
            prepare_dataset(params.get("dataset", "synthref"), data_dir, **kwargs)
    return data_dir


def ensure_trajectories(run_dir: Path, params: dict, state, samples=None) -> Path:
    """``<run_dir>/trajectories/<split>.jsonl`` as notebook 02 writes them; made by the main process if missing.

    Like notebook 02: every split of ``traj_splits`` (default train and val),
    the first ``traj_max_samples`` samples of each (None = all), every start
    of ``traj_starts``. ``samples`` (the train split) is accepted for callers
    that have it loaded; the splits are read from ``data/``. Returns the train
    file, which clicks SFT reads (a ``traj_splits`` without ``train`` is an error).
    """
    from seglib.data import load_samples
    from seglib.segmenters import build_segmenter
    from seglib.trajectories import simulate_split

    splits = list(_pick(params, "traj_splits", ["train", "val"]))
    if "train" not in splits:
        raise FileNotFoundError(f"traj_splits {splits} lacks 'train': clicks SFT trains on train trajectories")
    cap = params.get("traj_max_samples")
    path = run_dir / "trajectories" / "train.jsonl"
    with state.main_process_first():
        if not path.is_file():
            _log(state, f"no trajectories in {path}: simulating them as notebook 02 does")
            seg = build_segmenter(params.get("segmenter", "classic"), device=params.get("device", "cpu"),
                                  sam2_config=params.get("sam2_config"), sam2_checkpoint=params.get("sam2_checkpoint"))
            for split in splits:
                ss = load_samples(run_dir / "data", split=split)[:cap]
                for start in _pick(params, "traj_starts", ["empty"]):
                    simulate_split(ss, seg, run_dir / "trajectories" / f"{split}.jsonl",
                                   max_clicks=_pick(params, "max_clicks", 20), tau_stop=_pick(params, "tau_stop", 0.98),
                                   tau_diff=_pick(params, "tau_diff", 0.0), start=start, seed=params.get("seed", 0),
                                   gain_rule=_pick(params, "traj_gain_rule", "paper"), progress=state.is_main_process)
    return path


def ensure_base_policy(run_dir: Path, params: dict, state, train, trajectories, options: dict) -> str:
    """``policy`` if given; else the run's tiny base ``checkpoints/policy-base`` as notebook 03 builds it
    (``tiny_policy`` parameters, tokenizer trained on ``sft.training_texts``, dense vision pre-training),
    built by the main process if missing while the others wait."""
    from seglib.models import build_tiny_policy, load_policy
    from seglib.train import sft
    from seglib.train.pretrain_vision import pretrain_on_folder

    if params.get("policy"):
        return str(params["policy"])
    base = run_dir / BASE_DIR
    with state.main_process_first():
        if not (base / "config.json").is_file():
            _log(state, f"building the tiny base policy in {base}")
            paradigms = list(params.get("paradigms") or PARADIGMS)
            build_tiny_policy({**(params.get("tiny_policy") or {}), "seed": int(params.get("seed", 0))},
                              sft.training_texts(paradigms, train, trajectories, options), base)
            steps = int(_pick(params, "sft_vision_pretrain_steps", 0))
            if steps > 0:
                model, processor = load_policy(base)
                pretrain_on_folder(model, processor, run_dir / "data", "train", steps=steps,
                                   batch_size=int(_pick(params, "sft_batch_size", 4)),
                                   lr=float(_pick(params, "sft_learning_rate", 1e-3)), seed=int(params.get("seed", 0)))
                model.save_pretrained(base)
    return str(base)


def checkpoint_bytes(policy: str, save_total_limit: int | None, lora: bool = False) -> int:
    """What the checkpoints of one stage will take: (weights + two Adam moments) per kept checkpoint, plus the final.

    The weights' size is read from the policy folder (or the local hub cache);
    unknown sizes count as 0 (nothing is downloaded to find out).
    """
    folder = Path(policy)
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(policy, "config.json")
            folder = Path(hit).parent if isinstance(hit, str) else folder
        except Exception:
            pass
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors")) if folder.is_dir() else 0
    per_checkpoint = weights * (0.1 if lora else 3)  # LoRA: adapter + its moments, a small share of the base
    return int(per_checkpoint * ((save_total_limit or 1) + 1))


def _write_rank(out_dir: Path, state, started: str, extra: dict) -> None:
    import torch.distributed as dist

    record = {
        "process_index": state.process_index,
        "local_process_index": state.local_process_index,
        "num_processes": state.num_processes,
        "distributed_type": str(state.distributed_type),
        "backend": dist.get_backend() if dist.is_available() and dist.is_initialized() else None,
        "device": str(state.device),
        "host": platform.node(),
        "pid": os.getpid(),
        "started": started,
        "ended": _now(),
        **extra,
    }
    folder = Path(out_dir) / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank-{state.process_index}.json").write_text(json.dumps(record, indent=1, sort_keys=True))


# --------------------------------------------------------------------------- stages
def sft_settings(params: dict, max_steps: int | None = None):
    """``SFTSettings`` from the ``sft_*`` parameters, as notebook 03 builds them."""
    from seglib.train.sft import SFTSettings

    d = SFTSettings()
    steps = max_steps if max_steps is not None else int(_pick(params, "sft_steps", d.max_steps))
    eval_steps = int(_pick(params, "sft_eval_steps", d.eval_steps))
    return SFTSettings(max_steps=steps, learning_rate=_pick(params, "sft_learning_rate", d.learning_rate),
                       batch_size=_pick(params, "sft_batch_size", d.batch_size),
                       warmup_ratio=_pick(params, "sft_warmup_ratio", d.warmup_ratio), eval_steps=eval_steps,
                       save_steps=eval_steps, logging_steps=max(1, steps // 20),
                       dense_weight=_pick(params, "sft_dense_weight", 0.0) if not params.get("policy") else 0.0,
                       target_weight=_pick(params, "sft_target_weight", 0.0) if not params.get("policy") else 0.0,
                       bf16=bool(_pick(params, "sft_bf16", d.bf16)), seed=int(params.get("seed", 0)))


def run_sft(run_dir: Path, paradigm: str, params: dict, state, resume: bool, max_steps: int | None) -> dict:
    """Notebook 03's training of one paradigm (``seglib.train.sft.sft_paradigm``) into ``checkpoints/sft-<paradigm>``."""
    from seglib.data import load_samples
    from seglib.runs import check_free_space
    from seglib.segmenters import build_segmenter
    from seglib.train import sft
    from seglib.trajectories import read_trajectories

    data_dir = ensure_data(run_dir, params, state)
    kinds = params.get("sft_train_kinds") or ["referring", "multi", "empty"]
    train = [s for s in load_samples(data_dir, "train") if s.kind in kinds][: params.get("sft_max_train_samples")]
    val = [s for s in load_samples(data_dir, "val") if s.kind != "reasoning"][: int(_pick(params, "sft_eval_samples", 4))]
    trajectories = []
    if paradigm == "clicks":
        path = ensure_trajectories(run_dir, params, state, load_samples(data_dir, "train"))
        trajectories = read_trajectories(path)[: params.get("sft_max_trajectories")]
    options = params.get("sft_options") or {}
    out_dir = run_dir / "checkpoints" / f"sft-{paradigm}"
    if (out_dir / "sft_done.json").is_file():
        if not resume:
            raise FileExistsError(f"{out_dir} already holds a finished SFT run; use --resume or a new run folder")
        _log(state, f"{out_dir} is finished: not trained again")
        return {"out_dir": str(out_dir), "global_step": None, "skipped": True}
    if not resume and any(out_dir.glob("checkpoint-*")):
        raise FileExistsError(f"{out_dir} holds checkpoints of an unfinished run; pass --resume to continue it")
    base = ensure_base_policy(run_dir, params, state, train, trajectories, options)
    start = sft.start_policy(paradigm, base, run_dir / "checkpoints", params.get("sft_init"),
                             params.get("paradigms") or PARADIGMS, params.get("lora"))
    settings = sft.settings_for(sft_settings(params, max_steps), paradigm, params.get("sft_paradigm_settings"))
    check_free_space(out_dir, checkpoint_bytes(base, settings.save_total_limit, lora=bool(params.get("lora"))))
    device = params.get("device", "cpu")
    seg = build_segmenter(params.get("segmenter", "classic"), device=device, sam2_config=params.get("sam2_config"),
                          sam2_checkpoint=params.get("sam2_checkpoint"))
    _log(state, f"SFT {paradigm}: {len(train)} train samples, {settings.max_steps} steps from {start} -> {out_dir}")
    result = sft.sft_paradigm(paradigm, start, out_dir, train, val, seg, settings, options.get(paradigm),
                              trajectories=trajectories, data_dir=data_dir, lora=params.get("lora"), resume=resume,
                              device=device, max_clicks=int(_pick(params, "sft_eval_clicks", 5)),
                              max_new_tokens=int(_pick(params, "sft_max_new_tokens", 48)),
                              eval_during=int(_pick(params, "sft_eval_during", 0)),
                              max_pixels=params.get("policy_max_pixels"),
                              token_budgets={"sft_max_new_tokens": int(_pick(params, "sft_max_new_tokens", 48)),
                                             "grpo_max_completion_length":
                                                 params.get("grpo_max_completion_length")})
    steps = max((e.get("step", 0) for e in result["log_history"]), default=0)
    return {"out_dir": str(out_dir), "global_step": int(steps), "train_rows": result["n_train_rows"],
            "weights_sum": weights_sum(result["model"])}


def weights_sum(model) -> float:
    """Sum of |w| over the model's parameters (float64): equal on every rank when data-parallel training kept
    the replicas in sync, and equal to the saved checkpoint's."""
    import torch

    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum() for p in model.parameters()))


def grpo_params(params: dict, max_steps: int | None = None):
    """``GRPOParams`` from the ``grpo_*`` parameters, as notebook 04 builds them."""
    from seglib.train.grpo import GRPOParams

    d = GRPOParams()
    lora_r = int(_pick(params, "grpo_lora_r", 0))
    return GRPOParams(
        use_vllm=_pick(params, "grpo_use_vllm", d.use_vllm),  # trl's vLLM generation (GPUs with vllm; untested here)
        vllm_mode=_pick(params, "grpo_vllm_mode", d.vllm_mode),
        num_generations=_pick(params, "grpo_num_generations", d.num_generations),
        prompts_per_step=_pick(params, "grpo_prompts_per_step", d.prompts_per_step),  # global, all processes
        micro_batch=params.get("grpo_micro_batch"),
        adapter=_pick(params, "grpo_adapter", d.adapter),
        max_steps=max_steps if max_steps is not None else _pick(params, "grpo_steps", d.max_steps),
        learning_rate=_pick(params, "grpo_learning_rate", d.learning_rate),
        weight_decay=_pick(params, "grpo_weight_decay", d.weight_decay),
        beta=_pick(params, "grpo_beta", d.beta),
        temperature=_pick(params, "grpo_temperature", d.temperature),
        max_completion_length=_pick(params, "grpo_max_completion_length", d.max_completion_length),
        loss_type=_pick(params, "grpo_loss_type", d.loss_type),
        gspo=_pick(params, "grpo_gspo", d.gspo),
        num_iterations=_pick(params, "grpo_num_iterations", d.num_iterations),
        rest_keep=params.get("grpo_rest_keep"),
        lora={"r": lora_r, "lora_alpha": lora_r} if lora_r else None,
        reward_weights=params.get("grpo_reward_weights") or {},
        save_steps=_pick(params, "grpo_save_steps", d.save_steps),
        seed=int(params.get("seed", 0)),
    )


def run_grpo(run_dir: Path, paradigm: str, params: dict, state, resume: bool, max_steps: int | None,
             start: str = "sft") -> dict:
    """Notebook 04's ``run_grpo_stage``: from ``checkpoints/sft-<paradigm>`` (``start="sft"``) into
    ``checkpoints/grpo-<paradigm>``, or from the base policy (``"base"``, Seg-Zero's RL-only) into
    ``checkpoints/grpo-<paradigm>-rlonly``."""
    from seglib.runs import check_free_space
    from seglib.segmenters import build_segmenter
    from seglib.train.grpo import run_grpo_stage

    ensure_data(run_dir, params, state)
    p = grpo_params(params, max_steps)
    if start == "sft":
        source = run_dir / "checkpoints" / f"sft-{paradigm}"
        out_dir = run_dir / "checkpoints" / f"grpo-{paradigm}"
    else:
        from seglib.train.grpo import base_policy_path

        source = Path(base_policy_path(run_dir, params.get("policy")))
        out_dir = run_dir / "checkpoints" / f"grpo-{paradigm}-rlonly"
    check_free_space(out_dir, checkpoint_bytes(str(source), p.save_total_limit, lora=p.lora is not None))
    device = params.get("device", "cpu")
    seg = build_segmenter(params.get("segmenter", "classic"), device=device, sam2_config=params.get("sam2_config"),
                          sam2_checkpoint=params.get("sam2_checkpoint"))
    _log(state, f"GRPO {paradigm}: {p.max_steps} steps from {source} -> {out_dir}")
    out = run_grpo_stage(run_dir, paradigm, p, start=start, policy=params.get("policy"), segmenter=seg,
                         rewards=(params.get("grpo_rewards") or {}).get(paradigm),
                         max_train_samples=params.get("grpo_max_train_samples"),
                         max_history=_pick(params, "grpo_max_history", 0), resume=resume, device=device,
                         max_pixels=params.get("policy_max_pixels"))
    done = Path(out) / "grpo_done.json"
    steps = json.loads(done.read_text()).get("steps") if done.is_file() else None
    return {"out_dir": str(out), "global_step": steps}


# --------------------------------------------------------------------------- from a notebook
def launch_accelerate(stage: str, run_dir: str | Path, accelerate_config: str | Path, params_file: str | Path | None = None,
                      overrides: list[str] = (), paradigms: list[str] | None = None, resume: bool = True,
                      extra_args: list[str] = ()) -> None:
    """Hand one training stage to ``accelerate launch -m seglib.train`` (notebooks 03/04 with ``launcher: accelerate``).

    ``params_file`` defaults to ``<run_dir>/params.yaml``, the resolved parameters
    the runner (``python -m seglib run``) writes, so a papermill-driven run trains
    with exactly its own parameters. Each paradigm is one launch, resumed from its
    last checkpoint by default. The launcher's output streams into the notebook;
    a failed launch raises ``seglib.runs.RunError`` naming the command.
    """
    import shlex
    import subprocess

    from seglib.runs import RunError

    run_dir = Path(run_dir).resolve()
    params_file = Path(params_file) if params_file else run_dir / "params.yaml"
    if not params_file.is_file():
        raise RunError(f"{params_file}: no parameter file for the launcher (pass params_file=)")
    if not Path(accelerate_config).is_file():
        raise RunError(f"accelerate config {accelerate_config} does not exist")
    for paradigm in paradigms or [None]:
        cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--config_file",
               str(accelerate_config), "-m", "seglib.train", stage, "--params", str(params_file), "--run-dir",
               str(run_dir)]
        cmd += (["--paradigm", paradigm] if paradigm else []) + (["--resume"] if resume else [])
        cmd += [a for o in overrides for a in ("-p", o)] + list(extra_args)
        print("$", shlex.join(cmd), flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        tail: list[str] = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            tail = (tail + [line])[-20:]
        if proc.wait() != 0:
            raise RunError(f"{stage} launch failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                           f"  last lines: {''.join(tail[-5:]).strip()}")


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seglib.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("sft", "grpo"))
    parser.add_argument("--params", required=True, help="parameter file, e.g. params/full.yaml")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (value read as YAML); repeatable")
    parser.add_argument("--run-dir", default=None,
                        help="run folder holding data/ (and receiving checkpoints/); default outputs/<params stem>")
    parser.add_argument("--paradigm", default=None, choices=PARADIGMS,
                        help="paradigm to train (default: every one in the 'paradigms' parameter)")
    parser.add_argument("--resume", action="store_true", help="continue from the stage's last checkpoint")
    parser.add_argument("--from-base", action="store_true",
                        help="grpo: start from the base policy instead of the SFT checkpoint (RL only, Seg-Zero)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="optimiser steps, overriding sft_steps / grpo_steps (quick checks)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import seglib  # noqa: F401  (torchvision beside CPU torch)
    from accelerate import PartialState

    from seglib.config import REPO_ROOT, ParamError, load_params
    from seglib.data import DataError
    from seglib.runs import RunError, seed_everything

    started = _now()
    try:
        params = load_params(args.params, args.param)
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    state = PartialState(cpu=params.get("device", "cpu") == "cpu")
    if str(params.get("device", "cpu")).startswith("cuda") and state.num_processes > 1:
        params = {**params, "device": str(state.device)}  # this rank's GPU, not cuda:0 for every rank
    run_dir = Path(args.run_dir or REPO_ROOT / "outputs" / Path(args.params).stem).resolve()
    paradigms = [args.paradigm] if args.paradigm else list(params.get("paradigms") or PARADIGMS)
    seed_everything(int(params.get("seed", 0)))
    results = {}
    try:
        for paradigm in paradigms:
            t0 = time.time()
            if args.stage == "sft":
                info = run_sft(run_dir, paradigm, params, state, args.resume, args.max_steps)
            else:
                info = run_grpo(run_dir, paradigm, params, state, args.resume, args.max_steps,
                                start="base" if args.from_base else "sft")
            info["seconds"] = round(time.time() - t0, 1)
            state.wait_for_everyone()
            _write_rank(Path(info["out_dir"]), state, started, {"stage": args.stage, "paradigm": paradigm, **info})
            results[paradigm] = info
    except (ParamError, RunError, DataError, FileNotFoundError, FileExistsError) as err:
        print(f"error [rank {state.process_index}]: {err}", file=sys.stderr)
        return 2
    if state.is_main_process:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
