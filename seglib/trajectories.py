"""F_sim click trajectories (SegAgent, "Trajectory generation"; METHODS.md).

A trajectory starts from a state (an empty mask by default; optionally the mask
of a box prompt, or of a few random clicks, as extra starting states) and then
repeats: F_sim (``seglib.clicker.next_click``) clicks on the current error, and
the segmenter runs on *all clicks so far plus the previous step's logits*.
Three principles decide when it ends:

1. at most ``max_clicks`` (T) steps;
2. it stops once IoU ≥ ``tau_stop`` (default 0.98; values below 0.8 are refused);
3. ``gain_rule="paper"`` (default): an action whose IoU gain over the previous
   state is below ``tau_diff`` ends the trajectory, and that action is not kept
   (it is recorded as ``rejected``, not as a step: the steps are training targets).
   ``gain_rule="best"`` is the public code's variant: a click is kept only if its
   IoU beats the best IoU so far; a click that does not is discarded (its pixel
   stays marked as clicked, so F_sim moves on) and simulation continues from the
   unchanged state; every attempt counts towards T.

Defined behaviour for the other sample kinds: a multi-object sample is one
target, the union of its masks (F_sim clicks on the union's errors); an empty
sample (no target) has no trajectory: ``simulate`` returns None and
``simulate_split`` writes no line for it.

Starting states: ``"box"`` prompts the segmenter with the target's box (the
union's box) once; the box is not part of later prompts, which hold clicks and
logits only, as in the clicks paradigm at inference. ``"random_clicks"`` draws
1-3 clicks (the first positive inside the target, the others positive inside or
negative outside, 50/50) from ``seed`` and the sample id; they are ordinary clicks
and stay in the prompt.

Each step records the click (pixels), the action text of the clicks paradigm
(``seglib.paradigms.clicks.target_text``: ``Positive point: (x, y)`` on the
0-1000 grid), the mask after the click (COCO RLE), its IoU and the segmenter's
score. ``ious[0]`` is the IoU of the starting state, ``ious[k]`` after k kept
clicks. JSONL: one line per trajectory (``simulate_split``/``read_trajectories``).
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from seglib.clicker import Click, next_click
from seglib.masks import box_from_mask, decode_rle, encode_rle, mask_iou

STARTS = ("empty", "box", "random_clicks")
GAIN_RULES = ("paper", "best")
STOP_REASONS = ("tau_stop", "max_clicks", "small_gain", "no_click")


@dataclass
class Step:
    """One kept action: ``click`` = [x, y, positive] in pixels; the state *after* it."""

    click: list
    action: str
    mask_rle: dict
    iou: float
    score: float


@dataclass
class Trajectory:
    sample_id: str
    height: int
    width: int
    start: str
    start_clicks: list  # [[x, y, positive], ...] (random_clicks start), else []
    start_rle: dict  # the mask before the first step
    ious: list  # IoU curve: [start, after step 1, ...]
    steps: list = field(default_factory=list)  # list[Step]
    stop_reason: str = ""
    rejected: list = field(default_factory=list)  # clicks not kept: [{"click", "iou"}]
    settings: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def final_iou(self) -> float:
        return float(self.ious[-1])

    def to_json(self) -> dict:
        d = asdict(self)
        d["n_steps"] = self.n_steps
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Trajectory":
        d = dict(d)
        d.pop("n_steps", None)
        d["steps"] = [Step(**s) for s in d.get("steps", [])]
        return cls(**d)

    def clicks(self) -> list[Click]:
        """The kept clicks, in order (start clicks excluded)."""
        return [Click(int(s.click[0]), int(s.click[1]), bool(s.click[2])) for s in self.steps]

    def masks(self) -> list[np.ndarray]:
        """The mask after each kept step."""
        return [decode_rle(s.mask_rle) for s in self.steps]


def _action_text(click: Click, width: int, height: int) -> str:
    from seglib.paradigms import clicks

    return clicks.target_text(click, width, height)


def _random_start_clicks(gt: np.ndarray, rng: np.random.Generator) -> list[Click]:
    ys, xs = np.nonzero(gt)
    bys, bxs = np.nonzero(~gt)
    i = int(rng.integers(len(xs)))
    out = [Click(int(xs[i]), int(ys[i]), True)]
    for _ in range(int(rng.integers(0, 3))):
        if rng.random() < 0.5 or len(bxs) == 0:
            i = int(rng.integers(len(xs)))
            out.append(Click(int(xs[i]), int(ys[i]), True))
        else:
            i = int(rng.integers(len(bxs)))
            out.append(Click(int(bxs[i]), int(bys[i]), False))
    return out


def _predict(segmenter, clicks: Sequence[Click], logits):
    return segmenter.predict([(c.x, c.y) for c in clicks], [c.label for c in clicks], mask_logits=logits)


def simulate(
    sample: Any,
    segmenter: Any,
    max_clicks: int = 20,
    tau_stop: float = 0.98,
    tau_diff: float = 0.0,
    start: str = "empty",
    seed: int = 0,
    gain_rule: str = "paper",
    image: np.ndarray | None = None,
) -> Trajectory | None:
    """Simulate one F_sim trajectory on ``sample`` (a ``seglib.data.Sample``). See the module docstring.

    ``image``: the sample's image if already loaded. Returns None for an empty target.
    """
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    if gain_rule not in GAIN_RULES:
        raise ValueError(f"gain_rule must be one of {GAIN_RULES}, got {gain_rule!r}")
    if not 0.8 <= tau_stop <= 1.0:
        raise ValueError(f"tau_stop must be in [0.8, 1] (SegAgent never goes below 0.8), got {tau_stop}")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}")
    gt = sample.union_mask()
    if not gt.any():
        return None
    h, w = gt.shape
    segmenter.set_image(sample.image() if image is None else image)
    settings = {"max_clicks": max_clicks, "tau_stop": tau_stop, "tau_diff": tau_diff, "gain_rule": gain_rule,
                "seed": seed, "segmenter": getattr(segmenter, "name", type(segmenter).__name__)}

    clicks: list[Click] = []
    logits = None
    mask = np.zeros_like(gt)
    if start == "box":
        pred = segmenter.predict([], [], box_xyxy=box_from_mask(gt))
        mask, logits = pred.mask, pred.logits
    elif start == "random_clicks":
        rng = np.random.default_rng([seed, zlib.crc32(str(sample.sample_id).encode())])
        clicks = _random_start_clicks(gt, rng)
        pred = _predict(segmenter, clicks, None)
        mask, logits = pred.mask, pred.logits
    traj = Trajectory(
        sample_id=str(sample.sample_id), height=h, width=w, start=start,
        start_clicks=[[c.x, c.y, c.positive] for c in clicks], start_rle=encode_rle(mask),
        ious=[mask_iou(mask, gt)], settings=settings,
    )
    tried: list[Click] = list(clicks)  # every pixel clicked so far, kept or not
    best = traj.ious[0]
    attempts = 0
    while True:
        if traj.ious[-1] >= tau_stop:
            traj.stop_reason = "tau_stop"
            break
        if attempts >= max_clicks:
            traj.stop_reason = "max_clicks"
            break
        click = next_click(gt, mask, tried)
        if click is None:
            traj.stop_reason = "no_click"
            break
        attempts += 1
        tried.append(click)
        pred = _predict(segmenter, clicks + [click], logits)
        iou = mask_iou(pred.mask, gt)
        if gain_rule == "paper" and iou - traj.ious[-1] < tau_diff:
            traj.rejected.append({"click": [click.x, click.y, click.positive], "iou": iou})
            traj.stop_reason = "small_gain"
            break
        if gain_rule == "best" and not iou > best:
            traj.rejected.append({"click": [click.x, click.y, click.positive], "iou": iou})
            continue
        clicks.append(click)
        mask, logits = pred.mask, pred.logits
        best = max(best, iou)
        traj.steps.append(Step([click.x, click.y, click.positive], _action_text(click, w, h), encode_rle(mask),
                               iou, float(pred.score)))
        traj.ious.append(iou)
    return traj


def trajectory_steps(traj: Trajectory | dict, sample: Any = None) -> Iterator[tuple[np.ndarray, Click, float]]:
    """Per kept step: (mask before the click, the click, IoU before it): an SFT example's state and target."""
    if isinstance(traj, dict):
        traj = Trajectory.from_json(traj)
    before = decode_rle(traj.start_rle)
    for k, step in enumerate(traj.steps):
        yield before, Click(int(step.click[0]), int(step.click[1]), bool(step.click[2])), float(traj.ious[k])
        before = decode_rle(step.mask_rle)


def _read_lines(path: Path) -> tuple[list[dict], int]:
    """Parsed records and the byte length of the well-formed prefix (a torn last line is dropped)."""
    data = path.read_bytes()
    records, good, pos, lineno = [], 0, 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl == -1 else nl + 1
        line, lineno = data[pos:end].strip(), lineno + 1
        if line:
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or "sample_id" not in rec:
                    raise ValueError("not a trajectory record")
            except ValueError as err:
                if not data[end:].strip():  # the last line: a write cut short
                    break
                raise ValueError(f"{path}: line {lineno} is not a trajectory record ({err})") from None
            records.append(rec)
        good = pos = end
    return records, good


def read_trajectories(path: str | os.PathLike) -> list[Trajectory]:
    """All trajectories in a JSONL file (a partially written last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trajectory file {path}")
    return [Trajectory.from_json(r) for r in _read_lines(path)[0]]


def target_key(sample: Any) -> tuple | None:
    """What F_sim's trajectory depends on: the image, its size and the target masks (not the query).

    None for a sample without ``image_path`` / ``target_rles`` (it is simulated on its own).
    """
    if getattr(sample, "image_path", None) is None or getattr(sample, "target_rles", None) is None:
        return None
    rles = json.dumps(sample.target_rles, sort_keys=True, default=str)
    return (str(sample.image_path), int(sample.height), int(sample.width), rles)


def simulate_split(
    samples: Sequence[Any],
    segmenter: Any,
    out_path: str | os.PathLike,
    max_clicks: int = 20,
    tau_stop: float = 0.98,
    tau_diff: float = 0.0,
    start: str = "empty",
    seed: int = 0,
    gain_rule: str = "paper",
    progress: bool = True,
    desc: str | None = None,
) -> dict:
    """Simulate every sample (empty targets skipped) into ``out_path`` (JSONL), resuming.

    Records already in the file (same ``sample_id`` and ``start``) are skipped; a
    torn last line from an interrupted run is cut off first. A file written with
    other settings is refused rather than mixed. Returns a summary dict.

    F_sim never reads the query, so samples that share an image and a target
    (one referring expression's several sentences) share one simulation
    (``target_key``): the first sample of the group is simulated and the others
    get a copy under their own ``sample_id`` (``summary["shared"]`` counts the
    copies). With ``start="random_clicks"`` the start clicks then come from the
    first sample's id.
    """
    from tqdm.auto import tqdm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done: set[tuple[str, str]] = set()
    wanted = {"max_clicks": max_clicks, "tau_stop": tau_stop, "tau_diff": tau_diff, "gain_rule": gain_rule,
              "seed": seed, "segmenter": getattr(segmenter, "name", type(segmenter).__name__)}
    if out_path.exists():
        records, good = _read_lines(out_path)
        if good < out_path.stat().st_size:
            with open(out_path, "r+b") as fh:
                fh.truncate(good)
        for r in records:
            if r.get("settings") != wanted:
                raise ValueError(f"{out_path}: holds trajectories made with {r.get('settings')}, not {wanted}; "
                                 "use a new file")
            done.add((r["sample_id"], r["start"]))
        if good and not out_path.read_bytes().endswith(b"\n"):
            with open(out_path, "ab") as fh:
                fh.write(b"\n")
    summary = {"written": 0, "skipped_done": 0, "skipped_empty": 0, "shared": 0, "path": str(out_path)}
    simulated: dict[tuple, Trajectory] = {}
    with open(out_path, "a") as fh:
        for s in tqdm(samples, desc=desc or f"F_sim trajectories ({start})", disable=not progress):
            if (str(s.sample_id), start) in done:
                summary["skipped_done"] += 1
                continue
            key = target_key(s)
            if key is not None and key in simulated:
                traj = Trajectory.from_json({**simulated[key].to_json(), "sample_id": str(s.sample_id)})
                summary["shared"] += 1
            else:
                traj = simulate(s, segmenter, max_clicks=max_clicks, tau_stop=tau_stop, tau_diff=tau_diff,
                                start=start, seed=seed, gain_rule=gain_rule)
                if traj is not None and key is not None:
                    simulated[key] = traj
            if traj is None:
                summary["skipped_empty"] += 1
                continue
            fh.write(json.dumps(traj.to_json()) + "\n")
            fh.flush()
            done.add((traj.sample_id, start))
            summary["written"] += 1
    return summary


def iou_curve(traj: Trajectory, max_clicks: int) -> list[float]:
    """IoU after 1..max_clicks clicks, padded with the last value (a stopped trajectory keeps its mask)."""
    curve = list(traj.ious[1:]) or [traj.ious[0]]
    return (curve + [curve[-1]] * max_clicks)[:max_clicks]


# ------------------------------------------------------------------------------ summaries (notebook 02)
def sample_group(sample: Any) -> str:
    """The shape class a sample is reported under: its target's shape, "multi" for several targets."""
    shapes = (getattr(sample, "meta", None) or {}).get("target_shapes") or []
    if len(shapes) > 1:
        return "multi"
    if shapes and shapes[0]:
        return str(shapes[0])
    return str(getattr(sample, "kind", "other"))


def iou_curves(trajs: Sequence[Trajectory], max_clicks: int) -> np.ndarray:
    """(n, max_clicks + 1): IoU after 0..max_clicks clicks, padded with each trajectory's last value."""
    return np.array([[t.ious[0]] + iou_curve(t, max_clicks) for t in trajs], dtype=float).reshape(-1, max_clicks + 1)


def noc_summary(
    trajs: Sequence[Trajectory],
    groups: dict[str, str] | None = None,
    thresholds: Sequence[float] = (0.85, 0.90),
    max_clicks: int = 20,
) -> list[dict]:
    """Mean NoC@thr (``seglib.metrics.noc``, capped at ``max_clicks``) per group and over all.

    Only trajectories from an empty start count (NoC is defined from no clicks).
    ``groups``: sample_id → group name (e.g. ``sample_group``); rows are sorted by group, "all" last.
    """
    from seglib.metrics import noc

    trajs = [t for t in trajs if t.start == "empty"]
    by_group: dict[str, list[Trajectory]] = {}
    for t in trajs:
        by_group.setdefault((groups or {}).get(t.sample_id, "all"), []).append(t)
    if groups:
        by_group["all"] = list(trajs)
    rows = []
    for name in sorted(by_group, key=lambda g: (g == "all", g)):
        ts = by_group[name]
        row: dict[str, Any] = {"group": name, "n": len(ts)}
        for thr in thresholds:
            row[f"NoC@{round(thr * 100)}"] = float(np.mean([noc(t.ious[1:], thr, max_clicks) for t in ts]))
        row["mean steps"] = float(np.mean([t.n_steps for t in ts]))
        row["final IoU"] = float(np.mean([t.final_iou for t in ts]))
        rows.append(row)
    return rows
