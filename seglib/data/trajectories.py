"""F_sim trajectory records (``Step``, ``Trajectory``) and their JSONL file: the clicks paradigm's SFT input.

``seglib.trajectories`` simulates them (SegAgent's F_sim); this module only
holds and reads them, so that a paradigm (L2) can read a run's
``trajectories/*.jsonl`` without importing the simulator. One line per
trajectory; a torn last line (an interrupted write) is dropped on reading.
``ious[0]`` is the IoU of the starting state, ``ious[k]`` after k kept clicks.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from seglib.clicker import Click
from seglib.masks import decode_rle


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


def trajectory_steps(traj: Trajectory | dict, sample: Any = None) -> Iterator[tuple[np.ndarray, Click, float]]:
    """Per kept step: (mask before the click, the click, IoU before it): an SFT example's state and target."""
    if isinstance(traj, dict):
        traj = Trajectory.from_json(traj)
    before = decode_rle(traj.start_rle)
    for k, step in enumerate(traj.steps):
        yield before, Click(int(step.click[0]), int(step.click[1]), bool(step.click[2])), float(traj.ious[k])
        before = decode_rle(step.mask_rle)


def read_lines(path: Path) -> tuple[list[dict], int]:
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
    return [Trajectory.from_json(r) for r in read_lines(path)[0]]
