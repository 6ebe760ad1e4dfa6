"""The prediction-line schema and its files: one JSON object per sample, append-only JSONL.

``predict_split`` writes ``<run_dir>/predictions/<checkpoint>-<strategy>.jsonl``;
evaluation (``seglib.evaluation``) reads only these files, so every line
carries the ground truth it is scored against. This module imports nothing
of seglib above L0 (masks), so evaluation can read records without loading
any model code.

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
(predicted inclusive boxes in image pixels where the paradigm writes boxes, else []).

Keys present for some strategies:

* ``samples`` (sample, vote): list of N ``{"text", "answer", "parsed",
  "object_rles", "scores", "boxes"}``.
* ``vote`` (vote): ``{"n", "iou_thr", "min_vote_ratio", "aggregate", "k_hat", "empty",
  "fallback", "clusters": [{"members": [[sample, object], ...], "votes", "mean_score",
  "chosen", "rank", "kept", "rle"}]}``.
* ``steps`` (stepped paradigms): list of ``{"step" (1-based), "text", "click"
  ([x, y, positive] in pixels, or null), "pred_iou" (self-predicted IoU of
  the step's mask, fraction, or null for a policy without one), "iou" (true IoU of
  the step's mask), "mask_rle", "chosen" (index into candidates),
  "candidates"}``; each candidate is ``{"text" (the action's text), "click",
  "score_text" (the greedy text at the candidate's next state, which holds
  its predicted IoU), "pred_iou", "iou", "mask_rle"}`` (one candidate for
  ``greedy``, K for ``prm_search_k<K>``). Stepped lines also carry
  ``best_step`` (1-based; the last step for greedy), ``stopped_by``
  ("max_steps" | "patience" | "no_action") and ``search`` ``{"k", "t",
  "initial_pred_iou"}``.
* ``generation``: the generation settings of the policy (``Policy.settings``), when known.

``read_predictions`` tolerates a torn last line, and ``predict_split`` resumes
at the first missing sample.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from seglib.paradigms.text import json_default

SCHEMA_VERSION = 1
REQUIRED_KEYS = (
    "schema", "sample_id", "split", "kind", "paradigm", "checkpoint", "strategy", "height", "width",
    "gt_rle", "gt_boxes", "texts", "answers", "parsed", "mask_rle", "object_rles", "boxes",
)


class PredictionFileError(ValueError):
    """A prediction file that cannot be read; the message names the file and line."""


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
    line = json.dumps(record, separators=(",", ":"), default=json_default)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def sample_seed(seed: int, sample_id: str, salt: str = "") -> int:
    """A per-sample seed, so sampled answers do not depend on order, batching or resuming."""
    digest = hashlib.sha256(f"{seed}:{salt}:{sample_id}".encode()).hexdigest()
    return int(digest[:8], 16)


# --------------------------------------------------------------------------- building a record


def base_record(sample: Any, paradigm: str, checkpoint: str, strategy: str) -> dict:
    """The keys every line starts with: identity and ground truth (``paradigm`` is the paradigm's name)."""
    from seglib.masks import encode_rle

    return {
        "schema": SCHEMA_VERSION, "sample_id": sample.sample_id, "split": sample.split, "kind": sample.kind,
        "paradigm": paradigm, "checkpoint": checkpoint, "strategy": strategy,
        "height": int(sample.height), "width": int(sample.width),
        "gt_rle": encode_rle(sample.union_mask()), "gt_boxes": [list(map(int, b)) for b in sample.target_boxes()],
    }


def fill_prediction(rec: dict, decoded: Any, height: int, width: int) -> dict:
    """``parsed``, ``mask_rle``, ``object_rles``, ``boxes`` of one decoded answer (a ``paradigms.base.Decoded``)."""
    from seglib.masks import encode_rle

    rec["parsed"] = decoded.parsed
    rec["mask_rle"] = encode_rle(decoded.union(height, width)) if decoded.parsed else None
    rec["object_rles"] = [encode_rle(m) for m in decoded.object_masks]
    rec["boxes"] = decoded.boxes
    return rec
