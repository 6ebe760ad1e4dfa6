"""One training stage of one paradigm on a run folder, as the command line (``python -m seglib.train``) runs it.

The inputs are made as the notebooks make them when missing: ``ensure_data``
(notebook 01's ``data/``), ``ensure_trajectories`` (notebook 02's F_sim
trajectories, for a paradigm that ``needs_trajectories``) and
``ensure_base_policy`` (notebook 03's tiny base policy); under ``accelerate
launch`` the main process makes each and the others wait. ``run_sft`` /
``run_grpo`` then train with the settings notebooks 03/04 build
(``seglib.train.settings``), after the disk check (``launch.checkpoint_bytes``);
``write_rank`` records each process's part.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from seglib.paradigms import PARADIGMS
from seglib.train.launch import checkpoint_bytes
from seglib.train.settings import (BASE_POLICY_DIR, grpo_checkpoint_name, grpo_params, grpo_params_for, grpo_variants,
                                   paradigm_from_params, pick, settings_for, sft_settings)


def log(state, text: str) -> None:
    """One line, prefixed with this process's rank."""
    print(f"[rank {state.process_index}/{state.num_processes}] {text}", flush=True)


def ensure_data(run_dir: Path, params: dict, state) -> Path:
    """``<run_dir>/data`` as notebook 01 writes it; made by the main process if missing."""
    import inspect

    from seglib.data import prepare_dataset

    data_dir = run_dir / "data"
    with state.main_process_first():
        if not (data_dir / "refs.json").is_file():
            names = inspect.signature(prepare_dataset).parameters
            kwargs = {k: params[k] for k in names if k in params and k not in ("dataset", "out_dir")}
            log(state, f"no dataset in {data_dir}: preparing it as notebook 01 does")
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

    splits = list(pick(params, "traj_splits", ["train", "val"]))
    if "train" not in splits:
        raise FileNotFoundError(f"traj_splits {splits} lacks 'train': clicks SFT trains on train trajectories")
    cap = params.get("traj_max_samples")
    path = run_dir / "trajectories" / "train.jsonl"
    with state.main_process_first():
        if not path.is_file():
            log(state, f"no trajectories in {path}: simulating them as notebook 02 does")
            seg = build_segmenter(params.get("segmenter", "classic"), device=params.get("device", "cpu"),
                                  sam2_config=params.get("sam2_config"), sam2_checkpoint=params.get("sam2_checkpoint"))
            for split in splits:
                ss = load_samples(run_dir / "data", split=split)[:cap]
                for start in pick(params, "traj_starts", ["empty"]):
                    simulate_split(ss, seg, run_dir / "trajectories" / f"{split}.jsonl",
                                   max_clicks=pick(params, "max_clicks", 20), tau_stop=pick(params, "tau_stop", 0.98),
                                   tau_diff=pick(params, "tau_diff", 0.0), start=start, seed=params.get("seed", 0),
                                   gain_rule=pick(params, "traj_gain_rule", "paper"), progress=state.is_main_process,
                                   clicked_rule=pick(params, "traj_clicked_rule", "after_transform"))
    return path


def ensure_base_policy(run_dir: Path, params: dict, state, train, trajectories) -> str:
    """``policy`` if given; else the run's tiny base ``checkpoints/policy-base`` as notebook 03 builds it
    (``tiny_policy`` parameters, tokenizer trained on ``sft.training_texts`` of the run's paradigms, dense vision pre-training),
    built by the main process if missing while the others wait."""
    from seglib.models import build_tiny_policy, load_policy
    from seglib.train.pretrain_vision import pretrain_on_folder
    from seglib.train.sft import training_texts

    if params.get("policy"):
        return str(params["policy"])
    base = run_dir / BASE_POLICY_DIR
    with state.main_process_first():
        if not (base / "config.json").is_file():
            log(state, f"building the tiny base policy in {base}")
            paradigms = [paradigm_from_params(p, params) for p in params.get("paradigms") or PARADIGMS]
            build_tiny_policy({**(params.get("tiny_policy") or {}), "seed": int(params.get("seed", 0))},
                              training_texts(paradigms, train, trajectories), base)
            steps = int(pick(params, "sft_vision_pretrain_steps", 0))
            if steps > 0:
                model, processor = load_policy(base)
                pretrain_on_folder(model, processor, run_dir / "data", "train", steps=steps,
                                   batch_size=int(pick(params, "sft_batch_size", 4)),
                                   lr=float(pick(params, "sft_learning_rate", 1e-3)), seed=int(params.get("seed", 0)))
                model.save_pretrained(base)
    return str(base)


def now() -> str:
    """The UTC time, to the second (the rank records)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_rank(out_dir: Path, state, started: str, extra: dict) -> None:
    """``<out_dir>/ranks/rank-<i>.json``: this process's index, world size, backend, host, pid, times and ``extra``."""
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
        "ended": now(),
        **extra,
    }
    folder = Path(out_dir) / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank-{state.process_index}.json").write_text(json.dumps(record, indent=1, sort_keys=True))


# --------------------------------------------------------------------------- stages
def run_sft(run_dir: Path, name: str, params: dict, state, resume: bool, max_steps: int | None) -> dict:
    """Notebook 03's training of one paradigm (``seglib.train.sft.sft_paradigm``) into ``checkpoints/sft-<name>``."""
    from seglib.data import load_samples
    from seglib.system import check_free_space
    from seglib.segmenters import build_segmenter
    from seglib.train import sft
    from seglib.trajectories import read_trajectories

    paradigm = paradigm_from_params(name, params)
    data_dir = ensure_data(run_dir, params, state)
    kinds = params.get("sft_train_kinds") or ["referring", "multi", "empty"]
    train = [s for s in load_samples(data_dir, "train") if s.kind in kinds][: params.get("sft_max_train_samples")]
    val = [s for s in load_samples(data_dir, "val") if s.kind != "reasoning"][: int(pick(params, "sft_eval_samples", 4))]
    trajectories = []
    if paradigm.needs_trajectories:
        path = ensure_trajectories(run_dir, params, state, load_samples(data_dir, "train"))
        trajectories = read_trajectories(path)[: params.get("sft_max_trajectories")]
    out_dir = run_dir / "checkpoints" / f"sft-{name}"
    if (out_dir / "sft_done.json").is_file():
        if not resume:
            raise FileExistsError(f"{out_dir} already holds a finished SFT run; use --resume or a new run folder")
        log(state, f"{out_dir} is finished: not trained again")
        return {"out_dir": str(out_dir), "global_step": None, "skipped": True}
    if not resume and any(out_dir.glob("checkpoint-*")):
        raise FileExistsError(f"{out_dir} holds checkpoints of an unfinished run; pass --resume to continue it")
    base = ensure_base_policy(run_dir, params, state, train, trajectories)
    start = sft.start_policy(name, base, run_dir / "checkpoints", params.get("sft_init"),
                             params.get("paradigms") or PARADIGMS, params.get("lora"))
    settings = settings_for(sft_settings(params, max_steps), name, params.get("sft_paradigm_settings"))
    check_free_space(out_dir, checkpoint_bytes(base, settings.save_total_limit, lora=bool(params.get("lora"))))
    device = params.get("device", "cpu")
    seg = build_segmenter(params.get("segmenter", "classic"), device=device, sam2_config=params.get("sam2_config"),
                          sam2_checkpoint=params.get("sam2_checkpoint"))
    log(state, f"SFT {name}: {len(train)} train samples, {settings.max_steps} steps from {start} -> {out_dir}")
    max_new_tokens = int(pick(params, "sft_max_new_tokens", 48))
    result = sft.sft_paradigm(paradigm, start, out_dir, train, val, seg, settings, trajectories=trajectories,
                              data_dir=data_dir, lora=params.get("lora"), resume=resume, device=device,
                              max_clicks=int(pick(params, "sft_eval_clicks", 5)), max_new_tokens=max_new_tokens,
                              eval_during=int(pick(params, "sft_eval_during", 0)),
                              max_pixels=params.get("policy_max_pixels"),
                              token_budgets={"sft_max_new_tokens": max_new_tokens,
                                             "grpo_max_completion_length": params.get("grpo_max_completion_length")})
    steps = max((e.get("step", 0) for e in result["log_history"]), default=0)
    return {"out_dir": str(out_dir), "global_step": int(steps), "train_rows": result["n_train_rows"],
            "weights_sum": weights_sum(result["model"])}


def weights_sum(model) -> float:
    """Sum of |w| over the model's parameters (float64): equal on every rank when data-parallel training kept
    the replicas in sync, and equal to the saved checkpoint's."""
    import torch

    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum() for p in model.parameters()))


def run_grpo(run_dir: Path, name: str, params: dict, state, resume: bool, max_steps: int | None,
             start: str = "sft", variant: str | None = None) -> dict:
    """Notebook 04's ``run_grpo_stage``: from ``checkpoints/sft-<name>`` (``start="sft"``) into
    ``checkpoints/grpo-<name>``, or from the base policy (``"base"``, Seg-Zero's RL-only) into
    ``checkpoints/grpo-<name>-rlonly``, with ``grpo_paradigm_settings[name]``; ``variant``: the item of
    ``grpo_variants`` so named (its own start, settings and rewards) into ``checkpoints/grpo-<name>-<variant>``."""
    from seglib.system import check_free_space
    from seglib.segmenters import build_segmenter
    from seglib.train.rl_stage import base_policy_path, run_grpo_stage

    ensure_data(run_dir, params, state)
    p = grpo_params_for(grpo_params(params, max_steps), name, params.get("grpo_paradigm_settings"))
    rewards, reward_options = (params.get("grpo_rewards") or {}).get(name), None
    if variant is not None:
        chosen = {v.name: v for v in grpo_variants(params) if v.paradigm == name}
        if variant not in chosen:
            raise FileNotFoundError(f"grpo_variants has no variant {variant!r} of {name}; it has {sorted(chosen)}")
        v = chosen[variant]
        start, rewards, reward_options = v.start, v.rewards, v.reward_options
        p = v.params if max_steps is None else replace(v.params, max_steps=max_steps)
    source = (run_dir / "checkpoints" / f"sft-{name}" if start == "sft"
              else Path(base_policy_path(run_dir, params.get("policy"))))
    out_dir = run_dir / "checkpoints" / grpo_checkpoint_name(name, start, variant)
    check_free_space(out_dir, checkpoint_bytes(str(source), p.save_total_limit, lora=p.lora is not None))
    device = params.get("device", "cpu")
    seg = build_segmenter(params.get("segmenter", "classic"), device=device, sam2_config=params.get("sam2_config"),
                          sam2_checkpoint=params.get("sam2_checkpoint"))
    log(state, f"GRPO {name}: {p.max_steps} steps from {source} -> {out_dir}")
    out = run_grpo_stage(run_dir, name, p, start=start, policy=params.get("policy"), segmenter=seg,
                         rewards=rewards, reward_options=reward_options,
                         max_train_samples=params.get("grpo_max_train_samples"),
                         max_history=pick(params, "grpo_max_history", 0), resume=resume, device=device,
                         max_pixels=params.get("policy_max_pixels"), variant=variant)
    done = Path(out) / "grpo_done.json"
    steps = json.loads(done.read_text()).get("steps") if done.is_file() else None
    return {"out_dir": str(out), "global_step": steps}
