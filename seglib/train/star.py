"""StaR+ policy improvement for a stepped paradigm (SegAgent, following STaR).

One round n (METHODS.md, "Training"; SegAgent ran one round, on clicks):

1. S_0 is the SFT policy; round n rolls out S_{n-1} on training images with
   the segmenter, from the paradigm's first state, for at most ``max_clicks``
   steps (stopping once IoU ≥ ``tau_stop``), through ``seglib.inference.rollout``.
2. At every step the policy's action is applied to the current state. The
   action is **kept if it raised the IoU**. Otherwise it is **replaced by
   the oracle's action for that state** (``Paradigm.oracle_answer``: F_sim's
   click on the state's mask, with the clicks taken so far), and the rollout
   continues from the corrected state.

   *Zero change*: an action that leaves the IoU unchanged (ΔIoU = 0, up to
   ``min_gain``, default 0) is **replaced** like a harmful one. SegAgent keeps
   an action only if it *raises* the IoU; an action with no effect wastes a
   step of a budget of ``max_clicks``, and teaching it would teach the policy
   to stall. An unparsable action is replaced too.
3. S_n is trained **from S_0** (not from S_{n-1}) on the original
   trajectories ∪ the refined ones. The original STaR trains on the new data
   alone; the union is SegAgent's change.

Logged per round: the share of actions replaced (and of unparsable ones), the
IoU-versus-clicks curve of the plain policy rollouts (S_{n-1}, no correction)
and of the refined rollouts, and the dataset size. The figures are
``seglib.viz.plot_rounds`` / ``plot_iou_vs_clicks`` / ``plot_refined_example``.

The step (:func:`refine_step`) uses only Paradigm members (``parse``,
``decode``, ``oracle_answer``, ``observe``, ``target_text``); a policy is any
``GenerateFn`` (a loaded ``seglib.inference.Policy``; tests pass scripted ones).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seglib.inference.policy import GenerateFn
from seglib.masks import encode_rle, mask_iou
from seglib.search import Look, action_of, look


@dataclass
class StarStep:
    """One step of a (refined) rollout. Clicks are pixel ``[x, y, positive]``; IoUs are fractions."""

    step: int
    action_text: str  # what the policy wrote
    policy_click: list | None  # the policy's click in pixels, None if unparsable
    iou_before: float
    iou_policy: float | None  # IoU after the policy's click (None if unparsable)
    click: list  # the click taken: the policy's, or the oracle's when replaced
    replaced: bool
    iou_after: float
    mask_before_rle: dict  # the state the action was chosen in


@dataclass
class StarRollout:
    sample_id: str
    steps: list[StarStep] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)  # IoU after 0, 1, 2, … clicks (0 = empty mask)
    stop_reason: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def require_stepped(paradigm: Any) -> Any:
    """``paradigm`` if StaR+ applies to it (a stepped paradigm, ``Paradigm.stepped``); else ValueError."""
    if not paradigm.stepped:
        raise ValueError(f"StaR+ needs a stepped paradigm; {paradigm.name!r} takes one step")
    return paradigm


def _mask_of(state: Any) -> np.ndarray:
    return np.zeros((state.height, state.width), bool) if state.mask is None else np.asarray(state.mask, bool)


def refine_step(paradigm: Any, state: Any, action_text: str, segmenter: Any, correct: bool = True,
                min_gain: float = 0.0, step_index: int | None = None) -> tuple[StarStep, Any]:
    """Apply the policy's action at ``state``; keep it if IoU rose by more than ``min_gain``, else take the oracle's.

    Returns the step record and the next state. With ``correct=False`` the
    policy's action is always taken (a plain rollout); an unparsable action
    then leaves the state unchanged. No oracle action (a perfect mask, or
    nothing left to click) also leaves the state unchanged.
    """
    gt = state.sample.union_mask()
    mask = _mask_of(state)
    iou_before = mask_iou(mask, gt)
    mine = look(paradigm, state, action_text, segmenter)
    policy_click = action_of(mine)
    iou_policy = mask_iou(mine.next_state.mask, gt) if mine.decoded.parsed else None
    keep = mine.decoded.parsed and (not correct or iou_policy > iou_before + min_gain)
    taken, nxt = None, state
    if keep:
        taken, nxt = policy_click, mine.next_state
    elif correct:
        answer = paradigm.oracle_answer(state, segmenter)
        if answer is not None:
            decoded, oracle = paradigm.decode(state, answer, segmenter)
            taken, nxt = action_of(Look(state, "", decoded, oracle)), oracle
    step = StarStep(step=len(state.clicks) + 1 if step_index is None else step_index, action_text=action_text,
                    policy_click=None if policy_click is None else list(policy_click), iou_before=iou_before,
                    iou_policy=iou_policy, click=None if taken is None else list(taken), replaced=not keep and correct,
                    iou_after=mask_iou(_mask_of(nxt), gt), mask_before_rle=encode_rle(mask))
    return step, nxt


def rollout(paradigm: Any, samples: Sequence[Any], generate: GenerateFn, segmenter: Any, max_clicks: int = 5,
            tau_stop: float = 0.98, correct: bool = True, min_gain: float = 0.0,
            show_progress: bool = True) -> list[StarRollout]:
    """Roll the policy out on every sample from its first state, step-synchronously (one ``generate`` call per step).

    ``correct=True`` gives StaR+ refined rollouts, ``False`` plain policy
    rollouts. Samples with an empty target have no click to make and are
    skipped (as in trajectory simulation). The IoU curve of each rollout is
    padded with its last value to ``max_clicks + 1`` entries, so curves average.
    The prompt is the paradigm's (its options: the form the policy was trained with).
    """
    from seglib.inference.rollout import rollout as run_episodes

    def step(ep: Any, text: str) -> None:
        st, ep.state = refine_step(paradigm, ep.state, text, segmenter, correct=correct, min_gain=min_gain,
                                   step_index=len(ep.notes) + 1)
        ep.notes.append(st)
        if st.iou_after >= tau_stop:
            ep.stopped_by = "tau_stop"

    todo = [s for s in samples if s.union_mask().any()]
    episodes = run_episodes(paradigm, todo, generate, segmenter, horizon=max_clicks, step=step,
                            progress=show_progress, desc="StaR+ rollout" if correct else "rollout")
    outs = []
    for ep in episodes:
        gt = ep.sample.union_mask()
        ious = [mask_iou(np.zeros_like(gt), gt)] + [st.iou_after for st in ep.notes]
        outs.append(StarRollout(ep.sample.sample_id, list(ep.notes), ious + [ious[-1]] * (max_clicks + 1 - len(ious)),
                                "tau_stop" if ep.stopped_by == "tau_stop" else "max_clicks"))
    return outs


@dataclass
class RoundStats:
    round: int
    n_rollouts: int
    n_actions: int
    n_replaced: int
    n_unparsable: int
    share_replaced: float
    share_unparsable: float
    iou_curve_policy: list[float]  # mean IoU after k clicks, plain S_{n-1} rollouts
    iou_curve_refined: list[float]  # mean IoU after k clicks, refined rollouts
    n_original_examples: int
    n_refined_examples: int
    dataset_size: int


def replacement_shares(rollouts: Sequence[StarRollout]) -> tuple[int, int, int]:
    """(actions, replaced, unparsable) over all steps of refined rollouts."""
    steps = [st for r in rollouts for st in r.steps]
    return len(steps), sum(st.replaced for st in steps), sum(st.policy_click is None for st in steps)


def mean_curve(rollouts: Sequence[StarRollout]) -> list[float]:
    if not rollouts:
        return []
    return np.mean(np.array([r.ious for r in rollouts], dtype=float), axis=0).tolist()


def refined_examples(paradigm: Any, rollouts: Sequence[StarRollout], samples_by_id: dict[str, Any]) -> list[dict]:
    """SFT examples from refined rollouts: per step (what the policy saw, its prompt, the kept/corrected action as
    target in the paradigm's form, ``Paradigm.target_text``). Steps where nothing could be clicked give none."""
    from seglib.clicker import Click
    from seglib.masks import decode_rle
    from seglib.paradigms.base import State

    out = []
    for r in rollouts:
        s = samples_by_id[r.sample_id]
        image = None
        for st in r.steps:
            if st.click is None:
                continue
            image = s.image() if image is None else image
            state = State(s, image, decode_rle(st.mask_before_rle))
            view, prompt = paradigm.observe(state)
            out.append({
                "sample_id": f"{r.sample_id}-star{st.step}",
                "image": view,
                "prompt": prompt,
                "target": paradigm.target_text(state, Click(st.click[0], st.click[1], st.click[2])),
                "replaced": st.replaced,
                "kind": getattr(s, "kind", ""),
            })
    return out


def write_rollouts(path: str | Path, rollouts: Sequence[StarRollout]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for r in rollouts:
            fh.write(json.dumps(r.to_json()) + "\n")


def read_rollouts(path: str | Path) -> list[StarRollout]:
    out = []
    for line in Path(path).read_text().splitlines():
        d = json.loads(line)
        d["steps"] = [StarStep(**st) for st in d["steps"]]
        out.append(StarRollout(**d))
    return out


# ----------------------------------------------------------------------------------------------- rounds in a run folder
def sft_rows(examples: Sequence[dict]) -> list[dict]:
    """``refined_examples`` → rows in ``seglib.train.sft``'s format (prompt-completion conversation, one image)."""
    from seglib.train.common import chat_row

    return [chat_row(e["image"], e["prompt"], e["target"], sample_id=e["sample_id"], kind=e.get("kind", ""))
            for e in examples]


def _is_policy(folder: Path) -> bool:
    return (folder / "config.json").exists() or (folder / "adapter_config.json").exists()


def run_star(
    run_dir: str | Path,
    segmenter: Any,
    rounds: int = 1,
    max_samples: int | None = None,
    max_clicks: int = 5,
    tau_stop: float = 0.98,
    min_gain: float = 0.0,
    sft_settings: Any = None,
    max_new_tokens: int = 24,
    batch_size: int = 8,
    resume: bool = True,
    device: str = "cpu",
    adapter: str = "merge",
    paradigm: str = "clicks",
) -> dict:
    """StaR+ for a stepped ``paradigm`` in a run folder; returns the per-round statistics.

    S_0 = ``checkpoints/sft-<paradigm>`` (its task: ``load_task``); rollouts on the ``train`` split of
    ``data/`` (the first ``max_samples``); the original trajectories are ``trajectories/train.jsonl``
    (notebook 02), made into SFT rows by ``Paradigm.sft_examples`` (F_sim's steps, as earlier releases:
    no ``hold`` rows). Round n writes its rollouts (``rollouts_plain.jsonl``,
    ``rollouts_refined.jsonl``) and its policy S_n to ``checkpoints/star-<paradigm>/round-<n>/``; the
    last round's policy is also saved at ``checkpoints/star-<paradigm>`` itself, with ``star_done.json``
    (statistics and task) and ``task.json``. A finished round (its statistics and a policy, full weights
    or a LoRA adapter) is not redone on resume.

    S_n is trained from S_0 loaded for training (``seglib.models.load_for_training``):
    a LoRA S_0 is merged in fp32 and fully fine-tuned (``adapter="merge"``) or
    its adapter trained on (``"trainable"``); nothing trainable is an error.
    """
    import shutil

    from seglib.data import load_samples
    from seglib.inference import Policy, load_task, save_task, with_options
    from seglib.models import load_for_training, load_policy
    from seglib.train.sft import SFTSettings, train_sft
    from seglib.train.sft import sft_rows as example_rows
    from seglib.trajectories import read_trajectories

    run_dir = Path(run_dir)
    s0 = run_dir / "checkpoints" / f"sft-{paradigm}"
    if not _is_policy(s0):
        raise FileNotFoundError(f"{s0}: no SFT {paradigm} policy (S_0); run notebook 03 with the {paradigm} paradigm")
    out_dir = run_dir / "checkpoints" / f"star-{paradigm}"
    done = out_dir / "star_done.json"
    if done.exists() and resume:
        return json.loads(done.read_text())
    task = require_stepped(load_task(s0, paradigm=paradigm))
    samples = load_samples(run_dir / "data", split="train")[:max_samples]
    by_id = {s.sample_id: s for s in samples}
    trajectories = read_trajectories(run_dir / "trajectories" / "train.jsonl")
    original = example_rows(with_options(task, hold=False).sft_examples(samples, trajectories))
    settings = sft_settings or SFTSettings(max_steps=50)
    current, stats = s0, []
    for n in range(1, rounds + 1):
        rdir = out_dir / f"round-{n}"
        rdir.mkdir(parents=True, exist_ok=True)
        stats_path = rdir / "round_stats.json"
        if resume and stats_path.exists() and _is_policy(rdir):
            stats.append(json.loads(stats_path.read_text()))
            current = rdir
            continue
        model, processor = load_policy(str(current), device=device)
        policy = Policy(model, processor, max_new_tokens=max_new_tokens, batch_size=batch_size)
        plain = rollout(task, samples, policy, segmenter, max_clicks, tau_stop, correct=False)
        refined = rollout(task, samples, policy, segmenter, max_clicks, tau_stop, correct=True, min_gain=min_gain)
        write_rollouts(rdir / "rollouts_plain.jsonl", plain)
        write_rollouts(rdir / "rollouts_refined.jsonl", refined)
        del model, policy
        examples = refined_examples(task, refined, by_id)
        union = original + sft_rows(examples)
        model0, processor0 = load_for_training(str(s0), device=device, adapter=adapter)  # S_n from S_0
        train_sft(model0, processor0, union, None, rdir, settings, resume=resume)
        save_task(rdir, task)
        n_actions, n_replaced, n_unparsable = replacement_shares(refined)
        st = asdict(RoundStats(
            round=n, n_rollouts=len(refined), n_actions=n_actions, n_replaced=n_replaced,
            n_unparsable=n_unparsable, share_replaced=n_replaced / max(n_actions, 1),
            share_unparsable=n_unparsable / max(n_actions, 1), iou_curve_policy=mean_curve(plain),
            iou_curve_refined=mean_curve(refined), n_original_examples=len(original),
            n_refined_examples=len(examples), dataset_size=len(union)))
        stats_path.write_text(json.dumps(st, indent=1))
        stats.append(st)
        current = rdir
    # the last round's policy at the stage folder itself (what notebooks 06-08 load)
    for f in Path(current).iterdir():
        if f.is_file() and f.name not in ("round_stats.json",):
            shutil.copy2(f, out_dir / f.name)
    save_task(out_dir, task)
    result = {"task": task.task(), "rounds": stats, "s0": str(s0), "min_gain": min_gain, "max_clicks": max_clicks,
              "tau_stop": tau_stop, "max_samples": max_samples}
    done.write_text(json.dumps(result, indent=1))
    return result


def evaluate_policies(checkpoints: dict[str, str | Path], samples: Sequence[Any], segmenter: Any,
                      max_clicks: int = 5, max_new_tokens: int = 24, batch_size: int = 8,
                      device: str = "cpu", paradigm: str = "clicks") -> dict[str, list[StarRollout]]:
    """Plain greedy rollouts (no correction) of each named policy: IoU versus clicks (S_0 against S_n)."""
    from seglib.inference import load_checkpoint_policy, load_task

    out = {}
    for name, path in checkpoints.items():
        task = require_stepped(load_task(path, paradigm=paradigm))
        policy = load_checkpoint_policy(path, device=device, max_new_tokens=max_new_tokens, batch_size=batch_size)
        out[name] = rollout(task, samples, policy, segmenter, max_clicks, tau_stop=1.01, correct=False)
    return out
