"""F_sim trajectory simulation: ``simulate`` one sample, ``simulate_split`` a split into JSONL (resumable).

The rules (stopping, gain rules, starting states) are in :mod:`seglib.trajectories`.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seglib.clicker import Click, next_click
from seglib.masks import box_from_mask, encode_rle, mask_iou
from seglib.data.trajectories import Step, Trajectory, read_lines

STARTS = ("empty", "box", "random_clicks")
GAIN_RULES = ("paper", "best")
STOP_REASONS = ("tau_stop", "max_clicks", "small_gain", "no_click")


@dataclass(frozen=True)
class FSimSettings:
    """The settings of one F_sim simulation (see :func:`simulate`), checked at construction."""

    max_clicks: int = 20
    tau_stop: float = 0.98
    tau_diff: float = 0.0
    start: str = "empty"
    seed: int = 0
    gain_rule: str = "paper"
    clicked_rule: str = "after_transform"

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.gain_rule not in GAIN_RULES:
            raise ValueError(f"gain_rule must be one of {GAIN_RULES}, got {self.gain_rule!r}")
        if not 0.8 <= self.tau_stop <= 1.0:
            raise ValueError(f"tau_stop must be in [0.8, 1] (SegAgent never goes below 0.8), got {self.tau_stop}")
        if self.max_clicks < 1:
            raise ValueError(f"max_clicks must be >= 1, got {self.max_clicks}")

    def record(self, segmenter: Any) -> dict:
        """``Trajectory.settings``: what a file's trajectories were made with (the start is per record)."""
        return {"max_clicks": self.max_clicks, "tau_stop": self.tau_stop, "tau_diff": self.tau_diff,
                "gain_rule": self.gain_rule, "seed": self.seed,
                "segmenter": getattr(segmenter, "name", type(segmenter).__name__), "clicked_rule": self.clicked_rule}


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
    clicked_rule: str = "after_transform",
) -> Trajectory | None:
    """Simulate one F_sim trajectory on ``sample`` (a ``seglib.data.Sample``). See the module docstring.

    ``image``: the sample's image if already loaded. Returns None for an empty target.
    ``clicked_rule``: F_sim's rule for already-clicked pixels (``seglib.clicker``:
    ``"after_transform"``, RITM's, default; ``"before_transform"``).
    """
    settings = FSimSettings(max_clicks, tau_stop, tau_diff, start, seed, gain_rule, clicked_rule).record(segmenter)
    gt = sample.union_mask()
    if not gt.any():
        return None
    h, w = gt.shape
    segmenter.set_image(sample.image() if image is None else image)

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
        click = next_click(gt, mask, tried, clicked_rule=clicked_rule)
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
    progress: bool = True,
    desc: str | None = None,
    **settings: Any,
) -> dict:
    """Simulate every sample (empty targets skipped) into ``out_path`` (JSONL), resuming.

    ``settings``: the :class:`FSimSettings` fields (``max_clicks``, ``tau_stop``, ``tau_diff``,
    ``start``, ``seed``, ``gain_rule``, ``clicked_rule``), as for :func:`simulate`.

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
    fsim = FSimSettings(**settings)
    start = fsim.start
    wanted = fsim.record(segmenter)
    if out_path.exists():
        records, good = read_lines(out_path)
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
                traj = simulate(s, segmenter, **asdict(fsim))
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
