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

How REST sits on top of trl
---------------------------
``RESTGRPOTrainer`` subclasses ``GRPOTrainer`` and overrides one method,
``_generate_and_score_completions``: the hook that turns a generation batch
into the dict of tensors (``prompt_ids``, ``completion_ids``, masks,
``advantages``, pixel values, …) the loss is computed on. The override calls
trl's method unchanged (generation with ``num_generations = n``, rewards, group
advantages over all n rollouts), then keeps, in every group of n rows, the m
rows chosen by :func:`rest_select` and drops the others from every per-row
entry (image tensors are split per row with trl's own
``split_pixel_values_by_grid`` first and re-joined after). The number of loss
tokens is recounted. trl's loss then runs on those P·m rows only, so the GRPO
update is computed on the kept rollouts, with the advantages normalised over
the whole group of n as in StAR. Requirements: one process, or groups that do
not straddle processes; ``steps_per_generation`` must divide P·m (we use 1).

Rewards and logs
----------------
The rewards come from ``seglib.rewards``. Each named component of a paradigm's
scorer (e.g. Seg-Zero's ``think_format``, ``answer_format``, ``bbox_iou``,
``bbox_l1``, ``points``) is registered with trl as its own reward function,
with its own weight, so trl logs ``rewards/<component>/mean`` for each. The
components are computed once per generation batch: the first component call
scores every group (one ``set_image`` per image, one ``predict_many`` per group
in ``seglib.rewards``), the others read the cached dict. The time spent
scoring is logged as ``reward_time_s`` next to trl's ``step_time``.

Every trl log entry (reward components, ``completions/mean_length``, ``kl``,
``entropy``, ``clip_ratio/*``, loss, lr, timings) is appended as one JSON line
to ``<out_dir>/log.jsonl``; :func:`read_log` reads it back (deduplicated by
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
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from seglib.models import merged_for_saving, reload_checkpoint_weights  # noqa: F401  (re-exported; resume)
from seglib.train import check_checkpoint_space

#: A group scorer: the G completion texts of one prompt and that prompt's dataset row → one dict of
#: named reward components per completion (same keys for every completion).
GroupScorer = Callable[[Sequence[str], dict], list[dict[str, float]]]


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


# ----------------------------------------------------------------------------------------------- REST
def rest_select(advantages: Sequence[float] | torch.Tensor, group_size: int, keep: int) -> list[int]:
    """Indices kept by REST: in each consecutive group of ``group_size``, the ``keep`` most extreme advantages.

    The bottom ``keep // 2`` and the top ``keep - keep // 2`` of each group (StAR: m/2 each for even m).
    Ties are broken by position (a stable sort), so the choice is deterministic. Returned sorted.
    """
    adv = torch.as_tensor(advantages, dtype=torch.float64).flatten()
    if adv.numel() % group_size:
        raise ValueError(f"rest_select: {adv.numel()} advantages are not a whole number of groups of {group_size}")
    if not 0 < keep <= group_size:
        raise ValueError(f"rest_select: keep must be in [1, {group_size}], got {keep}")
    low, high = keep // 2, keep - keep // 2
    kept: list[int] = []
    for start in range(0, adv.numel(), group_size):
        order = torch.sort(adv[start:start + group_size], stable=True).indices.tolist()
        chosen = order[:low] + order[group_size - high:]
        kept.extend(start + i for i in sorted(chosen))
    return kept


def take_rows(batch: dict[str, Any], rows: Sequence[int]) -> dict[str, Any]:
    """Keep ``rows`` of every per-row entry of a trl generation batch (tensors, lists, per-row image tensors)."""
    from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

    n = batch["completion_ids"].shape[0]
    split = split_pixel_values_by_grid(dict(batch))
    index = torch.as_tensor(list(rows), dtype=torch.long)
    out: dict[str, Any] = {}
    for key, value in split.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == n:
            out[key] = value[index.to(value.device)]
        elif isinstance(value, list) and len(value) == n:
            out[key] = [value[i] for i in rows]
        else:
            out[key] = value
    out = unsplit_pixel_values_by_grid(out)
    mask = out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
    if "num_items_in_batch" in out:
        out["num_items_in_batch"] = mask.sum()
    return out


def _trainer_class(rest: bool = False):
    """``GRPOTrainer`` (``rest``: ``RESTGRPOTrainer``) whose resume really restores the checkpoint's weights."""
    from trl import GRPOTrainer

    class ResumableGRPOTrainer(GRPOTrainer):
        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            reload_checkpoint_weights(self.model if model is None else model, resume_from_checkpoint)

    return _rest_trainer_class(ResumableGRPOTrainer) if rest else ResumableGRPOTrainer


def _rest_trainer_class(base: Any = None):
    from trl import GRPOTrainer

    base = base or GRPOTrainer

    class RESTGRPOTrainer(base):
        """GRPOTrainer that trains on the ``rest_keep`` most extreme-advantage rollouts of each group (StAR REST)."""

        def __init__(self, *args: Any, rest_keep: int, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.rest_keep = int(rest_keep)
            if self.accelerator.num_processes > 1:
                raise NotImplementedError("REST selection is implemented for one process (groups must be local)")

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return out
            kept = rest_select(out["advantages"].detach().cpu(), self.num_generations, self.rest_keep)
            self._metrics["train"]["rest/kept_fraction"].append(len(kept) / out["advantages"].shape[0])
            self._metrics["train"]["rest/kept_abs_advantage"].append(
                float(out["advantages"][kept].abs().mean().item()) if kept else 0.0)
            return take_rows(out, kept)

    return RESTGRPOTrainer


# ----------------------------------------------------------------------------------------------- rewards → trl
def _completion_text(completion: Any) -> str:
    """trl hands conversational completions as ``[{"role": "assistant", "content": text}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else ""
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return ""


class ComponentRewards:
    """One trl reward function per named component, all fed by one group scorer call per generation batch.

    ``scorer(texts, row)`` scores the completions of one prompt (a group). The
    batch trl passes is split into groups by the ``group_key`` column (default
    ``sample_id``); each group is scored once, and each component function
    returns its column. ``timings`` collects the seconds spent per batch.
    """

    def __init__(self, scorer: GroupScorer, components: Sequence[str], group_key: str = "sample_id"):
        self.scorer = scorer
        self.components = list(components)
        self.group_key = group_key
        self._batch: Any = None
        self._scores: list[dict[str, float]] = []
        self.timings: list[float] = []

    def _score(self, completions: list, kwargs: dict) -> None:
        t0 = time.perf_counter()
        texts = [_completion_text(c) for c in completions]
        keys = kwargs.get(self.group_key) or list(range(len(texts)))
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        columns = [k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric", "completion_ids",
                                                  "prompts", "environments")]
        scores: list[dict[str, float] | None] = [None] * len(texts)
        for idx in groups.values():
            row = {k: kwargs[k][idx[0]] for k in columns}
            for i, s in zip(idx, self.scorer([texts[i] for i in idx], row)):
                scores[i] = s
        self._scores = [s or {} for s in scores]
        self._batch = completions
        dt = time.perf_counter() - t0
        self.timings.append(dt)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric("reward_time_s", dt)

    def function(self, component: str) -> Callable[..., list[float]]:
        def reward(prompts=None, completions=None, **kwargs):
            if completions is not self._batch:
                self._score(completions, kwargs)
            out: list[float | None] = []
            for s in self._scores:
                v = s.get(component)
                # a component a row's scorer does not have is None: trl leaves it out of that row's sum
                out.append(None if v is None else (float(v) if math.isfinite(float(v)) else 0.0))
            return out

        reward.__name__ = component
        return reward

    def functions(self) -> list[Callable[..., list[float]]]:
        return [self.function(c) for c in self.components]


# ----------------------------------------------------------------------------------------------- logging
def _log_callback(path: Path):
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        """Append every trl log entry (with its step) to a JSONL file the notebooks plot."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            entry = {"step": int(state.global_step)}
            for k, v in logs.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    entry[k] = float(v)
            with open(path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")

    return JsonlLog()


def read_log(out_dir: str | Path) -> list[dict]:
    """The training log of a GRPO folder, one dict per logged step, last entry per step wins (resume)."""
    path = Path(out_dir) / "log.jsonl"
    if not path.exists():
        return []
    by_step: dict[tuple[int, bool], dict] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        by_step[(entry.get("step", 0), "train_runtime" in entry)] = entry
    return [by_step[k] for k in sorted(by_step)]


# ----------------------------------------------------------------------------------------------- training
def last_checkpoint(out_dir: str | Path) -> str | None:
    """The newest ``checkpoint-<step>`` folder in ``out_dir`` that holds a trainer state, or None."""
    best, best_step = None, -1
    for p in Path(out_dir).glob("checkpoint-*"):
        try:
            step = int(p.name.split("-")[-1])
        except ValueError:
            continue
        if (p / "trainer_state.json").exists() and step > best_step:
            best, best_step = str(p), step
    return best


def _pil(image: Any):
    from PIL import Image

    if isinstance(image, np.ndarray):
        return Image.fromarray(image.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def make_dataset(rows: Sequence[dict]):
    """🤗 dataset for trl: each row needs ``prompt`` (user text), ``image`` (uint8 RGB array or PIL) and ``sample_id``.

    The prompt becomes trl's conversational form with one image; every other
    key is kept as a column and reaches the reward functions. Values that are
    not plain scalars/strings are JSON-encoded (decode them in the scorer).
    """
    from datasets import Dataset, Features, Image as ImageFeature, Value

    if not rows:
        raise ValueError("make_dataset: no rows")
    data: dict[str, list] = {"prompt": [], "image": []}
    extra = sorted({k for r in rows for k in r} - {"prompt", "image"})
    if "sample_id" not in extra:
        raise ValueError("make_dataset: every row needs a 'sample_id' (groups are scored by it)")
    for k in extra:
        data[k] = []
    for r in rows:
        data["prompt"].append([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["prompt"]}]}])
        data["image"].append(_pil(r["image"]))
        for k in extra:
            v = r.get(k)
            data[k].append(v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v))
    return Dataset.from_dict(data)


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
    task: dict | None = None,
    max_pixels: int | None = None,
) -> str:
    """Train ``policy`` (a checkpoint folder or HF name) with GRPO/GSPO/REST on ``rows``; return the saved folder.

    ``rows``: see :func:`make_dataset`. ``scorer``/``components``: the group
    scorer and the names of the components it returns (each becomes a trl
    reward function weighted by ``params.reward_weights``, default 1; the
    reward trl normalises per group is the weighted sum). ``out_dir`` is
    ``<run_dir>/checkpoints/grpo-<paradigm>``. With ``resume`` a folder holding
    ``grpo_done.json`` is returned as is, and one holding checkpoints continues
    from the last. ``task`` (paradigm, template, style, resize, prm: how the
    policy reads and writes) is saved as ``task.json`` for inference.

    ``params.prompts_per_step`` is global (``batch_layout``: divided over the
    processes, with ``params.micro_batch`` completions per pass and gradient
    accumulation for the rest). The policy is loaded by
    ``seglib.models.load_for_training``: fp32 weights for full fine-tuning (bf16 only as autocast), a LoRA
    source merged in fp32 (``params.adapter="merge"``) or trained on
    (``"trainable"``); a policy with nothing to train is refused.
    ``max_pixels`` caps the processor's image size (None: the checkpoint's).
    """
    from trl import GRPOConfig

    from seglib.models import load_for_training

    p = (params or GRPOParams()).resolved()
    out_dir = Path(out_dir)
    done = out_dir / "grpo_done.json"
    if done.exists():
        if resume:
            return str(out_dir)
        raise FileExistsError(f"{out_dir} already holds a finished GRPO run; use a new run folder or resume=True")
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_from = last_checkpoint(out_dir) if resume else None
    if not resume and last_checkpoint(out_dir):
        raise FileExistsError(f"{out_dir} holds checkpoints of an unfinished run; pass resume=True to continue it")

    unknown = set(p.reward_weights) - set(components)
    if unknown:
        raise ValueError(f"reward_weights names unknown components {sorted(unknown)}; components: {list(components)}")
    weights = [float(p.reward_weights.get(c, 1.0)) for c in components]
    rewards = ComponentRewards(scorer, components)

    import os

    from accelerate import PartialState

    # the launcher's world size; an accelerate state already set up (the CLI's) knows it too. Not created here:
    # creating it would fix its settings before the trainer's own (use_cpu) are applied.
    world = PartialState().num_processes if PartialState._shared_state else int(os.environ.get("WORLD_SIZE", "1"))
    per_device, accum = batch_layout(p.prompts_per_step, p.num_generations, world, p.micro_batch)
    if p.rest_keep is not None and (p.prompts_per_step * p.rest_keep) % accum:
        raise ValueError(f"REST keeps {p.prompts_per_step} x {p.rest_keep} rollouts, which do not split into "
                         f"{accum} accumulation passes; choose micro_batch so they do")
    model, processor = load_for_training(str(policy), lora=p.lora, device=device, adapter=p.adapter,
                                         max_pixels=max_pixels)
    config = GRPOConfig(
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
        reward_weights=weights,
        save_strategy="steps",
        save_steps=p.save_steps,
        save_total_limit=p.save_total_limit,
        logging_steps=p.logging_steps,
        report_to=[],
        seed=p.seed,
        use_cpu=(device == "cpu"),
        bf16=p.bf16 or (device != "cpu" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        gradient_checkpointing=p.gradient_checkpointing or device != "cpu",
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_vllm=p.use_vllm,
        vllm_mode=p.vllm_mode,
    )
    trainer_kwargs = dict(
        model=model,
        reward_funcs=rewards.functions(),
        args=config,
        train_dataset=make_dataset(rows),
        processing_class=processor,
        callbacks=[_log_callback(out_dir / "log.jsonl"), *callbacks],
    )
    if p.rest_keep is not None:
        trainer = _trainer_class(rest=True)(rest_keep=p.rest_keep, **trainer_kwargs)
    else:
        trainer = _trainer_class()(**trainer_kwargs)
    check_checkpoint_space(model, out_dir, config.save_total_limit)
    trainer.train(resume_from_checkpoint=resume_from)

    _save_final(trainer, processor, out_dir)
    if trainer.is_world_process_zero():
        if task:
            (out_dir / "task.json").write_text(json.dumps(task, indent=1))
        done.write_text(json.dumps({"task": task or {}, "params": asdict(p), "policy": str(policy),
                                    "steps": int(trainer.state.global_step), "components": list(components),
                                    "weights": weights, "resumed_from": resume_from}, indent=1))
    trainer.accelerator.wait_for_everyone()  # every rank returns once the folder is complete
    return str(out_dir)


def _save_final(trainer: Any, processor: Any, out_dir: Path) -> None:
    """The trained policy into ``out_dir``, written once (main process).

    Full fine-tuning and every DeepSpeed ZeRO-3 run go through ``trainer.save_model``,
    which gathers sharded weights before the main process writes them (a LoRA run
    under ZeRO-3 thus saves its adapter, which ``load_policy`` puts back on the base).
    A LoRA run otherwise saves merged plain weights: no separate merge step for users.
    """
    model = trainer.model
    zero3 = bool(getattr(trainer, "is_deepspeed_enabled", False)) and \
        getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3
    if hasattr(trainer.accelerator.unwrap_model(model), "merge_and_unload") and not zero3:
        if trainer.is_world_process_zero():  # merged in fp32, saved in fp32: bf16 would drop most of the update
            merged_for_saving(trainer.accelerator.unwrap_model(model), inplace=True).save_pretrained(str(out_dir))
    else:
        trainer.save_model(str(out_dir))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out_dir))


# ----------------------------------------------------------------------------------------------- paradigms
#: Reward scorers per paradigm (``seglib.rewards``). For ``boxpoints`` each row's answer style picks
#: among them: Seg-Zero-style rows (one object) use ``segzero``; list-style rows (several or no objects,
#: or every row when the SFT style is "list") use ``visionreasoner`` and/or ``star`` (SAM in the loop).
DEFAULT_REWARDS: dict[str, list[str]] = {"boxpoints": ["segzero", "star"], "polygon": ["simpleseg"],
                                         "clicks": ["clicks"]}
_LIST_SCORERS = ("visionreasoner", "star")
_PARADIGM_SCORERS = {"boxpoints": ("segzero", "visionreasoner", "star"), "polygon": ("simpleseg",),
                     "clicks": ("clicks",)}
_JSON_COLUMNS = ("target_rles", "gt_box", "gt_points", "gt_boxes", "clicks")


def reward_components(paradigm: str, rewards: Sequence[str] | None = None, prm: bool = False) -> list[str]:
    """The component names (``<scorer>_<component>``) that ``paradigm_scorer`` returns."""
    from seglib.rewards import RANGES

    names = []
    for r in rewards or DEFAULT_REWARDS[paradigm]:
        if r not in _PARADIGM_SCORERS[paradigm]:
            raise ValueError(f"reward {r!r} does not apply to paradigm {paradigm!r}; "
                             f"choose from {_PARADIGM_SCORERS[paradigm]}")
        names += [f"{r}_{c}" for c in RANGES[r] if not (r == "clicks" and c == "prm" and not prm)]
    return names


def paradigm_scorer(paradigm: str, rewards: Sequence[str] | None = None, segmenter: Any = None,
                    options: dict | None = None) -> tuple[GroupScorer, list[str]]:
    """(group scorer, component names) for ``paradigm`` from ``seglib.rewards.score_batch``.

    ``options``: ``resize`` (Seg-Zero frame, None = image as given), ``strict`` and
    ``soft_accuracy`` (segzero), ``prm`` (clicks). The segmenter is read from the
    row's ``image_path`` (never from the ``image`` column, which for clicks holds
    the overlaid state).
    """
    import inspect

    from seglib import rewards as R

    rewards = list(rewards or DEFAULT_REWARDS[paradigm])
    opts = dict(options or {})
    components = reward_components(paradigm, rewards, prm=bool(opts.get("prm", False)))
    scorer_fn = {"segzero": R.segzero_score, "visionreasoner": R.visionreasoner_score, "star": R.star_group_scores,
                 "simpleseg": R.simpleseg_score, "clicks": R.clicks_group_scores}
    per_scorer = {r: {k: v for k, v in opts.items() if k in inspect.signature(scorer_fn[r]).parameters}
                  for r in rewards}

    def score(texts: Sequence[str], row: dict) -> list[dict[str, float]]:
        row = {k: (json.loads(v) if k in _JSON_COLUMNS and isinstance(v, str) else v) for k, v in row.items()
               if k != "image"}
        n = len(texts)
        out: list[dict[str, float]] = [{} for _ in texts]
        for r in rewards:
            if paradigm == "boxpoints" and (row.get("style") == "segzero") != (r == "segzero"):
                continue
            columns = {k: [v] * n for k, v in row.items()}
            for d, s in zip(out, R.score_batch(r, list(texts), columns, segmenter, **per_scorer[r])):
                d.update({f"{r}_{k}": v for k, v in s.items()})
        return out

    return score, components


def click_history(sample: Any, segmenter: Any, n_clicks: int) -> list[list]:
    """F_sim's first ``n_clicks`` clicks on ``sample`` (pixel ``[x, y, positive]``): a state to start a step from."""
    from seglib.clicker import next_click
    from seglib.paradigms import clicks as clicks_paradigm

    gt = sample.union_mask()
    image = sample.image()
    segmenter.set_image(image)
    history: list = []
    mask = np.zeros_like(gt)
    for _ in range(n_clicks):
        c = next_click(gt, mask, clicked=history)
        if c is None:
            break
        history.append(c)
        mask, _ = clicks_paradigm.replay(history, segmenter, sample.height, sample.width)
    return [[int(c.x), int(c.y), bool(c.positive)] for c in history]


def grpo_rows(paradigm: str, samples: Sequence[Any], options: dict | None = None, segmenter: Any = None,
              max_history: int = 0, seed: int = 0) -> list[dict]:
    """GRPO rows (``make_dataset``) for ``samples``, with the same prompts as SFT (``sft.prompt_and_target``).

    boxpoints: ground truth ``gt_box``/``gt_points`` (Seg-Zero, 2 points) for
    one-object rows and ``gt_boxes``/``gt_points`` (1 point each) for list rows,
    plus ``target_rles`` for StAR. polygon: ``target_rles``. clicks: a state per
    sample, F_sim's first k clicks with k drawn from 0..``max_history``
    (``clicks`` column; the reward replays them), the prompt image overlaid
    with that state's mask; samples without a target are skipped.
    ``options`` are the SFT options (``style``, ``prompt_template``, ``prm``, …).
    """
    from seglib.paradigms import boxpoints
    from seglib.paradigms import clicks as clicks_paradigm
    from seglib.train.sft import prompt_and_target, task_spec

    opts = dict(options or {})
    spec = task_spec(paradigm, opts)  # which image the policy sees (Seg-Zero's resize for boxpoints)
    rng = np.random.default_rng(seed)
    rows = []
    for s in samples:
        base = {"sample_id": s.sample_id, "image_path": s.image_path, "height": s.height, "width": s.width,
                "kind": s.kind, "target_rles": s.target_rles}
        if paradigm in ("boxpoints", "polygon"):
            text, _ = prompt_and_target(paradigm, s, opts)
            row = {**base, "prompt": text, "image": spec.policy_image(s.image())}
            if paradigm == "boxpoints":
                style = opts.get("style") or ("segzero" if len(s.target_rles) == 1 else "list")
                objs = boxpoints.objects_from_masks(s.target_masks(), n_points=2 if style == "segzero" else 1)
                row["style"] = style
                if style == "segzero":
                    row["gt_box"], row["gt_points"] = list(objs[0].box), [list(p) for p in objs[0].points]
                else:
                    row["gt_boxes"] = [list(o.box) for o in objs]
                    row["gt_points"] = [list(o.points[0]) for o in objs]
            rows.append(row)
        elif paradigm == "clicks":
            if not s.target_rles or not s.union_mask().any():
                continue
            if segmenter is None:
                raise ValueError("grpo_rows('clicks') needs the segmenter to build click states")
            k = int(rng.integers(0, max_history + 1)) if max_history > 0 else 0
            history = click_history(s, segmenter, k)
            image = s.image()
            segmenter.set_image(image)
            from seglib.clicker import Click

            mask, _ = clicks_paradigm.replay([Click(*c) for c in history], segmenter, s.height, s.width)
            prm = bool(opts.get("prm", False))
            rows.append({**base, "sample_id": f"{s.sample_id}@{len(history)}", "clicks": history,
                         "prompt": clicks_paradigm.prompt(s, prm=prm, template=opts.get("prompt_template")),
                         "image": clicks_paradigm.state_image(image, mask if history else None)})
        else:
            raise ValueError(f"unknown paradigm {paradigm!r}")
    if not rows:
        raise ValueError(f"grpo_rows: no usable samples for paradigm {paradigm!r}")
    return rows


# ----------------------------------------------------------------------------------------------- run-folder stage
#: Where notebook 03 may leave the untrained (or vision-pretrained) tiny base policy, in order of preference.
BASE_POLICY_DIRS = ("checkpoints/policy-base", "checkpoints/base", "checkpoints/tiny-base", "checkpoints/tiny", "policy", "checkpoints/base-policy")


def base_policy_path(run_dir: str | Path, policy: str | None = None) -> str:
    """The base policy for RL-only runs: ``policy`` if given (HF name or path), else the run's tiny base."""
    if policy:
        return str(policy)
    for rel in BASE_POLICY_DIRS:
        p = Path(run_dir) / rel
        if (p / "config.json").exists():
            return str(p)
    raise FileNotFoundError(f"no base policy in {run_dir} (looked for {', '.join(BASE_POLICY_DIRS)}); "
                            "pass policy=<name or path>")


def _task_of(checkpoint: str | Path, paradigm: str) -> dict:
    """The task fields (paradigm, template, style, resize, prm) a checkpoint was trained with."""
    try:
        from seglib.inference import checkpoint_spec

        spec = checkpoint_spec(checkpoint, paradigm=paradigm)
        return {"paradigm": paradigm, "template": spec.template, "style": spec.style, "resize": spec.resize,
                "resize_image": spec.resize_image, "prm": spec.prm}
    except (ValueError, OSError):
        return {"paradigm": paradigm}


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
) -> str:
    """One GRPO run of notebook 04 inside a run folder; returns the checkpoint folder.

    ``start``: ``"sft"`` (``checkpoints/sft-<paradigm>``, written to
    ``checkpoints/grpo-<paradigm>``) or ``"base"`` (Seg-Zero's RL-only setting:
    ``base_policy_path``, written to ``checkpoints/grpo-<paradigm>-rlonly``).
    The prompts and answer form come from the SFT checkpoint's task (``task``
    overrides), so RL sees exactly the prompts SFT trained on. Training
    samples are the ``train`` split of ``data/`` (the first ``max_train_samples``).
    """
    from seglib.data import load_samples

    run_dir = Path(run_dir)
    sft_dir = run_dir / "checkpoints" / f"sft-{paradigm}"
    if start == "sft":
        if not (sft_dir / "config.json").exists() and not (sft_dir / "adapter_config.json").exists():
            raise FileNotFoundError(f"{sft_dir}: no SFT checkpoint for {paradigm!r}; run notebook 03 first")
        source, out_dir = str(sft_dir), run_dir / "checkpoints" / f"grpo-{paradigm}"
    elif start == "base":
        source, out_dir = base_policy_path(run_dir, policy), run_dir / "checkpoints" / f"grpo-{paradigm}-rlonly"
    else:
        raise ValueError(f"start must be 'sft' or 'base', got {start!r}")
    task = {**_task_of(sft_dir, paradigm), **(task or {})}
    options: dict[str, Any] = {"prompt_template": task.get("template")}
    if paradigm == "clicks":
        options["prm"] = bool(task.get("prm", False))
    if paradigm == "boxpoints" and task.get("style"):
        options["style"] = task["style"]
    opts = dict(reward_options or {})
    if paradigm == "clicks":
        opts.setdefault("prm", bool(task.get("prm", False)))
    if task.get("resize") and paradigm == "boxpoints":
        opts.setdefault("resize", task["resize"])
        options.update(resize=task["resize"], resize_image=bool(task.get("resize_image", True)))
    samples = load_samples(run_dir / "data", split="train")
    if max_train_samples is not None:
        samples = samples[:max_train_samples]
    rows = grpo_rows(paradigm, samples, options, segmenter=segmenter, max_history=max_history, seed=params.seed)
    scorer, components = paradigm_scorer(paradigm, rewards, segmenter, opts)
    # weights may name components of several paradigms (one notebook parameter): keep this paradigm's
    params = GRPOParams(**{**asdict(params), "reward_weights": {k: v for k, v in params.reward_weights.items()
                                                                 if k in components}})
    return train_grpo(source, rows, scorer, components, out_dir, params, resume=resume, device=device, task=task,
                      max_pixels=max_pixels)


# ----------------------------------------------------------------------------------------------- evaluation and figures
def predict_checkpoints(run_dir: str | Path, names: Sequence[str], samples: Sequence[Any], segmenter: Any,
                        max_clicks: int = 5, max_new_tokens: int = 128, batch_size: int = 8, device: str = "cpu",
                        seed: int = 0) -> dict[str, list[dict]]:
    """Greedy predictions of the named checkpoints on ``samples`` (``seglib.inference``), kept apart from
    notebook 06's files in ``<run_dir>/rl_eval/predictions/``. Resumable; returns records per name."""
    from seglib.inference import checkpoint_spec, load_checkpoint_policy, predict_split, read_predictions

    out = {}
    for name in names:
        ckpt = Path(run_dir) / "checkpoints" / name
        spec = checkpoint_spec(ckpt)
        policy = load_checkpoint_policy(ckpt, device=device, max_new_tokens=max_new_tokens, batch_size=batch_size)
        path = predict_split(samples, policy, segmenter, spec, Path(run_dir) / "rl_eval", name, "greedy",
                             max_clicks=max_clicks, batch_size=batch_size, seed=seed)
        out[name] = read_predictions(path)
    return out


def metrics_by_kind(records_by_name: dict[str, list[dict]]) -> list[dict]:
    """gIoU / cIoU (percent) per checkpoint, split and query kind, plus an "all" row per split."""
    from seglib.evaluation import evaluate_records

    rows = []
    for name, recs in records_by_name.items():
        if not recs:
            continue
        e = evaluate_records(recs, name)
        for split, block in e["splits"].items():
            rows.append({"checkpoint": name, "split": split, "kind": "all", "n": block["n"],
                         "giou": 100 * block["giou"], "ciou": 100 * block["ciou"]})
            for kind, kb in block["kinds"].items():
                rows.append({"checkpoint": name, "split": split, "kind": kind, "n": kb["n"],
                             "giou": 100 * kb["giou"], "ciou": 100 * kb["ciou"]})
    return rows


def plot_training(logs: dict[str, list[dict]]):
    """One panel per reward component (mean over the batch), then total reward, completion length, KL
    and the reward's share of the step time; one line per run."""
    import matplotlib.pyplot as plt

    keys: list[str] = []
    for log in logs.values():
        for e in log:
            keys += [k for k in e if k.startswith("rewards/") and k.endswith("/mean") and k not in keys]
    panels = keys + ["reward", "completions/mean_length", "kl", "reward_share"]
    ncols = 4
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        for name, log in logs.items():
            entries = [e for e in log if "reward" in e]
            if key == "reward_share":
                pts = [(e["step"], e["reward_time_s"] / e["step_time"]) for e in entries
                       if e.get("step_time") and "reward_time_s" in e]
            else:
                pts = [(e["step"], e[key]) for e in entries if key in e]
            if pts:
                ax.plot(*zip(*pts), marker=".", label=name)
        title = key.removeprefix("rewards/").removesuffix("/mean")
        ax.set_title({"reward": "total reward (weighted)", "kl": "KL to reference",
                      "completions/mean_length": "completion length (tokens)",
                      "reward_share": "reward time / step time"}.get(key, title), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    handles, labels = list(legend.values()), list(legend)
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout()
    return fig


def before_after_gallery(records_by_name: dict[str, list[dict]], samples: Sequence[Any], n: int = 4):
    """Rows = samples (the ``n`` with the largest IoU change between the first and last checkpoint),
    columns = ground truth then each checkpoint's greedy mask, titled with its IoU."""
    import matplotlib.pyplot as plt

    from seglib.evaluation import score_record
    from seglib.masks import decode_rle
    from seglib.viz import show_sample

    names = [k for k, v in records_by_name.items() if v]
    by_id = {s.sample_id: s for s in samples}
    per = {name: {r["sample_id"]: r for r in records_by_name[name]} for name in names}
    common = [sid for sid in per[names[0]] if all(sid in per[nm] for nm in names) and sid in by_id] if names else []
    iou = {nm: {sid: score_record(per[nm][sid]).iou for sid in common} for nm in names}
    common.sort(key=lambda sid: -abs(iou[names[-1]][sid] - iou[names[0]][sid]))
    picked = common[:n]
    fig, axes = plt.subplots(max(len(picked), 1), len(names) + 1, figsize=(2.6 * (len(names) + 1),
                                                                            2.6 * max(len(picked), 1)), squeeze=False)
    for row, sid in zip(axes, picked):
        s = by_id[sid]
        show_sample(row[0], s.image(), s.target_masks(), title=f"GT [{s.kind}] {s.query}"[:60])
        for ax, nm in zip(row[1:], names):
            r = per[nm][sid]
            mask = decode_rle(r["mask_rle"]) if r.get("mask_rle") else None
            show_sample(ax, s.image(), [mask] if mask is not None else None,
                        title=f"{nm}: IoU {100 * iou[nm][sid]:.0f}")
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()
    return fig
