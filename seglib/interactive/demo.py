"""The demo's inputs: what to segment (:func:`pick_demo_input`) and which click policy proposes
(:func:`load_click_policy`, which turns a missing or unreadable checkpoint into manual clicking with a warning)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seglib.interactive.policies import ClickPolicy, ModelClickPolicy, OraclePolicy
from seglib.interactive.widget import _full_stop, plain_error


@dataclass
class DemoInput:
    """What the demo segments: an image, a query and, for dataset samples, the ground truth."""

    image: np.ndarray
    query: str
    gt_mask: np.ndarray | None
    source: str  # e.g. "SynthRef val sample 3 (ref 17)" or the image file


def pick_demo_input(run_dir: str, split: str = "val", index: int = 0, image_size: int = 112, seed: int = 0,
                    image_path: str | None = None, query: str = "") -> DemoInput:
    """The demo's input.

    ``image_path`` given: that image file and the typed ``query`` (no ground
    truth, so no IoU). Otherwise sample ``index`` (modulo their number) of the
    samples in ``split`` with at least one target, read from
    ``<run_dir>/data`` (notebook 01) when it exists; else a tiny SynthRef
    (20 images, ``image_size`` px, ``seed``) is generated in
    ``<run_dir>/demo_data`` and used.
    """
    from pathlib import Path

    from seglib.data import load_samples, read_image

    if image_path:
        if not query:
            raise ValueError("demo_query: type a query for the image file given in demo_image")
        return DemoInput(read_image(image_path, what="demo_image"), query, None, str(image_path))
    data_dir = Path(run_dir) / "data"
    if not (data_dir / "refs.json").exists():
        data_dir = Path(run_dir) / "demo_data"
        if not (data_dir / "refs.json").exists():
            from seglib.data import synthref

            synthref.generate(data_dir, 20, seed=seed, image_size=image_size)
    samples = [s for s in load_samples(data_dir, split=split) if s.target_rles]
    if not samples:
        raise ValueError(f"{data_dir}: no samples with a target in split {split!r} (demo_split); "
                         f"splits present: {sorted({s.split for s in load_samples(data_dir)})}")
    s = samples[index % len(samples)]
    return DemoInput(s.image(), s.query, s.union_mask(),
                     f"{data_dir.name}/ {split} sample {index % len(samples)} of {len(samples)} ({s.sample_id})")


def build_click_policy(clicks_policy: str | None, gt_mask: np.ndarray | None = None, run_dir: str = ".",
                       device: str = "cpu") -> ClickPolicy | None:
    """``None`` → no policy; ``"oracle"`` → F_sim with the ground truth; else a clicks checkpoint folder.

    A relative checkpoint path is looked up in ``run_dir`` first (e.g.
    ``"checkpoints/sft-clicks"``), then as given.
    """
    from pathlib import Path

    if clicks_policy is None:
        return None
    if clicks_policy == "oracle":
        if gt_mask is None:
            raise ValueError("clicks_policy='oracle' needs ground truth: pick a dataset sample, not demo_image")
        return OraclePolicy(gt_mask)
    path = Path(clicks_policy)
    if not path.is_absolute() and (Path(run_dir) / path).exists():
        path = Path(run_dir) / path
    if not path.exists():
        raise FileNotFoundError(f"clicks_policy: no checkpoint folder at {clicks_policy!r} (nor under {run_dir})")
    return ModelClickPolicy.from_checkpoint(str(path), device=device)


def load_click_policy(clicks_policy: str | None, gt_mask: np.ndarray | None = None, run_dir: str = ".",
                      device: str = "cpu") -> tuple[ClickPolicy | None, str | None]:
    """:func:`build_click_policy` that falls back to manual clicking: ``(policy or None, warning or None)``.

    A missing checkpoint folder, one that cannot be loaded, or ``"oracle"``
    without ground truth gives ``(None, warning)``: a sentence naming the
    parameter ``clicks_policy``, the path looked for and that the demo runs
    with manual clicks only. ``None`` asks for no policy and gives no warning.
    """
    from pathlib import Path

    if clicks_policy is None:
        return None, None
    if clicks_policy != "oracle":
        path = Path(clicks_policy)
        tried = [path] if path.is_absolute() else [Path(run_dir) / path, path]
        if not any(p.exists() for p in tried):
            where = " nor ".join(repr(str(p)) for p in tried)
            return None, (f"clicks_policy = {clicks_policy!r}: no checkpoint folder at {where}. "
                          "The demo runs with manual clicks only (Suggest, Accept and Auto-refine are off); "
                          "set clicks_policy to a clicks checkpoint folder (e.g. 'checkpoints/sft-clicks' after "
                          "notebook 03), to 'oracle', or to None.")
    try:
        return build_click_policy(clicks_policy, gt_mask, run_dir=run_dir, device=device), None
    except Exception as err:  # noqa: BLE001 - any load failure: fall back to manual clicks, say why
        return None, (f"clicks_policy = {clicks_policy!r} could not be loaded: {_full_stop(plain_error(err))} "
                      "The demo runs with manual clicks only (Suggest, Accept and Auto-refine are off).")
