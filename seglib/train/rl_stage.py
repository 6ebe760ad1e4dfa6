"""Notebook 04's RL stage inside a run folder: one GRPO run of one paradigm, from its SFT policy or the base.

Checkpoint folders (``grpo_checkpoint_name``): ``grpo-<paradigm>`` from SFT,
``grpo-<paradigm>-rlonly`` from the base policy, ``grpo-<paradigm>-<name>`` for a
variant of ``grpo_variants`` (``seglib.train.settings.GRPOVariant``; from the
base its name is ``rlonly-<word>``). Evaluation reads the stage from the folder
name (``seglib.evaluation.scoring.stage_of``: ``grpo``, ``grpo-rlonly``, ``grpo-<name>``).

The paradigm, with the options its SFT checkpoint was trained with, comes from that
checkpoint's task (``seglib.inference.task.load_task``), so RL sees exactly the
prompts SFT trained on and the rewards decode answers as its evaluation does.
The rows are ``Paradigm.rl_rows``, the rewards ``Paradigm.score_group`` (through
``seglib.rewards.reward_functions``, the one trl adapter), the component names
``Paradigm.reward_components``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from seglib.train.grpo import GRPOParams, train_grpo
from seglib.train.settings import (BASE_POLICY_DIR, GRPOVariant, grpo_checkpoint_name, grpo_params, grpo_params_for,
                                   grpo_variants, rl_from_base_paradigms)

if TYPE_CHECKING:
    from seglib.paradigms.base import Paradigm


def base_policy_path(run_dir: str | Path, policy: str | None = None) -> str:
    """The base policy for RL-only runs: ``policy`` if given (HF name or path), else the run's tiny base."""
    if policy:
        return str(policy)
    path = Path(run_dir) / BASE_POLICY_DIR
    if (path / "config.json").exists():
        return str(path)
    raise FileNotFoundError(f"no base policy in {run_dir} (looked for {BASE_POLICY_DIR}); pass policy=<name or path>")


def stage_paradigm(sft_dir: Path, name: str, task: dict | None = None) -> "Paradigm":
    """The paradigm ``name`` as the SFT checkpoint ``sft_dir`` reads and writes (``task``: option overrides).

    Without a task record in ``sft_dir`` (an RL-only run with no SFT): the paradigm's default options.
    """
    from seglib.inference.task import load_task

    paradigm = load_task(sft_dir, **(task or {}))  # no task file: the name of the folder, sft-<name>
    if paradigm.name != name:
        raise ValueError(f"{sft_dir}: trained for paradigm {paradigm.name!r}, not {name!r}")
    return paradigm


def run_grpo_stage(
    run_dir: str | Path,
    paradigm: str,
    params: GRPOParams,
    start: str = "sft",
    policy: str | None = None,
    segmenter: Any = None,
    rewards: Sequence[str] | None = None,
    reward_options: dict | None = None,
    max_train_samples: int | None = None,
    max_history: int = 0,
    task: dict | None = None,
    resume: bool = True,
    device: str = "cpu",
    max_pixels: int | None = None,
    variant: str | None = None,
) -> str:
    """One GRPO run of notebook 04 inside a run folder; returns the checkpoint folder.

    ``paradigm``: the registered name. ``start``: ``"sft"`` (``checkpoints/sft-<paradigm>``, written to
    ``checkpoints/grpo-<paradigm>``) or ``"base"`` (Seg-Zero's RL-only setting:
    ``base_policy_path``, written to ``checkpoints/grpo-<paradigm>-rlonly``); ``variant``: a name of
    ``grpo_variants``, written to ``checkpoints/grpo-<paradigm>-<variant>`` instead.
    A finished folder (``grpo_done.json``) is returned as is with ``resume``; an unfinished one continues.
    The prompts and answer form come from the SFT checkpoint's task (``task``: option
    overrides). Training samples are the ``train`` split of ``data/`` (the first
    ``max_train_samples``); ``max_history`` and ``params.seed`` reach ``rl_rows``
    (a stepped paradigm's rows start from states after up to ``max_history`` oracle steps).
    """
    from seglib.data import load_samples
    from seglib.rewards import reward_functions

    run_dir = Path(run_dir)
    sft_dir = run_dir / "checkpoints" / f"sft-{paradigm}"
    out_dir = run_dir / "checkpoints" / grpo_checkpoint_name(paradigm, start, variant)
    if start == "sft":
        if not (sft_dir / "config.json").exists() and not (sft_dir / "adapter_config.json").exists():
            raise FileNotFoundError(f"{sft_dir}: no SFT checkpoint for {paradigm!r}; run notebook 03 first")
        source = str(sft_dir)
    else:
        source = base_policy_path(run_dir, policy)
    chosen = stage_paradigm(sft_dir, paradigm, task)
    samples = load_samples(run_dir / "data", split="train")
    if max_train_samples is not None:
        samples = samples[:max_train_samples]
    rows = chosen.rl_rows(samples, segmenter=segmenter, max_history=max_history, seed=params.seed)
    adapter = reward_functions(chosen, segmenter, rewards, reward_options)
    components = adapter.components
    # weights may name components of several paradigms (one notebook parameter): keep this paradigm's
    params = GRPOParams(**{**asdict(params), "reward_weights": {k: v for k, v in params.reward_weights.items()
                                                                 if k in components}})
    return train_grpo(source, rows, adapter.scorer, components, out_dir, params, resume=resume, device=device,
                      paradigm=chosen, max_pixels=max_pixels)


def grpo_runs(params: dict, enabled: Sequence[str]) -> list[GRPOVariant]:
    """Every GRPO run of notebook 04, validated before any trains: per enabled paradigm its main run
    (from SFT, ``grpo_paradigm_settings`` applied), then its RL-only run (``grpo_rl_from_base``, for ``grpo_rl_from_base_paradigms``), then
    every ``grpo_variants`` item (``seglib.train.settings.grpo_variants``, which names a bad item)."""
    base = grpo_params(params)
    settings, rewards = params.get("grpo_paradigm_settings"), params.get("grpo_rewards") or {}
    from_base = rl_from_base_paradigms(params, enabled)
    mains = [GRPOVariant(None, p, grpo_params_for(base, p, settings), start,
                         tuple(rewards[p]) if rewards.get(p) else None)
             for p in enabled for start in ["sft"] + (["base"] if p in from_base else [])]
    return mains + grpo_variants(params, enabled)


def run_planned_grpo(run_dir: str | Path, run: GRPOVariant, **kwargs: Any) -> str:
    """``run_grpo_stage`` of one run of ``grpo_runs`` into ``checkpoints/<run.checkpoint>``; ``kwargs``: the
    rest of ``run_grpo_stage``'s arguments (segmenter, policy, device, max_train_samples, ...)."""
    return run_grpo_stage(run_dir, run.paradigm, run.params, start=run.start, rewards=run.rewards,
                          reward_options=run.reward_options, variant=run.name, **kwargs)


def run_summary(run: GRPOVariant) -> dict:
    """One row of notebook 04's table of runs: the checkpoint, its start, rewards and main settings."""
    r = run.params.resolved()
    return {"checkpoint": run.checkpoint, "start": run.start, "rewards": ", ".join(run.rewards or ["(defaults)"]),
            "reward_options": run.reward_options or "", "steps": r.max_steps, "G": r.num_generations,
            "lr": r.learning_rate, "seed": r.seed, "ratios": r.importance_sampling_level,
            "rest_keep": "-" if r.rest_keep is None else r.rest_keep}


def predict_checkpoints(run_dir: str | Path, names: Sequence[str], samples: Sequence[Any], segmenter: Any,
                        max_clicks: int = 5, max_new_tokens: int = 128, batch_size: int = 64, device: str = "cpu",
                        seed: int = 0) -> dict[str, list[dict]]:
    """Greedy predictions of the named checkpoints on ``samples`` (``seglib.inference``), kept apart from
    notebook 06's files in ``<run_dir>/rl_eval/predictions/``. Resumable; returns records per name."""
    from seglib.inference import load_checkpoint_policy, load_task, predict_split, read_predictions

    out = {}
    for name in names:
        ckpt = Path(run_dir) / "checkpoints" / name
        policy = load_checkpoint_policy(ckpt, device=device, max_new_tokens=max_new_tokens, batch_size=batch_size)
        path = predict_split(samples, policy, segmenter, load_task(ckpt), Path(run_dir) / "rl_eval", name, "greedy",
                             max_clicks=max_clicks, batch_size=batch_size, seed=seed)
        out[name] = read_predictions(path)
    return out
