"""Supervised fine-tuning of the policy on each paradigm's target text (trl ``SFTTrainer``).

METHODS.md "Training / SFT": next-token loss on the assistant's answer only.
Rows are prompt-completion conversations with one image each, so trl masks
every prompt token (labels -100) and trains on the completion alone
(``completion_only_loss``). The rows are the paradigm's SFT examples
(``Paradigm.sft_examples``: what the policy sees, the prompt and the target text;
from the run folder's samples, and from notebook 02's F_sim trajectories where the
paradigm ``needs_trajectories``).

Optional for the embedded tiny policy: a dense auxiliary loss on the image
tokens (``seglib.train.dense``, ``seglib.train.pretrain_vision``) added to the text
loss (joint training); 0 turns it off, as for a pre-trained checkpoint.

Checkpoints go to ``output_dir/checkpoint-N`` (``<run_dir>/checkpoints/sft-<paradigm>``);
the final model and processor to ``output_dir`` itself, loadable with
``seglib.models.load_policy``, with ``task.json`` (``seglib.inference.task``).
``resume=True`` continues from the last checkpoint.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from seglib.train.common import chat_row, last_checkpoint, task_eval_callback, to_dataset
from seglib.train.dense import DenseCollator, attach_dense_heads, dense_fields, dense_trainer_class
from seglib.train.launch import check_checkpoint_space

if TYPE_CHECKING:
    from seglib.paradigms.base import Example, Paradigm
    from seglib.train.pretrain_vision import SceneObject

__all__ = ["SFTSettings", "start_policy", "sft_rows", "training_texts", "train_sft", "sft_paradigm",
           "target_token_report", "format_token_report", "last_checkpoint"]


@dataclass
class SFTSettings:
    """Optimisation settings (trl ``SFTConfig`` fields of the same meaning)."""

    max_steps: int = 100
    learning_rate: float = 1e-3
    batch_size: int = 16
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    eval_steps: int = 50
    save_steps: int = 50
    save_total_limit: int = 2
    dense_weight: float = 0.0
    dense_box_bins: int = 28  # bins per box coordinate in the dense loss (0 = L1 on [0, 1])
    target_weight: float = 0.0  # BCE "this image token holds the queried target", read from the LM's last layer
    bf16: bool = False
    # recompute activations in the backward pass: saves GPU memory, costs time. None = on with CUDA, off on CPU
    # (trl's configs default it on; on a CPU that only slows the step)
    activation_checkpointing: bool | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)  # any other SFTConfig field


def start_policy(paradigm: str, base: str | Path, checkpoints_dir: str | Path, init: dict | None = None,
                 order: Sequence[str] | None = None, lora: dict | None = None) -> str | Path:
    """Where ``paradigm``'s SFT starts: ``base``, or the finished ``sft-<init[paradigm]>`` policy.

    Notebook 03's ``sft_init`` (our addition, a curriculum): ``{<paradigm>: <earlier paradigm>}``
    trains a paradigm from an earlier paradigm's SFT policy, which has already
    learnt where the queried object is (the study recipe: polygon and clicks from boxpoints). ``order`` (the paradigms in
    training order) must list the source first. A LoRA run is refused: the
    source would be an adapter, not a model to put a new adapter on.
    """
    source = (init or {}).get(paradigm)
    if not source:
        return base
    where = f"sft_init[{paradigm!r}] = {source!r}"
    if source == paradigm:
        raise ValueError(f"{where}: a paradigm cannot start from itself")
    if order is not None:
        order = list(order)
        if source not in order or order.index(source) > order.index(paradigm):
            raise ValueError(f"{where}: {source!r} must be trained before {paradigm!r}; paradigms = {order}")
    if lora:
        raise ValueError(f"{where}: not supported with LoRA (the source checkpoint is an adapter); "
                         "merge it into a full checkpoint and pass that as the policy")
    path = Path(checkpoints_dir) / f"sft-{source}"
    if not (path / "sft_done.json").is_file():
        raise FileNotFoundError(f"{where}: {path} holds no finished SFT policy")
    return path


# --------------------------------------------------------------------------- rows
def sft_rows(examples: Sequence["Example"], scene: dict[str, list["SceneObject"]] | None = None,
             grid: int | None = None) -> list[dict]:
    """One trl row per SFT example (``chat_row``), with ``sample_id`` and ``kind``.

    With ``scene`` (``pretrain_vision.scene_objects``) and ``grid``, each row
    also carries the dense per-token targets of its image (``seglib.train.dense``).
    """
    dense: dict[str, dict] = {}
    rows = []
    for e in examples:
        s = e.sample
        extra = {"sample_id": s.sample_id, "kind": s.kind}
        if scene is not None:
            if s.sample_id not in dense:
                dense[s.sample_id] = dense_fields(scene.get(s.image_path, []), s.height, s.width, grid, s)
            extra.update(dense[s.sample_id])
        rows.append(chat_row(e.image, e.prompt, e.target, **extra))
    return rows


def training_texts(paradigms: Sequence["Paradigm"], samples: Sequence, trajectories: Sequence = ()) -> list[str]:
    """Every prompt and target text SFT will show (what the tiny policy's tokenizer is trained on):
    each paradigm's ``tokenizer_texts``, in order."""
    return [t for p in paradigms for t in p.tokenizer_texts(samples, trajectories)]


# --------------------------------------------------------------------------- trainer
def _sft_config(settings: SFTSettings, output_dir: Path, has_eval: bool, device: str):
    from trl import SFTConfig

    on_cpu = str(device).startswith("cpu")
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        warmup_steps=math.ceil(settings.warmup_ratio * settings.max_steps),
        lr_scheduler_type=settings.lr_scheduler_type,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        logging_steps=settings.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=settings.eval_steps if has_eval else None,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        completion_only_loss=True,
        max_length=None,
        bf16=settings.bf16,
        activation_checkpointing=(not on_cpu if settings.activation_checkpointing is None
                                  else settings.activation_checkpointing),
        use_cpu=on_cpu,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=[],
        dataloader_num_workers=0,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        disable_tqdm=False,
        **settings.extra,
    )


def train_sft(
    model,
    processor,
    train_rows: Sequence[dict],
    eval_rows: Sequence[dict] | None,
    output_dir: str | Path,
    settings: SFTSettings | None = None,
    resume: bool = False,
    eval_fn: Callable[[Any], dict] | None = None,
    eval_every: int | None = None,
    device: str | None = None,
) -> dict:
    """Train with trl's SFTTrainer; returns ``{"output_dir", "log_history", "settings"}``.

    The final model and processor are saved to ``output_dir`` (a LoRA model
    saves its adapter, which ``load_policy`` puts back on the base model).
    ``eval_fn(model) -> dict`` is called every ``eval_every`` steps
    (default ``settings.eval_steps``) and logged as ``val_<key>``. ``device``:
    where the trainer runs ("cpu" sets trl's ``use_cpu``); None = the model's device.
    """
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from seglib.models import require_trainable

    settings = settings or SFTSettings()
    require_trainable(model)  # a frozen adapter would save an identical policy
    device = device or next(model.parameters()).device.type
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    use_dense = (settings.dense_weight > 0 or settings.target_weight > 0) and "dense_objectness" in train_rows[0]
    train_ds = to_dataset(train_rows)
    eval_ds = to_dataset(eval_rows) if eval_rows else None
    has_eval = eval_ds is not None and len(eval_ds) > 0
    config = _sft_config(settings, output_dir, has_eval, device)
    base_collator = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    callbacks = [task_eval_callback(eval_fn, eval_every or settings.eval_steps)] if eval_fn else []
    trainer = dense_trainer_class()(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds if has_eval else None,
        processing_class=processor,
        data_collator=DenseCollator(base_collator),
        callbacks=callbacks,
    )
    hooks = attach_dense_heads(trainer, model, settings) if use_dense else []
    checkpoint = last_checkpoint(output_dir) if resume else None
    check_checkpoint_space(model, output_dir, settings.save_total_limit)
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        for hook in hooks:
            hook.remove()
    trainer.save_model(str(output_dir))
    processor.save_pretrained(str(output_dir))
    history = trainer.state.log_history
    (output_dir / "log_history.json").write_text(json.dumps(history, indent=1))
    (output_dir / "sft_settings.json").write_text(json.dumps(asdict(settings), indent=1))
    return {"output_dir": str(output_dir), "log_history": history, "settings": asdict(settings)}


# --------------------------------------------------------------------------- one paradigm, end to end
def _finished(paradigm: "Paradigm", output_dir: Path, device: str, evaluate: Callable) -> dict:
    """A folder finished earlier (e.g. by `accelerate launch -m seglib.train sft`): evaluated, not trained again."""
    from seglib.models import load_policy

    model, processor = load_policy(output_dir, device=device)
    history = output_dir / "log_history.json"
    rows, summary, by_kind = evaluate(model, processor)
    return {"log_history": json.loads(history.read_text()) if history.is_file() else [], "rows": rows,
            "summary": summary, "by_kind": by_kind, "n_train_rows": None, "model": model, "processor": processor}


def sft_paradigm(paradigm: "Paradigm", base: str | Path, output_dir: str | Path, train_samples: Sequence,
                 val_samples: Sequence, segmenter, settings: SFTSettings, trajectories: Sequence = (),
                 data_dir: str | Path | None = None, lora: dict | None = None, resume: bool = False,
                 device: str = "cpu", max_clicks: int = 5, max_new_tokens: int = 96, eval_during: int = 0,
                 max_pixels: int | None = None, token_budgets: dict[str, int] | None = None) -> dict:
    """Load ``base``, train one paradigm, evaluate on ``val_samples``; returns logs and per-sample rows.

    ``paradigm``: a ``seglib.paradigms`` instance (its options: how it reads and
    writes); ``trajectories``: F_sim trajectories for a paradigm that ``needs_trajectories``.
    Dense targets (``settings.dense_weight`` > 0) come from ``data_dir``'s
    instances. ``eval_during`` > 0 also scores the first ``eval_during`` val
    samples every ``settings.eval_steps`` steps (logged as ``val_giou`` …);
    ``max_clicks``: the horizon of a stepped paradigm's greedy episodes (``seglib.inference.predict_split``).
    The policy is loaded for training (``seglib.models.load_for_training``:
    fp32 weights unless a LoRA adapter trains); ``max_pixels`` caps the
    processor's image size (saved with the checkpoint). The target texts are
    counted against ``token_budgets`` (name → tokens; default
    ``{"max_new_tokens": max_new_tokens}``) and the count is printed and
    returned as ``target_tokens``.
    """
    from seglib.inference.task import save_task
    from seglib.models import load_for_training
    from seglib.train.sft_eval import evaluate_policy, evaluate_split, summarise

    output_dir = Path(output_dir)

    def evaluate(model, processor):
        return evaluate_split(model, processor, paradigm, val_samples, segmenter, max_clicks, max_new_tokens)

    if resume and (output_dir / "sft_done.json").is_file():
        return _finished(paradigm, output_dir, device, evaluate)
    model, processor = load_for_training(base, lora=lora, device=device, max_pixels=max_pixels)
    scene = grid = None
    if (settings.dense_weight > 0 or settings.target_weight > 0) and data_dir is not None:
        from seglib.train.pretrain_vision import grid_for, scene_objects

        scene, grid = scene_objects(data_dir), grid_for(model, processor)
    train_rows = sft_rows(paradigm.sft_examples(train_samples, trajectories), scene, grid)
    # a paradigm whose examples need trajectories gets none for the val samples: no eval loss
    eval_rows = sft_rows(paradigm.sft_examples([s for s in val_samples if s.kind != "reasoning"][:16]), scene, grid)
    if not train_rows:
        raise ValueError(f"sft_paradigm({paradigm.name}): no training rows (no samples or trajectories in the run folder)")
    tokens_report = target_token_report(processor.tokenizer, [r["completion"][0]["content"][0]["text"]
                                                              for r in train_rows],
                                        token_budgets or {"max_new_tokens": max_new_tokens})
    print(format_token_report(tokens_report, f"{paradigm.name} SFT targets"))
    eval_fn = None
    if eval_during:
        few = list(val_samples[:eval_during])

        def eval_fn(m):
            return summarise(evaluate_policy(m, processor, paradigm, few, segmenter, max_clicks, max_new_tokens))

    result = train_sft(model, processor, train_rows, eval_rows, output_dir, settings, resume=resume,
                       eval_fn=eval_fn, eval_every=settings.eval_steps, device=device)
    save_task(output_dir, paradigm)
    rows, summary, by_kind = evaluate(model, processor)
    (output_dir / "val_metrics.json").write_text(json.dumps({"all": summary, "by_kind": by_kind,
                                                            "n_train_rows": len(train_rows)}, indent=1))
    (output_dir / "sft_done.json").write_text(json.dumps({**paradigm.task(), "start": str(base)}))
    return {"log_history": result["log_history"], "rows": rows, "summary": summary, "by_kind": by_kind,
            "n_train_rows": len(train_rows), "model": model, "processor": processor, "target_tokens": tokens_report}


# --------------------------------------------------------------------------- token budgets
def target_token_report(tokenizer: Any, texts: Sequence[str], budgets: dict[str, int]) -> dict:
    """How many target texts fit each token budget: ``{"n", "mean", "max", "over": {name: count}}``.

    ``budgets`` maps a name (e.g. ``max_new_tokens``, ``grpo_max_completion_length``)
    to a length in tokens; a target counts as over when its token count plus
    one (the end-of-turn token the answer must end with) exceeds it.
    """
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts]
    return {"n": len(lengths), "mean": float(np.mean(lengths)) if lengths else 0.0,
            "max": int(max(lengths, default=0)),
            "over": {name: int(sum(n > int(b) for n in lengths)) for name, b in budgets.items() if b is not None}}


def format_token_report(report: dict, what: str = "targets") -> str:
    """One line: ``polygon SFT targets: 12 of 300 exceed max_new_tokens (512) ...``."""
    parts = [f"{what}: {report['n']} texts, {report['mean']:.0f} tokens on average, {report['max']} at most"]
    parts += [f"{c} over {name}" for name, c in report["over"].items()]
    return "; ".join(parts)
