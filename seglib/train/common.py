"""Trainer plumbing every training stage shares: conversation rows and datasets, logs, checkpoints, the final save.

- ``chat_row``: one SFT row, a prompt-completion conversation with one image (trl's
  vision-language format); ``to_dataset`` makes a 🤗 dataset of such rows.
- ``make_dataset``: GRPO's rows (a prompt conversation, one image, the paradigm's own
  columns for its scorer, non-scalars JSON-encoded).
- ``jsonl_log_callback`` / ``read_log``: every trl log entry as a JSON line, read back
  deduplicated by step (a resumed run rewrites some steps).
- ``task_eval_callback``: a task metric on a val slice every k steps, into the log history.
- ``last_checkpoint``: the newest complete ``checkpoint-N`` of an output folder.
- ``save_final``: the trained policy written once into the output folder (LoRA merged).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from seglib.models import merged_for_saving, to_pil


# --------------------------------------------------------------------------- rows and datasets
def user_turn(prompt: str) -> list[dict]:
    """trl's conversational user turn: one image, then the prompt text."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def chat_row(image: np.ndarray, prompt: str, completion: str, **extra: Any) -> dict:
    """One SFT row: the prompt-completion conversation, its image (PIL) and any ``extra`` columns."""
    return {
        "prompt": user_turn(prompt),
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": completion}]}],
        "images": [to_pil(image)],
        **extra,
    }


def to_dataset(rows: Sequence[dict]):
    """A 🤗 ``datasets.Dataset`` of the rows (images stored as ``datasets.Image``)."""
    import datasets

    return datasets.Dataset.from_list(list(rows))


def make_dataset(rows: Sequence[dict]):
    """🤗 dataset for trl: each row needs ``prompt`` (user text), ``image`` (uint8 RGB array or PIL) and ``sample_id``.

    The prompt becomes trl's conversational form with one image; every other
    key is kept as a column and reaches the reward functions. Values that are
    not plain scalars/strings are JSON-encoded (the paradigm's scorer decodes them).
    """
    from datasets import Dataset

    if not rows:
        raise ValueError("make_dataset: no rows")
    data: dict[str, list] = {"prompt": [], "image": []}
    extra = sorted({k for r in rows for k in r} - {"prompt", "image"})
    if "sample_id" not in extra:
        raise ValueError("make_dataset: every row needs a 'sample_id' (groups are scored by it)")
    for k in extra:
        data[k] = []
    for r in rows:
        data["prompt"].append(user_turn(r["prompt"]))
        data["image"].append(to_pil(r["image"]))
        for k in extra:
            v = r.get(k)
            data[k].append(v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v))
    return Dataset.from_dict(data)


# --------------------------------------------------------------------------- logs
def jsonl_log_callback(path: Path):
    """A trainer callback appending every trl log entry (with its step) to the JSONL file ``path``."""
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


def task_eval_callback(eval_fn: Callable[[Any], dict], every: int):
    """A trainer callback: every ``every`` steps ``eval_fn(model)``, appended to the log history as ``val_<key>``."""
    from transformers import TrainerCallback

    class TaskEval(TrainerCallback):
        """Every ``every`` steps: ``eval_fn(model)`` on a small val slice, appended to the log history."""

        def on_step_end(self, args, state, control, model=None, **kw):
            if every and state.global_step % every == 0:
                metrics = {f"val_{k}": float(v) for k, v in eval_fn(model).items()}
                state.log_history.append({"step": state.global_step, **metrics})
            return control

    return TaskEval()


# --------------------------------------------------------------------------- checkpoints
def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete ``checkpoint-N`` folder with the largest N, or None.

    A checkpoint counts once its ``trainer_state.json`` is written (the Trainer writes it last), so a
    process killed in the middle of a save resumes from the previous, complete checkpoint.
    """
    cps = [p for p in Path(output_dir).glob("checkpoint-*")
           if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(cps, key=lambda p: int(p.name.split("-")[-1])) if cps else None


def save_final(trainer: Any, processor: Any, out_dir: Path) -> None:
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
