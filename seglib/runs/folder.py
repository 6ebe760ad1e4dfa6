"""Run folders: ``outputs/<run_name>/`` and the ``run.json`` that describes it.

``run.json`` holds the resolved parameters, git commit and dirty flag, exact
package versions, the machine, start and end times, and the notebooks executed.
A run never overwrites another run's folder: ``--resume`` continues one,
``--force`` moves the old folder aside (``<name>.replaced-<time>``) first.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from seglib.config import REPO_ROOT
from seglib.system import RunError

OUTPUTS_DIR = REPO_ROOT / "outputs"
RUN_FILE = "run.json"


def git_state(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit the code came from and whether the work tree differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str]:
    return {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}


def machine_info() -> dict[str, Any]:
    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
    }
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_name(params_path: str | Path | None) -> str:
    stem = Path(params_path).stem if params_path else "run"
    return f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(run_dir: Path, resume: bool = False, force: bool = False) -> Path:
    """Create ``run_dir``; refuse an existing one unless resuming or forcing (old one kept aside)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        if resume:
            return run_dir
        if force:
            aside = run_dir.with_name(f"{run_dir.name}.replaced-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
            run_dir.rename(aside)
            print(f"moved the old run folder aside to {aside}")
        else:
            raise RunError(
                f"run folder {run_dir} already exists; use --resume to continue it "
                f"or --force to start again (the old folder is kept aside)"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def read_run(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_run(run_dir: Path, record: dict[str, Any]) -> None:
    path = Path(run_dir) / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
