"""Prediction runners: any checkpoint, any paradigm, four strategies, one JSONL file.

``predict_split`` runs a policy on the samples of a split and writes
``<run_dir>/predictions/<checkpoint>-<strategy>.jsonl``, one JSON object per
sample. Evaluation (``seglib.evaluation``) reads only these files, so every
line carries the ground truth it is scored against.

Strategies (METHODS.md, "Inference-time scaling")
-------------------------------------------------
* ``greedy``: one deterministic answer per sample (batched; batch size never
  changes the answer: ``seglib.models.generate`` pads on the left with an
  attention mask).
* ``sample``: N answers at ``temperature``/``top_p``; the prediction is the
  first sample (so its score is a single-sample score); all N are stored.
* ``vote``: StAR's mask majority voting (``seglib.voting.majority_vote``) over
  N samples (32, T = 1.0, top-p 0.9 in the paper); the clusters are stored.
* ``prm_search`` (clicks only): SegAgent's PRM tree search, T steps × K
  candidates (``seglib.search``); the label is ``prm_search_k<K>``.

For the clicks paradigm every strategy is stepped: ``greedy`` runs
``max_clicks`` greedy clicks from an empty mask and predicts the last mask;
``steps`` records every click (IoU-versus-clicks, NoC).

Prediction-line schema (``SCHEMA_VERSION`` = 1)
------------------------------------------------
Keys present on every line:

``schema`` int · ``sample_id`` str · ``split`` str · ``kind`` str
(referring/reasoning/multi/empty) · ``paradigm`` str · ``checkpoint`` str ·
``strategy`` str · ``height``, ``width`` int · ``gt_rle`` (COCO RLE of the
union of the targets) · ``gt_boxes`` (inclusive ``[x0, y0, x1, y1]`` per
target; [] for empty queries) · ``texts`` (raw model text(s)) · ``answers``
(parsed answer per text, JSON-ready; ``null`` where unparsable) ·
``parsed`` bool (whether the prediction exists; ``false`` scores I = 0,
U = |GT|) · ``mask_rle`` (COCO RLE of the predicted union mask, ``null`` when
unparsable) · ``object_rles`` (one RLE per predicted object) · ``boxes``
(predicted inclusive boxes in image pixels; boxpoints only, else []).

Keys present for some strategies:

* ``samples`` (sample, vote): list of N ``{"text", "answer", "parsed",
  "object_rles", "scores"}``.
* ``vote`` (vote): ``{"n", "k_hat", "empty", "clusters": [{"members":
  [[sample, object], ...], "votes", "mean_score", "chosen", "rle"}]}``.
* ``steps`` (clicks): list of ``{"step" (1-based), "text", "click"
  ([x, y, positive] or null), "pred_iou" (self-predicted, fraction, or null),
  "iou" (true IoU of the step's mask), "mask_rle", "candidates"}``; for
  ``prm_search`` each candidate is ``{"text", "click", "pred_iou", "iou",
  "mask_rle"}``, and ``best_step`` (1-based) and ``stopped_by`` are set.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
STRATEGIES = ("greedy", "sample", "vote", "prm_search")
REQUIRED_KEYS = (
    "schema", "sample_id", "split", "kind", "paradigm", "checkpoint", "strategy", "height", "width",
    "gt_rle", "gt_boxes", "texts", "answers", "parsed", "mask_rle", "object_rles", "boxes",
)

# A policy, seen from here: images + prompts → per prompt a list of texts.
# (images, prompts, num_return_sequences, do_sample) -> list[list[str]]
GenerateFn = Callable[[list[np.ndarray], list[str], int, bool], list[list[str]]]


class PredictionFileError(ValueError):
    """A prediction file that cannot be read; the message names the file and line."""


# --------------------------------------------------------------------------- file I/O


def prediction_path(run_dir: str | Path, checkpoint: str, strategy: str) -> Path:
    """``<run_dir>/predictions/<checkpoint>-<strategy>.jsonl`` (strategy labels hold no '-')."""
    if "-" in strategy:
        raise ValueError(f"strategy label {strategy!r} may not contain '-'")
    return Path(run_dir) / "predictions" / f"{checkpoint}-{strategy}.jsonl"


def read_predictions(path: str | Path, repair: bool = False) -> list[dict]:
    """The records of a prediction file, in order.

    A torn last line (an interrupted write) is ignored; with ``repair=True`` it
    is also cut off the file, so appending can resume. A bad line anywhere
    else raises ``PredictionFileError`` naming the file and line number.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[dict] = []
    good_end = 0
    pos = 0
    lines = raw.split(b"\n")
    for i, line in enumerate(lines):
        is_last = i == len(lines) - 1
        end = pos + len(line) + (0 if is_last else 1)
        if line.strip():
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except ValueError as err:
                # torn only if nothing but blank lines follow
                if all(not rest.strip() for rest in lines[i + 1 :]):
                    if repair:
                        with open(path, "r+b") as fh:
                            fh.truncate(good_end)
                    return records
                raise PredictionFileError(f"{path}: line {i + 1} is not a JSON object ({err})") from None
            missing = [k for k in REQUIRED_KEYS if k not in rec]
            if missing:
                raise PredictionFileError(f"{path}: line {i + 1} lacks keys {missing}")
            if is_last and repair:  # complete JSON but no newline: add it
                with open(path, "ab") as fh:
                    fh.write(b"\n")
            records.append(rec)
        good_end = end
        pos = end
    return records


def append_record(path: Path, record: dict) -> None:
    """Append one record as a line and flush it to disk."""
    line = json.dumps(record, separators=(",", ":"), default=_json_default)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def to_jsonable(obj: Any) -> Any:
    """A parsed answer as plain JSON types (tuples → lists, numpy → Python, dataclasses → dicts)."""
    return json.loads(json.dumps(obj, default=_json_default))


def sample_seed(seed: int, sample_id: str, salt: str = "") -> int:
    """A per-sample seed, so sampled answers do not depend on order, batching or resuming."""
    digest = hashlib.sha256(f"{seed}:{salt}:{sample_id}".encode()).hexdigest()
    return int(digest[:8], 16)
