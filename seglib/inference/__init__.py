"""Inference: run a checkpoint's policy on samples with the strategies its paradigm declares.

- ``records``: the prediction-line schema, ``read_predictions`` / ``append_record`` (no model imports).
- ``task``: ``save_task`` / ``load_task``, a checkpoint's ``task.json`` ↔ its ``Paradigm``.
- ``policy``: ``Policy``, a loaded checkpoint as a ``GenerateFn``.
- ``rollout``: the one episode loop (observe → generate → decode), batched step-synchronously.
- ``vote``: the ``sample`` and ``vote`` records (StAR's majority vote).
- ``runner``: ``STRATEGIES``, ``predict_split``, ``run_checkpoint``, ``find_checkpoints``.
"""
from seglib.inference.policy import GenerateFn, Policy, load_checkpoint_policy
from seglib.inference.records import (
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    PredictionFileError,
    append_record,
    base_record,
    fill_prediction,
    prediction_path,
    read_predictions,
    sample_seed,
)
from seglib.inference.rollout import Episode, rollout, sampled
from seglib.inference.runner import (
    CHECKPOINT_PREFIXES,
    STRATEGIES,
    find_checkpoints,
    limit_per_split,
    predict_split,
    run_checkpoint,
    strategies_by_checkpoint,
    strategy_label,
)
from seglib.inference.task import load_task, read_task, save_task, with_options

__all__ = [
    "CHECKPOINT_PREFIXES", "REQUIRED_KEYS", "SCHEMA_VERSION", "STRATEGIES", "Episode", "GenerateFn", "Policy",
    "PredictionFileError", "append_record", "base_record", "fill_prediction", "find_checkpoints",
    "limit_per_split", "load_checkpoint_policy", "load_task", "predict_split", "prediction_path",
    "read_predictions", "read_task", "rollout", "run_checkpoint", "sample_seed", "sampled", "save_task",
    "strategies_by_checkpoint", "strategy_label", "with_options",
]
