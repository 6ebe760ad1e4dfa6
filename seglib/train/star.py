"""StaR+ policy improvement for the clicks paradigm (SegAgent, following STaR).

One round n (METHODS.md, "Training"; SegAgent ran one round):

1. S_0 is the SFT policy; round n rolls out S_{n-1} on training images with
   the segmenter, from an empty mask, for at most ``max_clicks`` steps
   (stopping once IoU ≥ ``tau_stop``).
2. At every step the policy's action is applied to the current state. The
   action is **kept if it raised the IoU**. Otherwise it is **replaced by
   F_sim's action for that state** (``seglib.clicker.next_click`` on the
   state's mask, with the clicks taken so far), and the rollout continues from
   the corrected state.

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
and of the refined rollouts, and the dataset size.

The step logic (:func:`refine_step`) is policy-agnostic: a *proposer* maps a
batch of (state image, prompt) to action texts. :func:`policy_proposer` makes
one from a model with ``seglib.models.generate``; tests pass scripted ones.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from seglib.clicker import Click, next_click
from seglib.masks import encode_rle, mask_iou
from seglib.paradigms import clicks as clicks_paradigm

#: A proposer: state images (uint8 RGB, mask overlaid) and prompts → one action text each.
Proposer = Callable[[Sequence[np.ndarray], Sequence[str]], list[str]]


@dataclass
class StarStep:
    """One step of a (refined) rollout. Clicks are pixel ``[x, y, positive]``; IoUs are fractions."""

    step: int
    action_text: str  # what the policy wrote
    policy_click: list | None  # the policy's click in pixels, None if unparsable
    iou_before: float
    iou_policy: float | None  # IoU after the policy's click (None if unparsable)
    click: list  # the click taken: the policy's, or F_sim's when replaced
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


def _c(click: Click | None) -> list | None:
    return None if click is None else [int(click.x), int(click.y), bool(click.positive)]


def _apply(click: Click, clicks_so_far: Sequence[Click], segmenter: Any, prev_logits):
    clicks = list(clicks_so_far) + [click]
    pred = segmenter.predict([(float(c.x), float(c.y)) for c in clicks], [1 if c.positive else 0 for c in clicks],
                             mask_logits=prev_logits)
    return pred, clicks


def refine_step(
    action_text: str,
    gt: np.ndarray,
    mask: np.ndarray,
    clicks_so_far: Sequence[Click],
    prev_logits: np.ndarray | None,
    segmenter: Any,
    correct: bool = True,
    min_gain: float = 0.0,
    step_index: int | None = None,
) -> tuple[StarStep, np.ndarray, list[Click], np.ndarray | None]:
    """Apply the policy's action to the state; keep it if IoU rose by more than ``min_gain``, else use F_sim's.

    The segmenter must hold the sample's image. Returns the step record and
    the next state ``(mask, clicks, logits)``. With ``correct=False`` the
    policy's action is always taken (a plain rollout); an unparsable action
    then leaves the state unchanged.
    """
    h, w = gt.shape
    iou_before = mask_iou(mask, gt)
    action = clicks_paradigm.parse(action_text)
    policy_click = clicks_paradigm.to_click(action, h, w) if action is not None else None
    iou_policy, pred = None, None
    if policy_click is not None:
        pred, clicks = _apply(policy_click, clicks_so_far, segmenter, prev_logits)
        iou_policy = mask_iou(pred.mask, gt)
    keep = policy_click is not None and (not correct or iou_policy > iou_before + min_gain)
    if keep:
        taken, new_mask, new_logits = policy_click, np.asarray(pred.mask, bool), pred.logits
    elif not correct:  # plain rollout, unparsable action: nothing happens
        taken, new_mask, clicks, new_logits = None, mask, list(clicks_so_far), prev_logits
    else:
        taken = next_click(gt, mask, clicked=clicks_so_far)
        if taken is None:  # perfect mask or nothing left to click: keep the state
            new_mask, clicks, new_logits = mask, list(clicks_so_far), prev_logits
        else:
            pred, clicks = _apply(taken, clicks_so_far, segmenter, prev_logits)
            new_mask, new_logits = np.asarray(pred.mask, bool), pred.logits
    step = StarStep(step=len(clicks_so_far) + 1 if step_index is None else step_index, action_text=action_text, policy_click=_c(policy_click),
                    iou_before=iou_before, iou_policy=iou_policy, click=_c(taken), replaced=not keep and correct,
                    iou_after=mask_iou(new_mask, gt), mask_before_rle=encode_rle(mask))
    return step, new_mask, (clicks if taken is not None else list(clicks_so_far)), new_logits


def rollout(
    samples: Sequence[Any],
    propose: Proposer,
    segmenter: Any,
    max_clicks: int = 5,
    tau_stop: float = 0.98,
    correct: bool = True,
    min_gain: float = 0.0,
    prm: bool = False,
    show_progress: bool = True,
    template: str | None = None,
) -> list[StarRollout]:
    """Roll the proposer out on every sample from an empty mask, step-synchronously (one proposer call per step).

    ``correct=True`` gives StaR+ refined rollouts, ``False`` plain policy
    rollouts. Samples with an empty target have no click to make and are
    skipped (as in trajectory simulation). The IoU curve of each rollout is
    padded with its last value to ``max_clicks + 1`` entries, so curves average.
    ``prm`` and ``template`` give the prompt the policy was trained with.
    """
    from tqdm.auto import tqdm

    states = []
    for s in samples:
        gt = s.union_mask()
        if not gt.any():
            continue
        states.append({"sample": s, "image": s.image(), "gt": gt, "mask": np.zeros_like(gt), "clicks": [],
                       "logits": None, "out": StarRollout(s.sample_id, ious=[mask_iou(np.zeros_like(gt), gt)])})
    for _ in tqdm(range(max_clicks), desc="StaR+ rollout" if correct else "rollout", disable=not show_progress):
        active = [st for st in states if not st["out"].stop_reason]
        if not active:
            break
        texts = propose([clicks_paradigm.state_image(st["image"], st["mask"]) for st in active],
                        [clicks_paradigm.prompt(st["sample"], prm=prm, template=template) for st in active])
        for st, text in zip(active, texts):
            segmenter.set_image(st["image"])
            step, st["mask"], st["clicks"], st["logits"] = refine_step(
                text, st["gt"], st["mask"], st["clicks"], st["logits"], segmenter, correct=correct, min_gain=min_gain,
                step_index=len(st["out"].steps) + 1)
            st["out"].steps.append(step)
            st["out"].ious.append(step.iou_after)
            if step.iou_after >= tau_stop:
                st["out"].stop_reason = "tau_stop"
    outs = []
    for st in states:
        out = st["out"]
        out.stop_reason = out.stop_reason or "max_clicks"
        out.ious = out.ious + [out.ious[-1]] * (max_clicks + 1 - len(out.ious))
        outs.append(out)
    return outs


def policy_proposer(model: Any, processor: Any, max_new_tokens: int = 24, do_sample: bool = False,
                    temperature: float = 1.0, batch_size: int = 8) -> Proposer:
    """A proposer that asks the policy (``seglib.models.generate``) for one action per state."""
    from seglib.models import generate

    def propose(images, prompts):
        outs = generate(model, processor, list(images), list(prompts), max_new_tokens=max_new_tokens,
                        do_sample=do_sample, temperature=temperature, batch_size=batch_size)
        return [o[0] if o else "" for o in outs]

    return propose


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


def refined_examples(rollouts: Sequence[StarRollout], samples_by_id: dict[str, Any], prm: bool = False,
                     template: str | None = None, snap: int | None = None) -> list[dict]:
    """SFT examples from refined rollouts: per step (state image, prompt, the kept/corrected action as target).

    ``prm``, ``template`` and ``snap`` as S_0's SFT options (``clicks.prompt`` / ``clicks.target_text``).

    Steps where nothing could be clicked (``click`` None) give no example.
    """
    from seglib.masks import decode_rle

    out = []
    for r in rollouts:
        s = samples_by_id[r.sample_id]
        image = None
        for st in r.steps:
            if st.click is None:
                continue
            image = s.image() if image is None else image
            mask = decode_rle(st.mask_before_rle)
            click = Click(st.click[0], st.click[1], st.click[2])
            out.append({
                "sample_id": f"{r.sample_id}-star{st.step}",
                "image": clicks_paradigm.state_image(image, mask),
                "prompt": clicks_paradigm.prompt(s, prm=prm, template=template),
                "target": clicks_paradigm.target_text(click, s.width, s.height, iou=st.iou_before, prm=prm, snap=snap),
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
    """StaR+ examples → rows in ``seglib.train.sft``'s format (prompt-completion conversation, one image)."""
    from PIL import Image

    return [{
        "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": e["prompt"]}]}],
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": e["target"]}]}],
        "images": [Image.fromarray(np.asarray(e["image"], dtype=np.uint8)).convert("RGB")],
        "sample_id": e["sample_id"], "kind": e.get("kind", ""),
    } for e in examples]


def _sft_options(checkpoint: Path) -> dict:
    """The SFT options a checkpoint's ``task.json`` recorded (``{}`` when there are none)."""
    f = Path(checkpoint) / "task.json"
    try:
        opts = json.loads(f.read_text()).get("options") if f.is_file() else None
    except ValueError:
        raise ValueError(f"{f}: not valid JSON") from None
    return dict(opts) if isinstance(opts, dict) else {}


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
) -> dict:
    """StaR+ for the clicks paradigm in a run folder; returns the per-round statistics.

    S_0 = ``checkpoints/sft-clicks``; rollouts on the ``train`` split of
    ``data/`` (the first ``max_samples``); the original trajectories are
    ``trajectories/train.jsonl`` (notebook 02), made into SFT rows exactly as
    notebook 03 did (``sft.click_rows``). Round n writes its rollouts
    (``rollouts_plain.jsonl``, ``rollouts_refined.jsonl``) and its policy S_n to
    ``checkpoints/star-clicks/round-<n>/``; the last round's policy is also saved
    at ``checkpoints/star-clicks`` itself, with ``star_done.json`` (statistics
    and task) and ``task.json``. A finished round (its statistics and a policy,
    full weights or a LoRA adapter) is not redone on resume.

    S_n is trained from S_0 loaded for training (``seglib.models.load_for_training``):
    a LoRA S_0 is merged in fp32 and fully fine-tuned (``adapter="merge"``) or
    its adapter trained on (``"trainable"``); nothing trainable is an error.
    """
    from seglib.data import load_samples
    from seglib.inference import checkpoint_spec
    from seglib.models import load_for_training, load_policy
    from seglib.trajectories import read_trajectories
    from seglib.train.sft import SFTSettings, click_rows, train_sft

    run_dir = Path(run_dir)
    s0 = run_dir / "checkpoints" / "sft-clicks"
    if not (s0 / "config.json").exists() and not (s0 / "adapter_config.json").exists():
        raise FileNotFoundError(f"{s0}: no SFT clicks policy (S_0); run notebook 03 with the clicks paradigm")
    out_dir = run_dir / "checkpoints" / "star-clicks"
    done = out_dir / "star_done.json"
    if done.exists() and resume:
        return json.loads(done.read_text())
    spec = checkpoint_spec(s0, paradigm="clicks")
    task = {"paradigm": "clicks", "template": spec.template, "prm": spec.prm, "options": _sft_options(s0)}
    samples = load_samples(run_dir / "data", split="train")[:max_samples]
    by_id = {s.sample_id: s for s in samples}
    traj_path = run_dir / "trajectories" / "train.jsonl"
    snap = _sft_options(s0).get("snap")
    original = click_rows(samples, read_trajectories(traj_path),
                          {"prm": spec.prm, "prompt_template": spec.template, "snap": snap})
    settings = sft_settings or SFTSettings(max_steps=50)
    current, stats = s0, []
    for n in range(1, rounds + 1):
        rdir = out_dir / f"round-{n}"
        rdir.mkdir(parents=True, exist_ok=True)
        stats_path = rdir / "round_stats.json"
        if resume and stats_path.exists() and ((rdir / "config.json").exists()
                                               or (rdir / "adapter_config.json").exists()):
            stats.append(json.loads(stats_path.read_text()))
            current = rdir
            continue
        model, processor = load_policy(str(current), device=device)
        propose = policy_proposer(model, processor, max_new_tokens=max_new_tokens, batch_size=batch_size)
        plain = rollout(samples, propose, segmenter, max_clicks, tau_stop, correct=False, prm=spec.prm,
                        template=spec.template)
        refined = rollout(samples, propose, segmenter, max_clicks, tau_stop, correct=True, min_gain=min_gain,
                          prm=spec.prm, template=spec.template)
        write_rollouts(rdir / "rollouts_plain.jsonl", plain)
        write_rollouts(rdir / "rollouts_refined.jsonl", refined)
        del model
        examples = refined_examples(refined, by_id, prm=spec.prm, template=spec.template, snap=snap)
        union = original + sft_rows(examples)
        model0, processor0 = load_for_training(str(s0), device=device, adapter=adapter)  # S_n from S_0
        train_sft(model0, processor0, union, None, rdir, settings, resume=resume)
        (rdir / "task.json").write_text(json.dumps(task, indent=1))
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
    import shutil

    for f in Path(current).iterdir():
        if f.is_file() and f.name not in ("round_stats.json",):
            shutil.copy2(f, out_dir / f.name)
    (out_dir / "task.json").write_text(json.dumps(task, indent=1))
    result = {"task": task, "rounds": stats, "s0": str(s0), "min_gain": min_gain, "max_clicks": max_clicks,
              "tau_stop": tau_stop, "max_samples": max_samples}
    done.write_text(json.dumps(result, indent=1))
    return result


def evaluate_policies(checkpoints: dict[str, str | Path], samples: Sequence[Any], segmenter: Any,
                      max_clicks: int = 5, max_new_tokens: int = 24, batch_size: int = 8,
                      device: str = "cpu") -> dict[str, list[StarRollout]]:
    """Plain greedy click rollouts (no correction) of each named policy: IoU versus clicks (S_0 against S_n)."""
    from seglib.inference import checkpoint_spec
    from seglib.models import load_policy

    out = {}
    for name, path in checkpoints.items():
        spec = checkpoint_spec(path, paradigm="clicks")
        model, processor = load_policy(str(path), device=device)
        propose = policy_proposer(model, processor, max_new_tokens=max_new_tokens, batch_size=batch_size)
        out[name] = rollout(samples, propose, segmenter, max_clicks, tau_stop=1.01, correct=False, prm=spec.prm,
                            template=spec.template)
    return out


def plot_rounds(stats: Sequence[dict]):
    """Share of actions replaced per round, and the IoU-versus-clicks curves of the plain and refined rollouts."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    rounds = [s["round"] for s in stats]
    axes[0].bar(rounds, [100 * s["share_replaced"] for s in stats], label="replaced by F_sim")
    axes[0].bar(rounds, [100 * s["share_unparsable"] for s in stats], label="of which unparsable", alpha=0.7)
    axes[0].set(xlabel="round", ylabel="% of actions", title="actions replaced", xticks=rounds)
    axes[0].legend(fontsize=8)
    for s in stats:
        ks = range(len(s["iou_curve_policy"]))
        axes[1].plot(ks, s["iou_curve_policy"], marker="o", label=f"round {s['round']}: policy S_{s['round'] - 1}")
        axes[1].plot(ks, s["iou_curve_refined"], marker="s", ls="--", label=f"round {s['round']}: refined")
    axes[1].set(xlabel="clicks", ylabel="mean IoU", ylim=(0, 1.02), title="rollouts on train: before / after refining")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_iou_vs_clicks(curves: dict[str, list[float]], title: str = "IoU vs clicks"):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, c in curves.items():
        ax.plot(range(len(c)), c, marker="o", label=name)
    ax.set(xlabel="clicks", ylabel="mean IoU", ylim=(0, 1.02), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_refined_example(r: StarRollout, sample: Any, max_panels: int = 6):
    """One panel per step: the state, the policy's click (hollow) and the click taken (filled); a replaced
    step is titled "replaced" with the IoU the policy's click would have reached."""
    import matplotlib.pyplot as plt

    from seglib.masks import decode_rle
    from seglib.viz import click_markers, show_sample

    steps = r.steps[:max_panels]
    fig, axes = plt.subplots(1, max(len(steps), 1), figsize=(2.7 * max(len(steps), 1), 3.0), squeeze=False)
    image = sample.image()
    for ax, st in zip(axes[0], steps):
        show_sample(ax, image, decode_rle(st.mask_before_rle))
        if st.policy_click is not None:
            click_markers(ax, [tuple(st.policy_click)], hollow=True, size=90)
        if st.click is not None:
            click_markers(ax, [tuple(st.click)])
        pol = "unparsable" if st.iou_policy is None else f"{st.iou_policy:.2f}"
        verdict = "replaced" if st.replaced else "kept"
        ax.set_title(f"step {st.step}: {verdict}\nIoU {st.iou_before:.2f} → policy {pol} → {st.iou_after:.2f}",
                     fontsize=7)
    if not steps:
        axes[0, 0].set_axis_off()
    fig.suptitle(f"{sample.query}: hollow = policy click, filled = click taken", fontsize=8)
    fig.tight_layout()
    return fig
