"""GRPO, GSPO and REST for every paradigm, as thin layers over trl's ``GRPOTrainer``.

The algorithms (METHODS.md, "Training"):

- **GRPO** (DeepSeekMath; Seg-Zero, VisionReasoner, StAR): G completions per
  prompt, advantage ``(r - mean_group) / (std_group + eps)``, PPO-style clipped
  ratio (ε = 0.2), optional KL to the reference policy with coefficient β
  (trl's ``beta``; Seg-Zero 5e-3, StAR 0). trl adds 1e-4 to the group std
  where the paper writes 1e-6; with rewards on a 0–5 scale the difference is
  below any measurable effect and we keep trl's value.
- **GSPO** (SimpleSeg): one importance ratio per sequence, the geometric mean of
  the token ratios, with a very small clip. It is trl's
  ``importance_sampling_level="sequence"`` with ``loss_type="grpo"``; set
  ``gspo=True`` (or the level directly). It matters only off-policy, i.e. with
  ``num_iterations > 1`` (more optimiser steps than generations).
- **REST** (StAR stage 2): sample n rollouts per prompt and keep the m with the
  most extreme advantages, the top m/2 and the bottom m/2, for the update.

REST's trainer is ``seglib.train.rest`` (``rest_keep``).

Rewards and logs
----------------
The rewards come from the paradigm (``Paradigm.score_group``, through ``seglib.rewards.ComponentRewards``,
the one trl adapter; ``seglib.train.rl_stage`` builds them). Each named component of a paradigm's
scorer (e.g. Seg-Zero's ``think_format``, ``answer_format``, ``bbox_iou``,
``bbox_l1``, ``points``) is registered with trl as its own reward function,
with its own weight, so trl logs ``rewards/<component>/mean`` for each. The
components are computed once per generation batch: the first component call
scores every group (one ``set_image`` per image, one ``predict_many`` per group
in ``seglib.rewards``), the others read the cached dict. The time spent
scoring is logged as ``reward_time_s`` next to trl's ``step_time``.

Every trl log entry (reward components, ``completions/mean_length``, ``kl``,
``entropy``, ``clip_ratio/*``, loss, lr, timings) is appended as one JSON line
to ``<out_dir>/log.jsonl``; ``seglib.train.common.read_log`` reads it back (deduplicated by
step after a resume).

Checkpoints and resume
----------------------
trl/transformers checkpoints go to ``<out_dir>/checkpoint-<step>/`` every
``save_steps``; ``resume=True`` continues from the last one (a killed run
loses at most one save interval). transformers 5.23's resume skips a
vision-language model's weights (key names differ from the module names), so
the trainer re-reads them through ``from_pretrained`` after its own load
(:func:`reload_checkpoint_weights`); the kill test checks the weights. The final policy is saved at ``<out_dir>``
itself like a real checkpoint (LoRA merged into the weights), with
``grpo_done.json``; a finished folder is not trained again.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from seglib.models import reload_checkpoint_weights
from seglib.rewards import ComponentRewards, GroupScorer
from seglib.train.common import jsonl_log_callback, last_checkpoint, make_dataset, read_log, save_final
from seglib.train.launch import check_checkpoint_space
from seglib.train.rest import rest_select, rest_trainer_class, take_rows  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from seglib.paradigms.base import Paradigm


__all__ = ["GRPOParams", "ComponentRewards", "GroupScorer", "batch_layout", "train_grpo", "grpo_config", "read_log",
           "last_checkpoint"]


@dataclass
class GRPOParams:
    """GRPO/GSPO/REST hyper-parameters. Defaults are a small CPU run; ``seg_zero()`` gives the paper's."""

    num_generations: int = 4  # G (REST: n, the rollouts per prompt)
    prompts_per_step: int = 2  # prompts in one optimiser step over ALL processes (Seg-Zero: 16)
    micro_batch: int | None = None  # completions per process per forward/backward; None = all of its share at once
    max_steps: int = 4
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    lr_scheduler_type: str = "constant"  # Seg-Zero: constant lr
    warmup_steps: int = 0
    beta: float = 0.0  # KL coefficient (Seg-Zero 5e-3, StAR 0)
    epsilon: float = 0.2  # clip range (GSPO: 3e-4)
    epsilon_high: float | None = None  # upper clip (GSPO: 4e-4); None = epsilon
    temperature: float = 1.0
    top_p: float = 1.0
    max_completion_length: int = 64
    loss_type: str = "grpo"
    importance_sampling_level: str = "token"  # "sequence" = GSPO
    gspo: bool = False  # shorthand: sequence level, loss "grpo", clip 3e-4/4e-4 unless given
    num_iterations: int = 1  # optimiser passes per generation batch (μ); GSPO matters when > 1
    scale_rewards: str = "group"
    lora: dict | None = None  # None = full fine-tuning; else peft LoraConfig fields (StAR: r = alpha = 64)
    adapter: str = "merge"  # a LoRA source: "merge" (fp32 merge, then full FT / new lora) | "trainable" (train it on)
    reward_weights: dict[str, float] = field(default_factory=dict)  # component → weight (default 1)
    rest_keep: int | None = None  # REST: m rollouts kept of num_generations (None = plain GRPO)
    save_steps: int = 2
    save_total_limit: int | None = 2
    logging_steps: int = 1
    gradient_checkpointing: bool = False
    bf16: bool = False
    use_vllm: bool = False  # trl's vLLM generation (GPUs with vllm installed; not available on the CPU default)
    vllm_mode: str = "colocate"  # "colocate" (same GPUs) | "server" (trl vllm-serve)
    seed: int = 0

    @staticmethod
    def seg_zero(**overrides: Any) -> "GRPOParams":
        """Seg-Zero's settings: lr 1e-6 constant, weight decay 0.01, β 5e-3, G 8, 16 prompts, temperature 1."""
        base = dict(num_generations=8, prompts_per_step=16, learning_rate=1e-6, weight_decay=0.01, beta=5e-3,
                    temperature=1.0)
        base.update(overrides)
        return GRPOParams(**base)

    def resolved(self) -> "GRPOParams":
        """Apply the ``gspo`` shorthand and check the REST sizes."""
        p = GRPOParams(**asdict(self))
        if p.gspo:
            p.importance_sampling_level = "sequence"
            p.loss_type = "grpo"
            if p.epsilon == 0.2:
                p.epsilon = 3e-4
            if p.epsilon_high is None:
                p.epsilon_high = 4e-4
        if p.importance_sampling_level not in ("token", "sequence"):
            raise ValueError(f"importance_sampling_level must be 'token' or 'sequence', got {p.importance_sampling_level!r}")
        if p.num_generations < 2:
            raise ValueError(f"num_generations (G) must be >= 2 for group advantages, got {p.num_generations}")
        if p.rest_keep is not None and not (2 <= p.rest_keep <= p.num_generations):
            raise ValueError(f"rest_keep (m) must be in [2, num_generations={p.num_generations}], got {p.rest_keep}")
        return p


def batch_layout(prompts_per_step: int, num_generations: int, world_size: int = 1,
                 micro_batch: int | None = None) -> tuple[int, int]:
    """(per-device batch, gradient-accumulation steps) of a GLOBAL step of ``prompts_per_step`` prompts x G.

    One optimiser step sees ``prompts_per_step * num_generations`` completions
    in all: each of the ``world_size`` processes takes an equal share of
    ``P * G / world_size`` completions, in passes of ``micro_batch``
    completions (None = the whole share in one pass), so the accumulation is
    ``share / micro_batch``. Seg-Zero's 16 prompts x G 8 on 8 GPUs with micro
    batch 4: 128 completions, 16 per GPU, (4, 4). Raises ValueError naming
    the numbers when they do not divide.
    """
    total = int(prompts_per_step) * int(num_generations)
    if prompts_per_step < 1 or num_generations < 1 or world_size < 1:
        raise ValueError(f"prompts_per_step ({prompts_per_step}), num_generations ({num_generations}) and "
                         f"world_size ({world_size}) must be >= 1")
    if total % world_size:
        raise ValueError(f"prompts_per_step x num_generations = {prompts_per_step} x {num_generations} = {total} "
                         f"completions do not split evenly over {world_size} processes")
    share = total // world_size
    micro = share if micro_batch is None else int(micro_batch)
    if micro < 1 or share % micro:
        raise ValueError(f"micro_batch {micro_batch} does not divide the {share} completions per process "
                         f"({prompts_per_step} prompts x {num_generations} / {world_size} processes)")
    return micro, share // micro


# ----------------------------------------------------------------------------------------------- training
def _trainer_class(rest: bool = False):
    """``GRPOTrainer`` (``rest``: ``RESTGRPOTrainer``) whose resume really restores the checkpoint's weights."""
    from trl import GRPOTrainer

    class ResumableGRPOTrainer(GRPOTrainer):
        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            reload_checkpoint_weights(self.model if model is None else model, resume_from_checkpoint)

    return rest_trainer_class(ResumableGRPOTrainer) if rest else ResumableGRPOTrainer


def _world_size() -> int:
    """The launcher's world size; an accelerate state already set up (the CLI's) knows it too.

    Not created here: creating it would fix its settings before the trainer's own (use_cpu) are applied.
    """
    from accelerate import PartialState

    return PartialState().num_processes if PartialState._shared_state else int(os.environ.get("WORLD_SIZE", "1"))


def grpo_config(p: "GRPOParams", out_dir: Path, per_device: int, accum: int, weights: Sequence[float], device: str):
    """trl's ``GRPOConfig`` of resolved params ``p`` (bf16 and activation checkpointing on off the CPU)."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(out_dir),
        max_steps=p.max_steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accum,
        num_generations=p.num_generations,
        num_iterations=p.num_iterations,
        max_completion_length=p.max_completion_length,
        temperature=p.temperature,
        top_p=p.top_p,
        learning_rate=p.learning_rate,
        weight_decay=p.weight_decay,
        lr_scheduler_type=p.lr_scheduler_type,
        warmup_steps=p.warmup_steps,
        beta=p.beta,
        epsilon=p.epsilon,
        epsilon_high=p.epsilon_high,
        loss_type=p.loss_type,
        importance_sampling_level=p.importance_sampling_level,
        scale_rewards=p.scale_rewards,
        reward_weights=list(weights),
        save_strategy="steps",
        save_steps=p.save_steps,
        save_total_limit=p.save_total_limit,
        logging_steps=p.logging_steps,
        report_to=[],
        seed=p.seed,
        use_cpu=(device == "cpu"),
        bf16=p.bf16 or (device != "cpu" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        activation_checkpointing=p.gradient_checkpointing or device != "cpu",
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_vllm=p.use_vllm,
        vllm_mode=p.vllm_mode,
    )


def train_grpo(
    policy: str | Path,
    rows: Sequence[dict],
    scorer: GroupScorer,
    components: Sequence[str],
    out_dir: str | Path,
    params: GRPOParams | None = None,
    resume: bool = True,
    device: str = "cpu",
    callbacks: Sequence[Any] = (),
    paradigm: "Paradigm | None" = None,
    max_pixels: int | None = None,
) -> str:
    """Train ``policy`` (a checkpoint folder or HF name) with GRPO/GSPO/REST on ``rows``; return the saved folder.

    ``rows``: see ``seglib.train.common.make_dataset``. ``scorer``/``components``: the group
    scorer and the names of the components it returns (each becomes a trl
    reward function weighted by ``params.reward_weights``, default 1; the
    reward trl normalises per group is the weighted sum). ``out_dir`` is
    ``<run_dir>/checkpoints/grpo-<paradigm>``. With ``resume`` a folder holding
    ``grpo_done.json`` is returned as is, and one holding checkpoints continues
    from the last. ``paradigm`` (how the policy reads and writes) is saved as
    ``task.json`` for inference (``seglib.inference.task.save_task``).

    ``params.prompts_per_step`` is global (``batch_layout``: divided over the
    processes, with ``params.micro_batch`` completions per pass and gradient
    accumulation for the rest). The policy is loaded by
    ``seglib.models.load_for_training``: fp32 weights for full fine-tuning (bf16 only as autocast), a LoRA
    source merged in fp32 (``params.adapter="merge"``) or trained on
    (``"trainable"``); a policy with nothing to train is refused.
    ``max_pixels`` caps the processor's image size (None: the checkpoint's).
    """
    from seglib.models import load_for_training

    p = (params or GRPOParams()).resolved()
    out_dir = Path(out_dir)
    done = out_dir / "grpo_done.json"
    if done.exists():
        if resume:
            return str(out_dir)
        raise FileExistsError(f"{out_dir} already holds a finished GRPO run; use a new run folder or resume=True")
    out_dir.mkdir(parents=True, exist_ok=True)
    last = last_checkpoint(out_dir)
    resume_from = str(last) if resume and last else None
    if not resume and last:
        raise FileExistsError(f"{out_dir} holds checkpoints of an unfinished run; pass resume=True to continue it")

    unknown = set(p.reward_weights) - set(components)
    if unknown:
        raise ValueError(f"reward_weights names unknown components {sorted(unknown)}; components: {list(components)}")
    weights = [float(p.reward_weights.get(c, 1.0)) for c in components]
    rewards = ComponentRewards(scorer, components)
    per_device, accum = batch_layout(p.prompts_per_step, p.num_generations, _world_size(), p.micro_batch)
    if p.rest_keep is not None and (p.prompts_per_step * p.rest_keep) % accum:
        raise ValueError(f"REST keeps {p.prompts_per_step} x {p.rest_keep} rollouts, which do not split into "
                         f"{accum} accumulation passes; choose micro_batch so they do")
    model, processor = load_for_training(str(policy), lora=p.lora, device=device, adapter=p.adapter,
                                         max_pixels=max_pixels)
    config = grpo_config(p, out_dir, per_device, accum, weights, device)
    trainer_kwargs = dict(model=model, reward_funcs=rewards.functions(), args=config, train_dataset=make_dataset(rows),
                          processing_class=processor, callbacks=[jsonl_log_callback(out_dir / "log.jsonl"), *callbacks])
    if p.rest_keep is not None:
        trainer = _trainer_class(rest=True)(rest_keep=p.rest_keep, **trainer_kwargs)
    else:
        trainer = _trainer_class()(**trainer_kwargs)
    check_checkpoint_space(model, out_dir, config.save_total_limit)
    trainer.train(resume_from_checkpoint=resume_from)

    save_final(trainer, processor, out_dir)
    if trainer.is_world_process_zero():
        _write_done(out_dir, paradigm, {"params": asdict(p), "policy": str(policy),
                                        "steps": int(trainer.state.global_step), "components": list(components),
                                        "weights": weights, "resumed_from": resume_from})
    trainer.accelerator.wait_for_everyone()  # every rank returns once the folder is complete
    return str(out_dir)


def _write_done(out_dir: Path, paradigm: "Paradigm | None", record: dict) -> None:
    """``task.json`` (``seglib.inference.task.save_task``) and ``grpo_done.json`` (the task, then ``record``)."""
    task = {}
    if paradigm is not None:
        from seglib.inference.task import save_task

        save_task(out_dir, paradigm)
        task = paradigm.task()
    (out_dir / "grpo_done.json").write_text(json.dumps({"task": task, **record}, indent=1))
