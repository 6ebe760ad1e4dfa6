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
  ([x, y, positive] in pixels, or null), "pred_iou" (self-predicted IoU of
  the step's mask, fraction, or null for a non-PRM policy), "iou" (true IoU of
  the step's mask), "mask_rle", "chosen" (index into candidates),
  "candidates"}``; each candidate is ``{"text" (the action's text), "click",
  "score_text" (the greedy text at the candidate's next state, which holds
  its predicted IoU), "pred_iou", "iou", "mask_rle"}`` (one candidate for
  ``greedy``, K for ``prm_search_k<K>``). Clicks lines also carry
  ``best_step`` (1-based; the last step for greedy), ``stopped_by``
  ("max_steps" | "patience" | "no_action") and ``search`` ``{"k", "t",
  "initial_pred_iou"}``.

Prediction files are append-only JSONL; ``read_predictions`` tolerates a torn
last line, and ``predict_split`` resumes at the first missing sample.
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


# --------------------------------------------------------------------------- how to talk to a checkpoint


@dataclass
class PolicySpec:
    """How a checkpoint was trained to read and write: its paradigm and prompt form.

    ``template``: the paradigm's prompt template key (None = the paradigm's
    default); ``style``: boxpoints answer style ("segzero" | "list"; None =
    SFT's per-sample choice);
    ``resize``: boxpoints Seg-Zero frame side (None = pixels of the image as
    given); ``resize_image``: with ``resize``, whether the policy also sees the
    image resized to ``resize × resize`` (Seg-Zero) or sees it as given and
    writes coordinates on the coarser ``resize`` grid (the tiny policy's
    choice); ``prm``: clicks policy writes ``Current IoU: …`` first.
    """

    paradigm: str
    template: str | None = None
    style: str | None = None
    resize: int | None = None
    prm: bool = False
    resize_image: bool = True

    def policy_image(self, image: np.ndarray) -> np.ndarray:
        """The image as the policy sees it (Seg-Zero's ``resize × resize`` copy for boxpoints, else as given)."""
        if self.paradigm == "boxpoints" and self.resize and self.resize_image:
            import cv2

            return cv2.resize(image, (int(self.resize), int(self.resize)), interpolation=cv2.INTER_LINEAR)
        return image

    def prompt(self, sample: Any) -> str:
        """The user prompt exactly as SFT built it (``seglib.train.sft.prompt_and_target``)."""
        if self.paradigm == "clicks":
            from seglib.paradigms import clicks

            return clicks.prompt(sample, prm=self.prm, template=self.template)
        options = {"prompt_template": self.template}
        if self.paradigm == "boxpoints" and self.style:
            options["style"] = self.style
        try:
            from seglib.train.sft import prompt_and_target
        except ImportError:  # a tree without the training code: the paradigm's own prompt
            from seglib.paradigms import get

            mod = get(self.paradigm)
            if self.paradigm == "boxpoints":
                return mod.prompt(sample, style=self.style or "list", template=self.template)
            return mod.prompt(sample, template=self.template or "default")
        return prompt_and_target(self.paradigm, sample, options)[0]


TASK_FILES = ("task.json", "seglib_task.json", "sft_done.json", "grpo_done.json", "star_done.json")
_TASK_ALIASES = {"prompt_template": "template", "boxpoints_style": "style", "segzero_resize": "resize"}


def checkpoint_spec(checkpoint_dir: str | Path, paradigm: str | None = None, **overrides: Any) -> PolicySpec:
    """The ``PolicySpec`` of a checkpoint folder.

    Reads the first of ``TASK_FILES`` present that names the fields (at the top
    level or under ``"task"``); the paradigm otherwise comes from the folder
    name (``sft-<paradigm>``, ``grpo-<paradigm>[-<variant>]``, ``star-clicks``).
    ``overrides`` win over both.
    """
    from seglib.paradigms import PARADIGMS

    checkpoint_dir = Path(checkpoint_dir)
    found: dict[str, Any] = {}
    for name in TASK_FILES:
        f = checkpoint_dir / name
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except ValueError as err:
                raise ValueError(f"{f}: not valid JSON ({err})") from None
            for block in (data, data.get("task") if isinstance(data, dict) else None):
                if isinstance(block, dict):
                    block = {_TASK_ALIASES.get(k, k): v for k, v in block.items()}
                    found.update({k: block[k] for k in ("paradigm", "template", "style", "resize", "resize_image", "prm")
                                  if k in block and k not in found})
    parts = checkpoint_dir.name.split("-")
    tail = parts[1] if len(parts) > 1 else parts[0]
    paradigm = overrides.pop("paradigm", None) or paradigm or found.pop("paradigm", None) or tail
    found.pop("paradigm", None)
    if paradigm not in PARADIGMS:
        raise ValueError(f"{checkpoint_dir}: cannot tell the paradigm (got {paradigm!r}); pass paradigm=")
    fields = {**found, **{k: v for k, v in overrides.items() if v is not None}}
    return PolicySpec(paradigm=paradigm, **fields)


class Policy:
    """A loaded checkpoint as a ``GenerateFn`` (``seglib.models.generate`` with fixed, explicit settings).

    Generation settings are this object's (``max_new_tokens``, sampling's
    ``temperature``/``top_p``/``top_k``, ``repetition_penalty`` for both), never
    the checkpoint's ``generation_config``; the eos ids are the union of the
    tokenizer's and the checkpoint's. ``settings(do_sample)`` gives them as a
    dict, which ``predict_split`` writes into every record (``generation``).
    ``reseed(seed)`` fixes the sampling stream before a sample's work, so a
    sample's sampled answers do not depend on what ran before it.
    """

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 128, temperature: float = 1.0,
                 top_p: float = 1.0, batch_size: int = 8, top_k: int = 0, repetition_penalty: float = 1.0):
        self.model, self.processor = model, processor
        self.max_new_tokens, self.temperature, self.top_p, self.batch_size = max_new_tokens, temperature, top_p, batch_size
        self.top_k, self.repetition_penalty = top_k, repetition_penalty

    def reseed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def settings(self, do_sample: bool = False) -> dict:
        """The generation settings of a greedy (``do_sample=False``) or sampled call, as recorded."""
        from seglib.models import generation_settings

        return generation_settings(self.model, self.processor.tokenizer, self.max_new_tokens, do_sample,
                                   self.temperature, self.top_p, self.top_k, self.repetition_penalty)

    def __call__(self, images: list[np.ndarray], prompts: list[str], num_return_sequences: int = 1,
                 do_sample: bool = False) -> list[list[str]]:
        from seglib.models import generate

        return generate(self.model, self.processor, images, prompts, self.max_new_tokens, do_sample=do_sample,
                        temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                        repetition_penalty=self.repetition_penalty,
                        num_return_sequences=num_return_sequences, batch_size=self.batch_size)


def load_checkpoint_policy(checkpoint_dir: str | Path, device: str = "cpu", **kwargs: Any) -> Policy:
    from seglib.models import load_policy

    model, processor = load_policy(str(checkpoint_dir), device=device)
    return Policy(model, processor, **kwargs)


# --------------------------------------------------------------------------- decoding one text


@dataclass
class Decoded:
    answer: Any  # parsed answer (JSON-ready) or None
    parsed: bool
    object_masks: list[np.ndarray]
    scores: list[float]
    boxes: list[list[int]] = field(default_factory=list)

    def union(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), bool)
        for m in self.object_masks:
            out |= m
        return out


def decode_text(text: str, spec: PolicySpec, height: int, width: int, segmenter: Any = None) -> Decoded:
    """One boxpoints/polygon text → per-object masks (the segmenter must hold the image)."""
    from seglib.paradigms import get

    mod = get(spec.paradigm)
    answer = mod.parse(text)
    if answer is None:
        return Decoded(None, False, [], [])
    if spec.paradigm == "boxpoints":
        objects = mod.to_image_frame(answer, height, width, spec.resize)
        if not objects:
            return Decoded(to_jsonable(answer), True, [], [])
        if segmenter is None:
            raise ValueError("boxpoints decoding needs a segmenter")
        preds = segmenter.predict_many(mod.segmenter_prompts(objects))
        return Decoded(to_jsonable(answer), True, [np.asarray(p.mask, bool) for p in preds],
                       [float(p.score) for p in preds], [[int(v) for v in o.box] for o in objects])
    if spec.paradigm == "polygon":
        m = mod.decode(answer, height, width)
        return Decoded(to_jsonable(answer), True, [m] if m.any() else [], [1.0] if m.any() else [])
    raise ValueError(f"decode_text: {spec.paradigm!r} is stepped; use the clicks runner")


# --------------------------------------------------------------------------- records


def _base_record(sample: Any, spec: PolicySpec, checkpoint: str, strategy: str) -> dict:
    from seglib.masks import encode_rle

    return {
        "schema": SCHEMA_VERSION, "sample_id": sample.sample_id, "split": sample.split, "kind": sample.kind,
        "paradigm": spec.paradigm, "checkpoint": checkpoint, "strategy": strategy,
        "height": int(sample.height), "width": int(sample.width),
        "gt_rle": encode_rle(sample.union_mask()), "gt_boxes": [list(map(int, b)) for b in sample.target_boxes()],
    }


def _fill_prediction(rec: dict, dec: Decoded, height: int, width: int) -> dict:
    from seglib.masks import encode_rle

    rec["parsed"] = dec.parsed
    rec["mask_rle"] = encode_rle(dec.union(height, width)) if dec.parsed else None
    rec["object_rles"] = [encode_rle(m) for m in dec.object_masks]
    rec["boxes"] = dec.boxes
    return rec


def greedy_records(samples: Sequence[Any], generate: GenerateFn, segmenter: Any, spec: PolicySpec,
                   checkpoint: str) -> list[dict]:
    """Greedy answers for a batch of boxpoints/polygon samples (one ``generate`` call)."""
    images = [s.image() for s in samples]
    texts = generate([spec.policy_image(im) for im in images], [spec.prompt(s) for s in samples], 1, False)
    out = []
    for s, im, ts in zip(samples, images, texts):
        if segmenter is not None and spec.paradigm == "boxpoints":
            segmenter.set_image(im)
        dec = decode_text(ts[0], spec, s.height, s.width, segmenter)
        rec = _base_record(s, spec, checkpoint, "greedy")
        rec.update(texts=[ts[0]], answers=[dec.answer])
        out.append(_fill_prediction(rec, dec, s.height, s.width))
    return out


def sampled_record(sample: Any, generate: GenerateFn, segmenter: Any, spec: PolicySpec, checkpoint: str,
                   strategy: str, n_samples: int, vote_kwargs: dict | None = None) -> dict:
    """N sampled answers for one sample; ``strategy`` "sample" (first sample) or "vote" (StAR's vote)."""
    from seglib.masks import encode_rle

    image = sample.image()
    texts = generate([spec.policy_image(image)], [spec.prompt(sample)], n_samples, True)[0]
    if segmenter is not None and spec.paradigm == "boxpoints":
        segmenter.set_image(image)
    decs = [decode_text(t, spec, sample.height, sample.width, segmenter) for t in texts]
    rec = _base_record(sample, spec, checkpoint, strategy)
    rec["texts"] = list(texts)
    rec["answers"] = [d.answer for d in decs]
    rec["samples"] = [{"text": t, "answer": d.answer, "parsed": d.parsed, "object_rles": [encode_rle(m) for m in d.object_masks],
                       "scores": d.scores, "boxes": d.boxes} for t, d in zip(texts, decs)]
    if strategy == "sample":
        return _fill_prediction(rec, decs[0], sample.height, sample.width)
    from seglib.voting import vote

    opts = {"iou_thr": 0.85, "min_vote_ratio": 0.2, "aggregate": "best", **(vote_kwargs or {})}
    result = vote([d.object_masks for d in decs], [d.scores for d in decs], **opts)
    chosen_rank = {ci: r for r, ci in enumerate(result.chosen)}
    rec["vote"] = {
        "n": len(texts), **opts, "k_hat": result.k_hat, "empty": result.empty_majority, "fallback": result.fallback,
        "clusters": [{"members": [list(m) for m in c.members], "votes": c.votes, "mean_score": c.mean_score,
                      "chosen": ci in chosen_rank, "rank": chosen_rank.get(ci), "kept": ci in result.kept,
                      "rle": encode_rle(c.mask)} for ci, c in enumerate(result.clusters)],
    }
    union = np.zeros((sample.height, sample.width), bool)
    for m in result.masks:
        union |= m
    any_parsed = any(d.parsed for d in decs)
    boxes = []
    for ci in result.chosen:  # the box of each chosen cluster's first member, where it has one
        s_i, o_i = result.clusters[ci].members[0]
        if o_i < len(decs[s_i].boxes):
            boxes.append(decs[s_i].boxes[o_i])
    rec.update(parsed=any_parsed, mask_rle=encode_rle(union) if any_parsed else None,
               object_rles=[encode_rle(m) for m in result.masks], boxes=boxes)
    return rec


def clicks_parse_fn(height: int, width: int) -> Callable[[str], tuple[float | None, tuple[int, int, bool] | None]]:
    """Clicks text → (self-predicted IoU fraction, pixel click) for ``seglib.search``."""
    from seglib.paradigms import clicks

    def parse(text: str):
        a = clicks.parse(text)
        if a is None:
            return None, None
        c = clicks.to_click(a, height, width)
        return a.iou, (int(c.x), int(c.y), bool(c.positive))

    return parse


def clicks_record(sample: Any, generate: GenerateFn, segmenter: Any, spec: PolicySpec, checkpoint: str,
                  strategy: str, max_clicks: int, k: int = 1, patience: int | None = 1) -> dict:
    """A clicks rollout: ``greedy`` (max_clicks greedy clicks, last mask) or ``prm_search_k<K>``."""
    from seglib.masks import encode_rle
    from seglib.paradigms import clicks
    from seglib.search import prm_search, result_to_record

    image = sample.image()
    gt = sample.union_mask()
    prompt = spec.prompt(sample)
    state = lambda mask: (clicks.state_image(image, mask), prompt)  # noqa: E731
    parse = clicks_parse_fn(sample.height, sample.width)
    if strategy == "greedy":
        res = prm_search(image, state, generate, parse, segmenter, max_clicks, k=1, patience=None, gt_mask=gt,
                         select="last")
    else:
        res = prm_search(image, state, generate, parse, segmenter, max_clicks, k=k, patience=patience, gt_mask=gt)
    rec = _base_record(sample, spec, checkpoint, strategy)
    part = result_to_record(res)
    rec["texts"] = [s["text"] for s in part["steps"]]
    rec["answers"] = [to_jsonable(clicks.parse(t)) for t in rec["texts"]]
    rec["parsed"] = bool(res.steps)
    rec["mask_rle"] = encode_rle(res.mask) if res.steps else None
    rec["object_rles"] = [rec["mask_rle"]] if res.steps and res.mask.any() else []
    rec["boxes"] = []
    rec.update(part)
    return rec


# --------------------------------------------------------------------------- the runner


def strategy_label(strategy: str, k: int = 1) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    return f"prm_search_k{k}" if strategy == "prm_search" else strategy


def predict_split(
    samples: Sequence[Any],
    generate: GenerateFn,
    segmenter: Any,
    spec: PolicySpec,
    run_dir: str | Path,
    checkpoint: str,
    strategy: str = "greedy",
    n_samples: int = 8,
    max_clicks: int = 5,
    search_k: int = 1,
    search_t: int = 5,
    patience: int | None = 1,
    batch_size: int = 8,
    seed: int = 0,
    vote_kwargs: dict | None = None,
    progress: bool = True,
) -> Path:
    """Predict every sample and append to ``<run_dir>/predictions/<checkpoint>-<label>.jsonl``.

    Resumable: samples already in the file are skipped (a torn last line is
    cut). Sampled strategies reseed per sample (``sample_seed``), so results do
    not depend on order, batching or interruption.
    """
    from tqdm.auto import tqdm

    label = strategy_label(strategy, search_k)
    if spec.paradigm == "clicks" and strategy in ("sample", "vote"):
        raise ValueError("clicks predictions are stepped: use strategy 'greedy' or 'prm_search'")
    if strategy == "prm_search" and spec.paradigm != "clicks":
        raise ValueError(f"prm_search needs the clicks paradigm, not {spec.paradigm!r}")
    path = prediction_path(run_dir, checkpoint, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = read_predictions(path, repair=True)
    for i, r in enumerate(existing):
        if r["checkpoint"] != checkpoint or r["strategy"] != label:
            raise PredictionFileError(f"{path}: line {i + 1} is {r['checkpoint']}-{r['strategy']}, not {checkpoint}-{label}")
    done = {r["sample_id"] for r in existing}
    todo = [s for s in samples if s.sample_id not in done]
    reseed = getattr(generate, "reseed", None)
    settings_of = getattr(generate, "settings", None)
    # greedy for greedy answers and greedy clicks; sampling for sample/vote and the PRM search's candidates
    generation = settings_of(strategy not in ("greedy",)) if callable(settings_of) else None

    def append(rec: dict) -> None:
        if generation is not None:
            rec["generation"] = generation
        append_record(path, rec)

    bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc=f"{checkpoint} {label}", disable=not progress)
    if strategy == "greedy" and spec.paradigm != "clicks":
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for rec in greedy_records(chunk, generate, segmenter, spec, checkpoint):
                append(rec)
            bar.update(len(chunk))
    else:
        for s in todo:
            if reseed is not None:
                reseed(sample_seed(seed, s.sample_id, label))
            if spec.paradigm == "clicks":
                rec = clicks_record(s, generate, segmenter, spec, checkpoint, label,
                                    max_clicks if strategy == "greedy" else search_t, k=search_k, patience=patience)
            else:
                rec = sampled_record(s, generate, segmenter, spec, checkpoint, label, n_samples, vote_kwargs)
            append(rec)
            bar.update(1)
    bar.close()
    return path


# --------------------------------------------------------------------------- a whole run folder

CHECKPOINT_PREFIXES = ("sft-", "grpo-", "star-")


def find_checkpoints(run_dir: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """The run's finished checkpoints (``checkpoints/sft-*``, ``grpo-*``, ``star-*``) in stage order.

    A folder counts when it holds a model (``config.json``) or a LoRA adapter
    (``adapter_config.json``). ``names`` keeps only those folder names.
    """
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    order = {p: i for i, p in enumerate(CHECKPOINT_PREFIXES)}
    found = [d for d in root.iterdir() if d.is_dir() and d.name.startswith(CHECKPOINT_PREFIXES)
             and ((d / "config.json").exists() or (d / "adapter_config.json").exists())]
    if names is not None:
        found = [d for d in found if d.name in set(names)]
    return sorted(found, key=lambda d: (order[d.name.split("-", 1)[0] + "-"], d.name))


def limit_per_split(samples: Sequence[Any], max_per_split: int | None) -> list[Any]:
    """The first ``max_per_split`` samples of each split (all with None), order kept."""
    if max_per_split is None:
        return list(samples)
    seen: dict[str, int] = {}
    out = []
    for s in samples:
        if seen.get(s.split, 0) < max_per_split:
            out.append(s)
            seen[s.split] = seen.get(s.split, 0) + 1
    return out


def run_checkpoint(
    checkpoint_dir: str | Path,
    samples: Sequence[Any],
    run_dir: str | Path,
    strategies: Sequence[str] = ("greedy",),
    segmenter: Any = None,
    device: str = "cpu",
    n_samples: int = 8,
    temperature: float = 1.0,
    top_p: float = 0.9,
    max_new_tokens: int = 128,
    max_clicks: int = 5,
    top_k: int = 0,
    repetition_penalty: float = 1.0,
    search_t: int = 5,
    search_k: Sequence[int] = (1,),
    patience: int | None = 1,
    batch_size: int = 8,
    seed: int = 0,
    spec: PolicySpec | None = None,
    progress: bool = True,
) -> list[Path]:
    """Every enabled strategy that fits the checkpoint's paradigm; returns the prediction files.

    ``vote``/``sample`` apply to boxpoints and polygon; ``prm_search`` to a
    clicks policy that writes its IoU (``spec.prm``), once per K in ``search_k``.
    Generation: ``max_new_tokens``, sampling's ``temperature``/``top_p``/``top_k``
    (0 = none) and ``repetition_penalty`` (1 = none, GRPO's setting), all explicit
    (``Policy``); each record carries them as ``generation``.
    """
    checkpoint_dir = Path(checkpoint_dir)
    spec = spec or checkpoint_spec(checkpoint_dir)
    policy = load_checkpoint_policy(checkpoint_dir, device=device, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_p=top_p, batch_size=batch_size, top_k=top_k,
                                    repetition_penalty=repetition_penalty)
    paths = []
    for strategy in strategies:
        if spec.paradigm == "clicks" and strategy in ("sample", "vote"):
            continue
        if strategy == "prm_search" and (spec.paradigm != "clicks" or not spec.prm):
            continue
        for k in (search_k if strategy == "prm_search" else (1,)):
            paths.append(predict_split(samples, policy, segmenter, spec, run_dir, checkpoint_dir.name, strategy,
                                       n_samples=n_samples, max_clicks=max_clicks, search_k=k, search_t=search_t,
                                       patience=patience, batch_size=batch_size, seed=seed, progress=progress))
    return paths
