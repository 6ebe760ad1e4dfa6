"""THE builders of training settings from the flat run parameters (``params/*.yaml``, the notebooks' parameter cells).

Notebooks 03 and 04 and the command line (``python -m seglib.train``) call the
same builders, so a notebook run and an ``accelerate launch`` of the same
parameters train alike:

- ``sft_settings(params)`` → ``SFTSettings`` from the ``sft_*`` parameters, ``settings_for`` with
  one paradigm's ``sft_paradigm_settings``;
- ``grpo_params(params)`` → ``GRPOParams`` from the ``grpo_*`` parameters, ``grpo_params_for`` with
  one paradigm's ``grpo_paradigm_settings``, ``grpo_variants`` for the extra runs of ``grpo_variants``
  (``GRPOVariant``);
- ``paradigm_from_params(name, params)`` → the paradigm with its ``sft_options.<name>``.

``BASE_POLICY_DIR`` is where notebook 03 leaves the run's tiny base policy.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seglib.paradigms.base import Paradigm
    from seglib.train.grpo import GRPOParams  # noqa: F401  (GRPOVariant.params)
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


def grpo_params_for(params: "GRPOParams", paradigm: str, overrides: dict | None = None) -> "GRPOParams":
    """``params`` with ``overrides[paradigm]`` applied (``GRPOParams`` fields, e.g. ``{"gspo": True}``).

    Notebook 04's ``grpo_paradigm_settings``: the main run of one paradigm may
    train otherwise than the rest (SimpleSeg's polygons with GSPO). Every key of
    ``overrides`` must name a registered paradigm, every inner key a field; the
    result is checked by ``GRPOParams.resolved`` (e.g. REST's m against G).
    """
    from seglib.paradigms import PARADIGMS

    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"grpo_paradigm_settings must map paradigm -> GRPOParams fields, got {overrides!r}")
    unknown = sorted(set(overrides) - set(PARADIGMS))
    if unknown:
        raise ValueError(f"grpo_paradigm_settings: unknown paradigm(s) {unknown}; known: {list(PARADIGMS)}")
    extra = overrides.get(paradigm) or {}
    where = f"grpo_paradigm_settings[{paradigm!r}]"
    if not isinstance(extra, dict):
        raise ValueError(f"{where} must be a mapping of GRPOParams fields, got {extra!r}")
    check_overrides(extra, where)
    out = replace(params, **extra)
    try:
        out.resolved()
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return out


# --------------------------------------------------------------------------- GRPOParams overrides

#: ``GRPOParams`` fields whose default is None, and the type a value must have.
_NONE_DEFAULT_TYPES = {"micro_batch": int, "rest_keep": int, "epsilon_high": float, "lora": dict,
                       "save_total_limit": int}


def _fits(value: Any, default: Any, name: str) -> bool:
    """Whether ``value`` has the type of the field's ``default`` (an int is a float; a bool is neither)."""
    if value is None:
        return default is None
    want = _NONE_DEFAULT_TYPES.get(name) if default is None else type(default)
    if want is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if want is float:
        return isinstance(value, (int, float))
    return want is None or isinstance(value, want)


def check_overrides(extra: dict, where: str) -> None:
    """Every key of ``extra`` is a ``GRPOParams`` field and every value has its type (ValueError naming ``where``)."""
    from seglib.train.grpo import GRPOParams

    defaults = GRPOParams()
    names = [f.name for f in fields(defaults)]
    unknown = sorted(set(extra) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown GRPOParams field(s) {unknown}; known: {sorted(names)}")
    for k, v in extra.items():
        if not _fits(v, getattr(defaults, k), k):
            raise ValueError(f"{where}: {k} = {v!r} has the wrong type (the default is {getattr(defaults, k)!r})")


# --------------------------------------------------------------------------- grpo_variants

#: Keys of a ``grpo_variants`` item besides the ``GRPOParams`` fields it overrides.
VARIANT_KEYS = ("name", "paradigm", "rewards", "reward_options", "start")
#: A variant name: lower-case words of letters, digits and ``_`` joined by ``-`` (it ends a checkpoint name).
VARIANT_NAME = re.compile(r"^[a-z0-9_]+(-[a-z0-9_]+)*$")
#: ``seed<k>`` (a second seed of the main run) or ``rlonly-seed<k>`` (of the RL-only run).
SEED_NAME = re.compile(r"^(?:rlonly-)?seed(\d+)$")
#: The main RL-only run's variant word: a variant may not be named so, and one from the base starts with it.
RLONLY = "rlonly"


def grpo_checkpoint_name(paradigm: str, start: str = "sft", variant: str | None = None) -> str:
    """The folder under ``checkpoints/`` of a GRPO run: ``grpo-<paradigm>`` (start "sft"),
    ``grpo-<paradigm>-rlonly`` (start "base"), ``grpo-<paradigm>-<variant>`` for a named variant."""
    if start not in ("sft", "base"):
        raise ValueError(f"start must be 'sft' or 'base', got {start!r}")
    if variant:
        return f"grpo-{paradigm}-{variant}"
    return f"grpo-{paradigm}" + ("-rlonly" if start == "base" else "")


def rl_from_base_paradigms(params: dict, enabled: Sequence[str]) -> list[str]:
    """The paradigms whose RL-only run from the base policy notebook 04 trains.

    None unless ``grpo_rl_from_base``; then those of ``grpo_rl_from_base_paradigms`` this run enables, in
    ``enabled``'s order (None: every enabled paradigm). The base policy writes one paradigm's answers, so
    RL-only elsewhere starts at zero reward. A name that is not a paradigm is a ValueError naming it; a
    registered one this run does not enable is left out, as a disabled paradigm's SFT is.
    """
    from seglib.paradigms import PARADIGMS

    if not params.get("grpo_rl_from_base"):
        return []
    names = params.get("grpo_rl_from_base_paradigms")
    if names is None:
        return list(enabled)
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(v, str) for v in names):
        raise ValueError(f"grpo_rl_from_base_paradigms must be a list of paradigm names, got {names!r}")
    unknown = sorted(set(names) - set(PARADIGMS))
    if unknown:
        raise ValueError(f"grpo_rl_from_base_paradigms: unknown paradigm(s) {unknown}; registered: {sorted(PARADIGMS)}")
    return [p for p in enabled if p in names]


@dataclass(frozen=True)
class GRPOVariant:
    """One GRPO run of notebook 04: a paradigm's main run (``name`` None) or an item of ``grpo_variants``,
    which is the paradigm's main run with the item's changes.

    ``checkpoint`` (``grpo_checkpoint_name``): ``grpo-<paradigm>``, ``grpo-<paradigm>-rlonly``, or
    ``grpo-<paradigm>-<name>`` (evaluation stage ``grpo-<name>``). ``params``: the main run's
    ``GRPOParams`` (``grpo_*`` and ``grpo_paradigm_settings``) with the item's fields; ``start``: "sft",
    or "base" (RL only; a variant from the base is named ``rlonly-<word>``, so its stage is
    ``grpo-rlonly-<word>``); ``rewards``: the item's scorers, else ``grpo_rewards[paradigm]`` (None: the
    paradigm's defaults); ``reward_options``: options of the scorers (``Paradigm.score_group``).
    """

    name: str | None
    paradigm: str
    params: Any
    start: str = "sft"
    rewards: tuple[str, ...] | None = None
    reward_options: dict | None = None

    @property
    def checkpoint(self) -> str:
        return grpo_checkpoint_name(self.paradigm, self.start, self.name)


def grpo_variants(params: dict, enabled: Sequence[str] | None = None) -> list[GRPOVariant]:
    """The validated ``grpo_variants`` of the run parameters, before anything trains.

    Each item is ``{name, paradigm, start?, rewards?, reward_options?, <GRPOParams field>: value, ...}``.
    Errors (ValueError naming ``grpo_variants[i]`` and its name): not a mapping, an unknown key, a
    missing or malformed name, the name "rlonly" (the main RL-only run's folder), an unknown paradigm
    or one not in ``enabled`` (the paradigms this run trains), a start other than "sft"/"base", a
    start "base" not named ``rlonly-<word>`` or the reverse, a name used twice for one paradigm,
    rewards the paradigm has not, a field of the wrong type or a bad combination (``GRPOParams.resolved``).
    A name ``seed<k>`` / ``rlonly-seed<k>`` trains with seed k (a different ``seed`` is an error).
    """
    items = params.get("grpo_variants") or []
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"grpo_variants must be a list of mappings, got {items!r}")
    base = grpo_params(params)
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i, item in enumerate(items):
        v = _variant(i, item, base, params, enabled)
        if (v.paradigm, v.name) in seen:
            raise ValueError(f"grpo_variants[{i}] ({v.name!r}): {v.paradigm} already has a variant {v.name!r} "
                             f"(grpo_variants[{seen[v.paradigm, v.name]}]); names must differ per paradigm")
        seen[v.paradigm, v.name] = i
        out.append(v)
    return out


def _variant(i: int, item: Any, base: "GRPOParams", params: dict, enabled: Sequence[str] | None) -> GRPOVariant:
    """One item of ``grpo_variants`` checked and resolved (``grpo_variants`` lists the rules)."""
    from seglib.paradigms import PARADIGMS, paradigm_class

    if not isinstance(item, dict):
        raise ValueError(f"grpo_variants[{i}]: expected a mapping with name and paradigm, got {item!r}")
    name = item.get("name")
    where = f"grpo_variants[{i}]" + (f" ({name!r})" if isinstance(name, str) else "")
    field_names = {f.name for f in fields(base)}
    unknown = sorted(set(item) - set(VARIANT_KEYS) - field_names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected {list(VARIANT_KEYS)} or GRPOParams "
                         f"fields {sorted(field_names)}")
    if not isinstance(name, str) or not VARIANT_NAME.match(name):
        raise ValueError(f"{where}: name must be lower-case letters, digits and _ (words joined by -), got {name!r}")
    if name == RLONLY:
        raise ValueError(f"{where}: the name {RLONLY!r} is the main RL-only run's (grpo_rl_from_base); choose another")
    paradigm = item.get("paradigm")
    if paradigm not in PARADIGMS:
        raise ValueError(f"{where}: unknown paradigm {paradigm!r}; known: {list(PARADIGMS)}")
    if enabled is not None and paradigm not in enabled:
        raise ValueError(f"{where}: paradigm {paradigm!r} is not enabled in this run (enabled: {list(enabled)})")
    start = item.get("start", "sft")
    if start not in ("sft", "base"):
        raise ValueError(f"{where}: start must be 'sft' or 'base', got {start!r}")
    if (start == "base") != name.startswith(RLONLY + "-"):
        raise ValueError(f"{where}: a variant from the base policy is named '{RLONLY}-<word>' and only it "
                         f"(start {start!r}, name {name!r})")
    rewards = item.get("rewards")
    if rewards is not None:
        ranges = paradigm_class(paradigm).reward_ranges
        if not isinstance(rewards, (list, tuple)) or not rewards or any(r not in ranges for r in rewards):
            raise ValueError(f"{where}: rewards must be a non-empty list of {paradigm}'s scorers "
                             f"{sorted(ranges)}, got {rewards!r}")
    options = item.get("reward_options")
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"{where}: reward_options must be a mapping, got {options!r}")
    extra = {k: v for k, v in item.items() if k in field_names}
    seed = SEED_NAME.match(name)
    if seed:
        if "seed" in extra and extra["seed"] != int(seed.group(1)):
            raise ValueError(f"{where}: a variant named {name!r} trains with seed {seed.group(1)}, "
                             f"not seed {extra['seed']!r}")
        extra["seed"] = int(seed.group(1))
    check_overrides(extra, where)
    chosen = replace(grpo_params_for(base, paradigm, params.get("grpo_paradigm_settings")), **extra)
    try:
        chosen.resolved()
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    rewards = rewards or (params.get("grpo_rewards") or {}).get(paradigm)
    return GRPOVariant(name, paradigm, chosen, start, tuple(rewards) if rewards else None, options)
