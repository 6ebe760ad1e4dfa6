"""The process and the machine: seeding every RNG, and stopping before the disk fills.

Shared by the training stages and the notebook runner (both call these; neither
owns them), so the module imports nothing from seglib.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path


class RunError(RuntimeError):
    """A run that cannot start or did not finish; the message says which notebook or folder."""


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (CPU and CUDA) and ask torch for deterministic kernels."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def check_free_space(path: Path, need_bytes: int) -> None:
    """Stop cleanly before writing ``need_bytes`` to ``path`` if the disk cannot hold it."""
    path = Path(path)
    probe = path if path.exists() else next(p for p in path.parents if p.exists())
    free = shutil.disk_usage(probe).free
    if free < need_bytes:
        raise RunError(
            f"not enough disk space to write {path}: need {need_bytes / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free"
        )
