"""Supervised fine-tuning of the policy on each paradigm's target text (trl ``SFTTrainer``).

METHODS.md "Training / SFT": next-token loss on the assistant's answer only.
Rows are prompt-completion conversations with one image each, so trl masks
every prompt token (labels -100) and trains on the completion alone
(``completion_only_loss``). Rows come from the run folder:

- ``boxpoints`` / ``polygon``: one row per sample of ``data/`` (the paradigm
  module writes the prompt and the target text);
- ``clicks``: one row per step of notebook 02's F_sim trajectories (SegAgent):
  the image with the step's current mask overlaid, the query, and F_sim's click.

Optional for the embedded tiny policy: a dense auxiliary loss on the image
tokens (``seglib.train.pretrain_vision``) added to the text loss (joint
training); 0 turns it off, as for a pre-trained checkpoint.

Checkpoints go to ``output_dir/checkpoint-N`` (``<run_dir>/checkpoints/sft-<paradigm>``);
the final model and processor to ``output_dir`` itself, loadable with
``seglib.models.load_policy``. ``resume=True`` continues from the last checkpoint.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from seglib.train import check_checkpoint_space
from seglib.train.pretrain_vision import DenseHead, ImageTokenTap, SceneObject, dense_loss, dense_targets, grid_for

DENSE_KEYS = ("colour", "shape", "size", "box", "objectness", "target")


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
    seed: int = 0
    extra: dict = field(default_factory=dict)  # any other SFTConfig field


def settings_for(settings: SFTSettings, paradigm: str, overrides: dict | None = None) -> SFTSettings:
    """``settings`` with ``overrides[paradigm]`` applied (``SFTSettings`` fields, e.g. ``{"learning_rate": 2e-3}``).

    Notebook 03's ``sft_paradigm_settings``: one paradigm may need another
    learning rate or step count than the rest.
    """
    extra = (overrides or {}).get(paradigm) or {}
    if not isinstance(extra, dict):
        raise ValueError(f"sft_paradigm_settings[{paradigm!r}] must be a mapping of SFTSettings fields, got {extra!r}")
    names = {f.name for f in fields(SFTSettings)}
    unknown = sorted(set(extra) - names)
    if unknown:
        raise ValueError(f"sft_paradigm_settings[{paradigm!r}]: unknown SFTSettings field(s) {unknown}; "
                         f"known: {sorted(names)}")
    return replace(settings, **extra)


def start_policy(paradigm: str, base: str | Path, checkpoints_dir: str | Path, init: dict | None = None,
                 order: Sequence[str] | None = None, lora: dict | None = None) -> str | Path:
    """Where ``paradigm``'s SFT starts: ``base``, or the finished ``sft-<init[paradigm]>`` policy.

    Notebook 03's ``sft_init`` (our addition, a curriculum): ``{"polygon":
    "boxpoints"}`` trains polygon from the boxpoints SFT policy, which has
    already learnt where the queried object is. ``order`` (the paradigms in
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


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")


def _row(image: np.ndarray, prompt: str, completion: str, **extra: Any) -> dict:
    return {
        "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}],
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": completion}]}],
        "images": [_pil(image)],
        **extra,
    }


def prompt_and_target(paradigm: str, sample, options: dict | None = None) -> tuple[str, str]:
    """(prompt, SFT target text) of one sample for ``boxpoints`` or ``polygon``.

    ``options`` keys: ``prompt_template`` (the paradigm's template name) and any
    keyword of the paradigm's ``target_for_sample`` (``style``, ``think``,
    ``epsilon_ratio``, ``compact``, ``resize``, …); ``resize_image`` (see
    ``seglib.inference.PolicySpec``) only changes the image, not the text.
    """
    from seglib.paradigms import get

    mod = get(paradigm)
    opts = dict(options or {})
    template = opts.pop("prompt_template", None)
    opts.pop("resize_image", None)  # which image the policy sees, not how the target is written
    if paradigm == "boxpoints":
        style = opts.get("style") or ("segzero" if len(sample.target_rles) == 1 else "list")
        text = mod.prompt(sample, style=style, template=template)
    elif paradigm == "polygon":
        text = mod.prompt(sample, template=template or "default")
    else:
        raise ValueError(f"prompt_and_target: use click_rows for paradigm {paradigm!r}")
    return text, mod.target_for_sample(sample, **opts)


def sample_rows(paradigm: str, samples: Sequence, options: dict | None = None,
                scene: dict[str, list[SceneObject]] | None = None, grid: int | None = None) -> list[dict]:
    """SFT rows for ``boxpoints`` / ``polygon`` (one per sample).

    With ``scene`` (``pretrain_vision.scene_objects``) and ``grid``, each row
    also carries the dense per-token targets of its image.
    """
    spec = task_spec(paradigm, options)  # which image the policy sees (Seg-Zero's resize for boxpoints)
    rows = []
    for s in samples:
        prompt, target = prompt_and_target(paradigm, s, options)
        extra = {"sample_id": s.sample_id, "kind": s.kind}
        if scene is not None:
            extra.update(_dense_fields(scene.get(s.image_path, []), s.height, s.width, grid, s))
        rows.append(_row(spec.policy_image(s.image()), prompt, target, **extra))
    return rows


def click_rows(samples: Sequence, trajectories: Sequence, options: dict | None = None,
               scene: dict[str, list[SceneObject]] | None = None, grid: int | None = None,
               max_steps_per_trajectory: int | None = None) -> list[dict]:
    """SFT rows for ``clicks``: one per trajectory step (state image = image + current mask, target = F_sim click).

    ``trajectories`` are ``seglib.trajectories`` records (``sample_id`` and
    steps with the click and the mask *before* it); ``options``: ``prm``, ``snap`` (``clicks.target_text``)
    (bool), ``prompt_template``, ``hold``.

    ``hold`` (our addition, not SegAgent's): a trajectory that reached τ_stop
    also yields its final state, with F_sim's click on an empty mask (a
    positive click deepest inside the target) as the action and, with the
    PRM, the final IoU. F_sim trajectories stop at τ_stop, so without these
    rows the policy never sees a finished mask and its next click at
    inference is off-distribution (measured in notebook 03).
    """
    from seglib.clicker import next_click
    from seglib.masks import decode_rle
    from seglib.paradigms import clicks
    from seglib.trajectories import Trajectory, trajectory_steps

    opts = dict(options or {})
    prm = bool(opts.get("prm", False))
    hold = bool(opts.get("hold", False))
    snap = opts.get("snap")
    template = opts.get("prompt_template")
    by_id = {s.sample_id: s for s in samples}
    rows = []
    for traj in trajectories:
        traj = Trajectory.from_json(traj) if isinstance(traj, dict) else traj
        s = by_id.get(traj.sample_id)
        if s is None:
            continue
        image = s.image()
        prompt = clicks.prompt(s, prm=prm, template=template)
        dense = _dense_fields(scene.get(s.image_path, []), s.height, s.width, grid, s) if scene is not None else {}

        def add(mask, click, iou):
            rows.append(_row(clicks.state_image(image, mask), prompt,
                             clicks.target_text(click, s.width, s.height, iou=iou, prm=prm, snap=snap),
                             sample_id=s.sample_id, kind=s.kind, **dense))

        for k, (mask_before, click, iou_before) in enumerate(trajectory_steps(traj, s)):
            if max_steps_per_trajectory is not None and k >= max_steps_per_trajectory:
                break
            add(mask_before, click, iou_before)
        if hold and traj.stop_reason == "tau_stop" and traj.steps:
            add(decode_rle(traj.steps[-1].mask_rle), next_click(s.union_mask(), None), float(traj.ious[-1]))
    return rows


def _dense_fields(objects: list[SceneObject], height: int, width: int, grid: int | None, sample=None) -> dict:
    if grid is None:
        raise ValueError("dense targets need the token grid (pretrain_vision.grid_for(model, processor))")
    t = dense_targets(objects, height, width, grid)
    if sample is not None and sample.target_rles:
        union = sample.union_mask()
        t["target"] = dense_targets([SceneObject(union, (0, 0, 0, 0), None, None, None)], height, width, grid)["objectness"]
    else:
        t["target"] = np.zeros(grid * grid, np.float32)
    return {f"dense_{k}": t[k].tolist() for k in DENSE_KEYS}


def to_dataset(rows: Sequence[dict]):
    """A 🤗 ``datasets.Dataset`` of the rows (images stored as ``datasets.Image``)."""
    import datasets

    return datasets.Dataset.from_list(list(rows))


# --------------------------------------------------------------------------- trainer


class _DenseCollator:
    """trl's vision collator plus the stacked dense targets (when the rows carry them)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, examples: list[dict]) -> dict:
        dense = None
        if "dense_objectness" in examples[0]:
            dense = {k: torch.as_tensor(np.stack([np.asarray(e[f"dense_{k}"]) for e in examples])) for k in DENSE_KEYS}
        clean = [{k: v for k, v in e.items() if not k.startswith("dense_") and k not in ("sample_id", "kind")}
                 for e in examples]
        out = self.base(clean)
        if dense is not None:
            out["dense_targets"] = dense
        return out


def _make_trainer_class():
    from trl import SFTTrainer

    from seglib.models import reload_checkpoint_weights

    class DenseSFTTrainer(SFTTrainer):
        """trl's SFTTrainer; adds ``dense_weight`` × the dense image-token loss when the batch carries targets."""

        dense_weight: float = 0.0
        dense_head: DenseHead | None = None
        dense_tap: ImageTokenTap | None = None
        target_weight: float = 0.0
        target_head: torch.nn.Module | None = None
        lm_tap: "_LastLayerTap | None" = None

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            reload_checkpoint_weights(self.model if model is None else model, resume_from_checkpoint)

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            self._signature_columns = list(self._signature_columns) + [f"dense_{k}" for k in DENSE_KEYS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            dense = inputs.pop("dense_targets", None)
            result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                          num_items_in_batch=num_items_in_batch)
            if dense is None or self.dense_head is None:
                return result
            loss = result[0] if return_outputs else result
            mode = "train" if model.training else "eval"
            tokens = self.dense_tap.tokens(inputs["input_ids"].shape[0])
            if self.dense_weight:
                dl = dense_loss(self.dense_head(tokens), {k: v.to(tokens.device) for k, v in dense.items()},
                                self.dense_head.box_bins)
                self._metrics[mode]["dense_loss"].append(float(dl.detach().item()))
                loss = loss + self.dense_weight * dl
            if self.target_weight and self.lm_tap is not None:
                image_id = self.processing_class.image_token_id
                hidden = self.lm_tap.hidden[inputs["input_ids"] == image_id].reshape(tokens.shape[0], tokens.shape[1], -1)
                tl = torch.nn.functional.binary_cross_entropy_with_logits(
                    self.target_head(hidden)[..., 0], dense["target"].to(hidden.device).float())
                self._metrics[mode]["target_loss"].append(float(tl.detach().item()))
                loss = loss + self.target_weight * tl
            return (loss, result[1]) if return_outputs else loss

    return DenseSFTTrainer


class _LastLayerTap:
    """Captures the language model's last decoder layer output (B, L, D) with a forward hook."""

    def __init__(self, model):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        lm = base.model.language_model
        self.hidden = None
        self._handle = lm.layers[-1].register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.hidden = output[0] if isinstance(output, tuple) else output

    def remove(self) -> None:
        self._handle.remove()


def _task_eval_callback(eval_fn: Callable[[Any], dict], every: int):
    from transformers import TrainerCallback

    class TaskEval(TrainerCallback):
        """Every ``every`` steps: ``eval_fn(model)`` on a small val slice, appended to the log history."""

        def on_step_end(self, args, state, control, model=None, **kw):
            if every and state.global_step % every == 0:
                metrics = {f"val_{k}": float(v) for k, v in eval_fn(model).items()}
                state.log_history.append({"step": state.global_step, **metrics})
            return control

    return TaskEval()


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete ``checkpoint-N`` folder with the largest N, or None.

    A checkpoint counts once its ``trainer_state.json`` is written (the Trainer writes it last), so a
    process killed in the middle of a save resumes from the previous, complete checkpoint.
    """
    cps = [p for p in Path(output_dir).glob("checkpoint-*")
           if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(cps, key=lambda p: int(p.name.split("-")[-1])) if cps else None


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
) -> dict:
    """Train with trl's SFTTrainer; returns ``{"output_dir", "log_history", "settings"}``.

    The final model and processor are saved to ``output_dir`` (a LoRA model
    saves its adapter, which ``load_policy`` puts back on the base model).
    ``eval_fn(model) -> dict`` is called every ``eval_every`` steps
    (default ``settings.eval_steps``) and logged as ``val_<key>``.
    """
    from trl import SFTConfig
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from seglib.models import require_trainable

    settings = settings or SFTSettings()
    require_trainable(model)  # a frozen adapter would save an identical policy
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    use_dense = (settings.dense_weight > 0 or settings.target_weight > 0) and "dense_objectness" in train_rows[0]
    train_ds = to_dataset(train_rows)
    eval_ds = to_dataset(eval_rows) if eval_rows else None
    has_eval = eval_ds is not None and len(eval_ds) > 0
    config = SFTConfig(
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
        use_cpu=not torch.cuda.is_available(),
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=[],
        dataloader_num_workers=0,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        disable_tqdm=False,
        **settings.extra,
    )
    base_collator = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    trainer_cls = _make_trainer_class()
    callbacks = [_task_eval_callback(eval_fn, eval_every or settings.eval_steps)] if eval_fn else []
    trainer = trainer_cls(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds if has_eval else None,
        processing_class=processor,
        data_collator=_DenseCollator(base_collator),
        callbacks=callbacks,
    )
    tap = None
    if use_dense:
        tap = ImageTokenTap(model)
        device = next(model.parameters()).device
        head = DenseHead(model.config.get_text_config().hidden_size, settings.dense_box_bins).to(device)
        trainer.dense_weight, trainer.dense_head, trainer.dense_tap = settings.dense_weight, head, tap
        heads = list(head.parameters())
        if settings.target_weight > 0:
            lm_tap = _LastLayerTap(model)
            target_head = torch.nn.Linear(model.config.get_text_config().hidden_size, 1).to(device)
            trainer.target_weight, trainer.target_head, trainer.lm_tap = settings.target_weight, target_head, lm_tap
            heads += list(target_head.parameters())
        # the heads train with the model: add their parameters to the optimizer trl creates
        trainer.create_optimizer()
        trainer.optimizer.add_param_group({"params": heads, "weight_decay": 0.0})
    checkpoint = last_checkpoint(output_dir) if resume else None
    check_checkpoint_space(model, output_dir, settings.save_total_limit)
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        if tap is not None:
            tap.remove()
        if getattr(trainer, "lm_tap", None) is not None:
            trainer.lm_tap.remove()
    trainer.save_model(str(output_dir))
    processor.save_pretrained(str(output_dir))
    history = trainer.state.log_history
    (output_dir / "log_history.json").write_text(json.dumps(history, indent=1))
    (output_dir / "sft_settings.json").write_text(json.dumps(asdict(settings), indent=1))
    return {"output_dir": str(output_dir), "log_history": history, "settings": asdict(settings)}


# --------------------------------------------------------------------------- task metrics on a val slice


def task_spec(paradigm: str, options: dict | None = None):
    """The ``seglib.inference.PolicySpec`` matching the SFT options (prompt template, style, frame, PRM)."""
    from seglib.inference import PolicySpec

    o = dict(options or {})
    return PolicySpec(paradigm=paradigm, template=o.get("prompt_template"), style=o.get("style"),
                      resize=o.get("resize"), resize_image=bool(o.get("resize_image", True)),
                      prm=bool(o.get("prm", False)))


def write_task_file(output_dir: str | Path, paradigm: str, options: dict | None = None) -> Path:
    """``task.json``: how this checkpoint reads and writes (read by ``seglib.inference.checkpoint_spec``)."""
    spec = task_spec(paradigm, options)
    path = Path(output_dir) / "task.json"
    path.write_text(json.dumps({"paradigm": paradigm, "prompt_template": spec.template, "style": spec.style,
                                "resize": spec.resize, "resize_image": spec.resize_image, "prm": spec.prm, "options": dict(options or {})}, indent=1))
    return path


def evaluate_policy(model, processor, paradigm: str, samples: Sequence, segmenter, options: dict | None = None,
                    max_clicks: int = 5, max_new_tokens: int = 96, batch_size: int = 8) -> list[dict]:
    """Greedy predictions of the policy on ``samples``, scored; one dict per sample.

    Keys: ``sample_id``, ``kind``, ``iou`` (mask IoU, METHODS.md rules),
    ``parsed``, ``text`` (last text), ``mask`` (bool array or None), and for
    boxpoints ``box_iou`` (first predicted box vs first target box, inclusive;
    0 when missing). Clicks: ``max_clicks`` greedy clicks from an empty mask,
    the last mask is scored; ``step_ious`` holds the IoU after each click.
    Uses ``seglib.inference`` (the same code as notebook 06).
    """
    from seglib import inference
    from seglib.evaluation import score_record, step_ious
    from seglib.masks import box_iou, decode_rle
    from seglib.models import generate as gen

    spec = task_spec(paradigm, options)

    def generate_fn(images, prompts, num_return_sequences=1, do_sample=False):
        return gen(model, processor, images, prompts, max_new_tokens, do_sample=do_sample,
                   num_return_sequences=num_return_sequences, batch_size=batch_size)

    records = []
    if paradigm == "clicks":
        for s in samples:
            records.append(inference.clicks_record(s, generate_fn, segmenter, spec, "eval", "greedy", max_clicks))
    else:
        for start in range(0, len(samples), batch_size):
            records += inference.greedy_records(list(samples[start:start + batch_size]), generate_fn, segmenter,
                                                spec, "eval")
    out = []
    for s, rec in zip(samples, records):
        sc = score_record(rec)
        row = {"sample_id": s.sample_id, "kind": s.kind, "iou": sc.iou, "parsed": sc.parsed,
               "text": (rec.get("texts") or [""])[-1],
               "mask": decode_rle(rec["mask_rle"]) if rec.get("mask_rle") is not None else None}
        if paradigm == "boxpoints":
            gt_boxes, boxes = rec.get("gt_boxes") or [], rec.get("boxes") or []
            row["box_iou"] = float(box_iou(boxes[0], gt_boxes[0])) if boxes and gt_boxes else 0.0
            row["boxes"] = boxes
        if paradigm == "clicks":
            row["step_ious"] = step_ious(rec, max_clicks)
        out.append(row)
    return out


def summarise(rows: Sequence[dict]) -> dict:
    """gIoU (mean IoU), parse rate and, where present, box [email protected] of ``evaluate_policy`` rows."""
    if not rows:
        return {"n": 0}
    out = {"n": len(rows), "giou": float(np.mean([r["iou"] for r in rows])),
           "parsed": float(np.mean([r["parsed"] for r in rows]))}
    if "box_iou" in rows[0]:
        out["acc05"] = float(np.mean([r["box_iou"] >= 0.5 for r in rows]))
    return out


# --------------------------------------------------------------------------- one paradigm, end to end


def training_texts(paradigms: Sequence[str], samples: Sequence, trajectories: Sequence,
                   options: dict | None = None) -> list[str]:
    """Every prompt and target text SFT will show (what the tiny policy's tokenizer is trained on)."""
    from seglib.paradigms import clicks
    from seglib.trajectories import trajectory_steps

    options = options or {}
    texts: list[str] = []
    by_id = {s.sample_id: s for s in samples}
    for p in paradigms:
        if p == "clicks":
            o = options.get("clicks", {})
            for t in trajectories:
                s = by_id.get(t.sample_id)
                if s is None:
                    continue
                texts.append(clicks.prompt(s, prm=bool(o.get("prm")), template=o.get("prompt_template")))
                texts += [clicks.target_text(c, s.width, s.height, iou=iou, prm=bool(o.get("prm")), snap=o.get("snap"))
                          for _, c, iou in trajectory_steps(t, s)]
        else:
            for s in samples:
                texts += list(prompt_and_target(p, s, options.get(p)))
    return texts


def _evaluate(model, processor, paradigm, val_samples, segmenter, options, max_clicks, max_new_tokens):
    """Greedy rows on ``val_samples``, their summary, and the summary per query kind."""
    rows = evaluate_policy(model, processor, paradigm, list(val_samples), segmenter, options, max_clicks,
                           max_new_tokens)
    by_kind = {k: summarise([r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})}
    return rows, summarise(rows), by_kind


def sft_paradigm(paradigm: str, base: str | Path, output_dir: str | Path, train_samples: Sequence,
                 val_samples: Sequence, segmenter, settings: SFTSettings, options: dict | None = None,
                 trajectories: Sequence = (), data_dir: str | Path | None = None, lora: dict | None = None,
                 resume: bool = False, device: str = "cpu", max_clicks: int = 5, max_new_tokens: int = 96,
                 eval_during: int = 0, max_steps_per_trajectory: int | None = None,
                 max_pixels: int | None = None, token_budgets: dict[str, int] | None = None) -> dict:
    """Load ``base``, train one paradigm, evaluate on ``val_samples``; returns logs and per-sample rows.

    Dense targets (``settings.dense_weight`` > 0) come from ``data_dir``'s
    instances. ``eval_during`` > 0 also scores the first ``eval_during`` val
    samples every ``settings.eval_steps`` steps (logged as ``val_giou`` …).
    The policy is loaded for training (``seglib.models.load_for_training``:
    fp32 weights unless a LoRA adapter trains); ``max_pixels`` caps the
    processor's image size (saved with the checkpoint). Polygon targets are
    counted against ``token_budgets`` (name → tokens; default
    ``{"max_new_tokens": max_new_tokens}``) and the count is printed and
    returned as ``target_tokens``.
    """
    from seglib.models import load_for_training, load_policy

    output_dir = Path(output_dir)
    if resume and (output_dir / "sft_done.json").is_file():
        # finished earlier (e.g. by `accelerate launch -m seglib.train sft`): evaluate, do not train again
        model, processor = load_policy(output_dir, device=device)
        history = output_dir / "log_history.json"
        rows, summary, by_kind = _evaluate(model, processor, paradigm, val_samples, segmenter, options, max_clicks,
                                           max_new_tokens)
        return {"log_history": json.loads(history.read_text()) if history.is_file() else [], "rows": rows,
                "summary": summary, "by_kind": by_kind, "n_train_rows": None, "model": model, "processor": processor}
    model, processor = load_for_training(base, lora=lora, device=device, max_pixels=max_pixels)
    scene = grid = None
    if (settings.dense_weight > 0 or settings.target_weight > 0) and data_dir is not None:
        from seglib.train.pretrain_vision import scene_objects

        scene, grid = scene_objects(data_dir), grid_for(model, processor)
    if paradigm == "clicks":
        train_rows = click_rows(train_samples, trajectories, options, scene, grid, max_steps_per_trajectory)
        eval_rows = None
    else:
        train_rows = sample_rows(paradigm, train_samples, options, scene, grid)
        eval_rows = sample_rows(paradigm, [s for s in val_samples if s.kind != "reasoning"][:16], options, scene, grid)
    if not train_rows:
        raise ValueError(f"sft_paradigm({paradigm}): no training rows (no samples or trajectories in the run folder)")
    tokens_report = None
    if paradigm == "polygon":
        tokens_report = target_token_report(processor.tokenizer, [r["completion"][0]["content"][0]["text"]
                                                                  for r in train_rows],
                                            token_budgets or {"max_new_tokens": max_new_tokens})
        print(format_token_report(tokens_report, f"{paradigm} SFT targets"))
    eval_fn = None
    if eval_during:
        few = list(val_samples[:eval_during])

        def eval_fn(m):
            return summarise(evaluate_policy(m, processor, paradigm, few, segmenter, options, max_clicks,
                                             max_new_tokens))

    result = train_sft(model, processor, train_rows, eval_rows, output_dir, settings, resume=resume,
                       eval_fn=eval_fn, eval_every=settings.eval_steps)
    write_task_file(output_dir, paradigm, options)
    rows, summary, by_kind = _evaluate(model, processor, paradigm, val_samples, segmenter, options, max_clicks,
                                       max_new_tokens)
    (Path(output_dir) / "val_metrics.json").write_text(json.dumps({"all": summary, "by_kind": by_kind,
                                                                   "n_train_rows": len(train_rows)}, indent=1))
    (Path(output_dir) / "sft_done.json").write_text(json.dumps({"paradigm": paradigm, "start": str(base),
                                                                 **task_spec(paradigm, options).__dict__}))
    return {"log_history": result["log_history"], "rows": rows, "summary": summary, "by_kind": by_kind,
            "n_train_rows": len(train_rows), "model": model, "processor": processor, "target_tokens": tokens_report}


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
