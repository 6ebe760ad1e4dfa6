"""THE builders of training settings from the flat run parameters (``params/*.yaml``, the notebooks' parameter cells).

Notebooks 03 and 04 and the command line (``python -m seglib.train``) call the
same builders, so a notebook run and an ``accelerate launch`` of the same
parameters train alike:

- ``sft_settings(params)`` → ``SFTSettings`` from the ``sft_*`` parameters, ``settings_for`` with
  one paradigm's ``sft_paradigm_settings``;
- ``grpo_params(params)`` → ``GRPOParams`` from the ``grpo_*`` parameters;
- ``paradigm_from_params(name, params)`` → the paradigm with its ``sft_options.<name>``.

``BASE_POLICY_DIR`` is where notebook 03 leaves the run's tiny base policy.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seglib.paradigms.base import Paradigm
    from seglib.train.grpo import GRPOParams
    from seglib.train.sft import SFTSettings

#: Where notebook 03 leaves the untrained (or vision-pretrained) tiny base policy, inside a run folder.
BASE_POLICY_DIR = "checkpoints/policy-base"


def pick(params: dict, name: str, default: Any) -> Any:
    """``params[name]`` unless it is missing or None (the notebooks' "use the default")."""
    value = params.get(name)
    return default if value is None else value


def paradigm_from_params(name: str, params: dict) -> "Paradigm":
    """The paradigm ``name`` with the run's ``sft_options[name]`` (an unknown option names ``sft_options.<name>.<key>``)."""
    from seglib.paradigms import get

    return get(name, (params.get("sft_options") or {}).get(name))


def sft_settings(params: dict, max_steps: int | None = None) -> "SFTSettings":
    """``SFTSettings`` from the ``sft_*`` parameters (dense losses only for the tiny policy, ``policy`` None)."""
    from seglib.train.sft import SFTSettings

    d = SFTSettings()
    tiny = not params.get("policy")
    steps = max_steps if max_steps is not None else int(pick(params, "sft_steps", d.max_steps))
    eval_steps = int(pick(params, "sft_eval_steps", d.eval_steps))
    return SFTSettings(max_steps=steps, learning_rate=pick(params, "sft_learning_rate", d.learning_rate),
                       batch_size=pick(params, "sft_batch_size", d.batch_size),
                       warmup_ratio=pick(params, "sft_warmup_ratio", d.warmup_ratio), eval_steps=eval_steps,
                       save_steps=eval_steps, logging_steps=max(1, steps // 20),
                       dense_weight=pick(params, "sft_dense_weight", 0.0) if tiny else 0.0,
                       target_weight=pick(params, "sft_target_weight", 0.0) if tiny else 0.0,
                       bf16=bool(pick(params, "sft_bf16", d.bf16)), seed=int(params.get("seed", 0)))


def grpo_params(params: dict, max_steps: int | None = None) -> "GRPOParams":
    """``GRPOParams`` from the ``grpo_*`` parameters."""
    from seglib.train.grpo import GRPOParams

    d = GRPOParams()
    lora_r = int(pick(params, "grpo_lora_r", 0))
    return GRPOParams(
        use_vllm=pick(params, "grpo_use_vllm", d.use_vllm),  # trl's vLLM generation (GPUs with vllm; untested here)
        vllm_mode=pick(params, "grpo_vllm_mode", d.vllm_mode),
        num_generations=pick(params, "grpo_num_generations", d.num_generations),
        prompts_per_step=pick(params, "grpo_prompts_per_step", d.prompts_per_step),  # global, all processes
        micro_batch=params.get("grpo_micro_batch"),
        adapter=pick(params, "grpo_adapter", d.adapter),
        max_steps=max_steps if max_steps is not None else pick(params, "grpo_steps", d.max_steps),
        learning_rate=pick(params, "grpo_learning_rate", d.learning_rate),
        weight_decay=pick(params, "grpo_weight_decay", d.weight_decay),
        beta=pick(params, "grpo_beta", d.beta),
        temperature=pick(params, "grpo_temperature", d.temperature),
        max_completion_length=pick(params, "grpo_max_completion_length", d.max_completion_length),
        loss_type=pick(params, "grpo_loss_type", d.loss_type),
        gspo=pick(params, "grpo_gspo", d.gspo),
        num_iterations=pick(params, "grpo_num_iterations", d.num_iterations),
        rest_keep=params.get("grpo_rest_keep"),
        lora={"r": lora_r, "lora_alpha": lora_r} if lora_r else None,
        reward_weights=params.get("grpo_reward_weights") or {},
        save_steps=pick(params, "grpo_save_steps", d.save_steps),
        seed=int(params.get("seed", 0)),
    )


def settings_for(settings: "SFTSettings", paradigm: str, overrides: dict | None = None) -> "SFTSettings":
    """``settings`` with ``overrides[paradigm]`` applied (``SFTSettings`` fields, e.g. ``{"learning_rate": 2e-3}``).

    Notebook 03's ``sft_paradigm_settings``: one paradigm may need another
    learning rate or step count than the rest.
    """
    extra = (overrides or {}).get(paradigm) or {}
    if not isinstance(extra, dict):
        raise ValueError(f"sft_paradigm_settings[{paradigm!r}] must be a mapping of SFTSettings fields, got {extra!r}")
    names = {f.name for f in fields(settings)}
    unknown = sorted(set(extra) - names)
    if unknown:
        raise ValueError(f"sft_paradigm_settings[{paradigm!r}]: unknown SFTSettings field(s) {unknown}; "
                         f"known: {sorted(names)}")
    return replace(settings, **extra)
