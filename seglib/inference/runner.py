"""Prediction runners: any checkpoint, any paradigm, the strategies it declares, one JSONL file each.

``predict_split`` runs a policy on the samples of a split and appends to
``<run_dir>/predictions/<checkpoint>-<strategy>.jsonl`` (``records``). The
strategies (METHODS.md, "Inference-time scaling"), in ``STRATEGIES``:

* ``greedy``: one deterministic episode per sample, batched step-synchronously
  (``rollout``; batch size never changes an answer). A stepped paradigm runs its
  horizon (``max_clicks`` clicks from an empty mask) and predicts the last mask;
  ``steps`` records every step (IoU-versus-clicks, NoC).
* ``sample`` / ``vote``: N sampled answers (``vote``: StAR's majority vote).
* ``prm_search``: SegAgent's PRM tree search, T steps × K candidates
  (``seglib.search``); the label is ``prm_search_k<K>``.

A paradigm says which apply (``Paradigm.strategies()``); ``run_checkpoint`` runs
the requested ones it has.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seglib.inference import records
from seglib.inference.policy import GenerateFn, load_checkpoint_policy
from seglib.inference.records import base_record, fill_prediction


@dataclass
class Job:
    """What a strategy's record function needs besides the samples."""

    paradigm: Any
    generate: GenerateFn
    segmenter: Any
    checkpoint: str
    label: str
    n_samples: int = 8
    search_k: int = 1
    search_t: int = 5
    patience: int | None = 1
    vote_kwargs: dict | None = None
    seed: int = 0


#: sampled answers are drawn in blocks of this many, block b > 0 reseeded from (seed, sample, b): the first
#: 8·m answers of a sample are the same whatever N a run asks for, so a larger N extends a smaller one
SAMPLE_BLOCK = 8


def stepped_record(sample: Any, result: Any, job: Job) -> dict:
    """The record of a stepped episode or search (``seglib.search.SearchResult``): the last or best mask, and ``steps``."""
    from seglib.masks import encode_rle
    from seglib.search import result_to_record

    p = job.paradigm
    rec = base_record(sample, p.name, job.checkpoint, job.label)
    part = result_to_record(result)
    rec["texts"] = [s["text"] for s in part["steps"]]
    rec["answers"] = [p.to_json(p.parse(t)) for t in rec["texts"]]
    rec["parsed"] = bool(result.steps)
    rec["mask_rle"] = encode_rle(result.mask) if result.steps else None
    rec["object_rles"] = [rec["mask_rle"]] if result.steps and result.mask.any() else []
    rec["boxes"] = []
    rec.update(part)
    return rec


def greedy_records(samples: Sequence[Any], job: Job) -> list[dict]:
    """Greedy episodes for a batch of samples (one ``generate`` call per step)."""
    from seglib.inference.rollout import rollout, stepped_result

    p = job.paradigm
    stepped = p.stepped
    out = []
    for ep in rollout(p, samples, job.generate, job.segmenter, final_look=stepped):
        s = ep.sample
        if stepped:
            out.append(stepped_record(s, stepped_result(ep, p.horizon, s.union_mask()), job))
            continue
        lk = ep.steps[0]
        rec = base_record(s, p.name, job.checkpoint, job.label)
        rec.update(texts=[lk.text], answers=[lk.decoded.answer])
        out.append(fill_prediction(rec, lk.decoded, s.height, s.width))
    return out


def sampled_records(samples: Sequence[Any], job: Job) -> list[dict]:
    """``sample`` / ``vote``: N sampled answers per sample (``inference.vote``)."""
    from seglib.inference.vote import sampled_record

    strategy = "sample" if job.label == "sample" else "vote"
    return [sampled_record(s, sampled_blocks(s, job), job.paradigm.name, job.checkpoint, strategy, job.vote_kwargs)
            for s in samples]


def sampled_blocks(sample: Any, job: Job) -> list:
    """``job.n_samples`` sampled answers of one sample, ``SAMPLE_BLOCK`` at a time (block 0 under the seed the
    caller set, block b > 0 reseeded with ``sample_seed(seed, sample, "<label>-block<b>")``)."""
    from seglib.inference.rollout import sampled

    reseed = getattr(job.generate, "reseed", None)
    looks: list = []
    for b, start in enumerate(range(0, job.n_samples, SAMPLE_BLOCK)):
        if b and reseed is not None:
            reseed(records.sample_seed(job.seed, sample.sample_id, f"{job.label}-block{b}"))
        looks += sampled(job.paradigm, sample, job.generate, job.segmenter, min(SAMPLE_BLOCK, job.n_samples - start))
    return looks


def search_records(samples: Sequence[Any], job: Job) -> list[dict]:
    """``prm_search_k<K>``: SegAgent's PRM tree search per sample (``seglib.search.prm_search``)."""
    from seglib.search import prm_search

    p = job.paradigm
    return [stepped_record(s, prm_search(p, p.start(s), job.generate, job.segmenter, job.search_t, k=job.search_k,
                                         patience=job.patience, gt_mask=s.union_mask()), job) for s in samples]


@dataclass(frozen=True)
class Strategy:
    """A strategy's record function; ``batched``: it takes a batch of samples (else one at a time, reseeded);
    ``do_sample``: the generation settings recorded are the sampled ones."""

    records: Callable[[Sequence[Any], Job], list[dict]]
    batched: bool
    do_sample: bool


#: strategy name → how its records are made (a paradigm declares which apply: ``Paradigm.strategies``)
STRATEGIES: dict[str, Strategy] = {
    "greedy": Strategy(greedy_records, batched=True, do_sample=False),
    "sample": Strategy(sampled_records, batched=False, do_sample=True),
    "vote": Strategy(sampled_records, batched=False, do_sample=True),
    "prm_search": Strategy(search_records, batched=False, do_sample=True),
}


def strategy_label(strategy: str, k: int = 1) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {tuple(STRATEGIES)}")
    return f"prm_search_k{k}" if strategy == "prm_search" else strategy


def predict_split(
    samples: Sequence[Any],
    generate: GenerateFn,
    segmenter: Any,
    paradigm: Any,
    run_dir: str | Path,
    checkpoint: str,
    strategy: str = "greedy",
    n_samples: int = 8,
    max_clicks: int | None = None,
    search_k: int = 1,
    search_t: int = 5,
    patience: int | None = 1,
    batch_size: int = 8,
    seed: int = 0,
    vote_kwargs: dict | None = None,
    progress: bool = True,
) -> Path:
    """Predict every sample and append to ``<run_dir>/predictions/<checkpoint>-<label>.jsonl``.

    ``paradigm``: the checkpoint's ``Paradigm`` (``load_task``); ``max_clicks``: the horizon of a
    paradigm with that option (None = its own). Resumable: samples already in the file are skipped (a
    torn last line is cut). Sampled strategies reseed per sample (``sample_seed``), so results do not
    depend on order, batching or interruption.
    """
    from tqdm.auto import tqdm

    from seglib.inference.task import with_options

    label = strategy_label(strategy, search_k)
    if strategy not in paradigm.strategies():
        raise ValueError(f"strategy {strategy!r} does not apply to paradigm {paradigm.name!r} with these options; "
                         f"it has {paradigm.strategies()}")
    paradigm = with_options(paradigm, max_clicks=max_clicks)
    path = records.prediction_path(run_dir, checkpoint, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = records.read_predictions(path, repair=True)
    for i, r in enumerate(existing):
        if r["checkpoint"] != checkpoint or r["strategy"] != label:
            raise records.PredictionFileError(f"{path}: line {i + 1} is {r['checkpoint']}-{r['strategy']}, not {checkpoint}-{label}")
    done = {r["sample_id"] for r in existing}
    todo = [s for s in samples if s.sample_id not in done]
    how = STRATEGIES[strategy]
    job = Job(paradigm, generate, segmenter, checkpoint, label, n_samples, search_k, search_t, patience, vote_kwargs,
              seed)
    reseed = getattr(generate, "reseed", None)
    settings_of = getattr(generate, "settings", None)
    generation = settings_of(how.do_sample) if callable(settings_of) else None
    bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc=f"{checkpoint} {label}", disable=not progress)
    step = batch_size if how.batched else 1
    for start in range(0, len(todo), step):
        chunk = todo[start : start + step]
        if not how.batched and reseed is not None:
            reseed(records.sample_seed(seed, chunk[0].sample_id, label))
        for rec in how.records(chunk, job):
            if generation is not None:
                rec["generation"] = generation
            records.append_record(path, rec)
        bar.update(len(chunk))
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


SCALING_ON = ("all", "latest")


def strategies_by_checkpoint(checkpoints: Sequence[Path], paradigms_by_name: dict[str, Any],
                             strategies: Sequence[str], scaling_on: str = "all",
                             paradigms: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Checkpoint name → the strategies to run on it.

    ``scaling_on`` "all": every strategy on every checkpoint; "latest": greedy everywhere, the
    inference-time scaling strategies (sample, vote, prm_search) only on each paradigm's latest
    main stage (``star-<p>``, else ``grpo-<p>``, else ``sft-<p>``), the one the claims compare them on.
    Only those exact folder names are main stages: ``grpo-<p>-rlonly`` and the variants of
    ``grpo_variants`` (``grpo-<p>-<name>``) never count as the latest, so they get greedy only.
    ``paradigms``: the paradigms whose checkpoints get the scaling strategies at all (None: every one);
    the others get greedy only.
    """
    if scaling_on not in SCALING_ON:
        raise ValueError(f"scaling_on must be one of {SCALING_ON}, got {scaling_on!r}")
    plan = {c.name: list(strategies) for c in checkpoints}
    names = set(plan)
    of = {n: paradigms_by_name[n].name for n in names}
    if paradigms is not None:
        from seglib.paradigms import PARADIGMS
        unknown = sorted(set(paradigms) - set(PARADIGMS))
        if unknown:
            raise ValueError(f"scaling_paradigms names unknown paradigms {unknown}; choose from {sorted(PARADIGMS)}")
    scaled = set(of.values()) if paradigms is None else set(paradigms)
    if scaling_on == "all":
        latest = {n for n in names if of[n] in scaled}
    else:
        latest = set()
        for p in {of[n] for n in names} & scaled:
            found = [f"{prefix}{p}" for prefix in CHECKPOINT_PREFIXES if f"{prefix}{p}" in names]  # main stages only
            latest.update(found[-1:])
    return {n: [s for s in st if n in latest or s == "greedy"] for n, st in plan.items()}


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
    paradigm: Any = None,
    progress: bool = True,
    search_samples: Sequence[Any] | None = None,
) -> list[Path]:
    """Every requested strategy the checkpoint's paradigm has (``Paradigm.strategies``); returns the files.

    ``paradigm``: the checkpoint's ``Paradigm`` (None = ``load_task(checkpoint_dir)``); ``prm_search``
    runs once per K in ``search_k``, on ``search_samples`` (None: ``samples``), since K candidates a step
    cost about K times greedy. Generation: ``max_new_tokens``, sampling's
    ``temperature``/``top_p``/``top_k`` (0 = none) and ``repetition_penalty`` (1 = none, GRPO's
    setting), all explicit (``Policy``); each record carries them as ``generation``.
    """
    from seglib.inference.task import load_task

    checkpoint_dir = Path(checkpoint_dir)
    paradigm = paradigm or load_task(checkpoint_dir)
    policy = load_checkpoint_policy(checkpoint_dir, device=device, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_p=top_p, batch_size=batch_size, top_k=top_k,
                                    repetition_penalty=repetition_penalty)
    paths = []
    for strategy in (s for s in strategies if s in paradigm.strategies()):
        for k in (search_k if strategy == "prm_search" else (1,)):
            on = search_samples if strategy == "prm_search" and search_samples is not None else samples
            paths.append(predict_split(on, policy, segmenter, paradigm, run_dir, checkpoint_dir.name, strategy,
                                       n_samples=n_samples, max_clicks=max_clicks, search_k=k, search_t=search_t,
                                       patience=patience, batch_size=batch_size, seed=seed, progress=progress))
    return paths
