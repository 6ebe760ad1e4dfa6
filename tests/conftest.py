"""Shared fixtures.

``smoke_run`` executes the whole notebook pipeline once per test session on
``params/smoke.yaml`` (the runner stops at the first failing notebook). Each
notebook test then asserts on the files its notebook wrote:

    def test_notebook_03(smoke_run):
        run_dir = smoke_run.require("03")
        ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import seglib  # noqa: E402,F401  (makes torchvision importable before anything else imports it)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SmokeRun:
    run_dir: Path
    error: str | None

    def require(self, number: str) -> Path:
        """The run folder, if notebook ``number`` (e.g. "03") ran to the end; else fail with the reason."""
        from seglib.runs import read_run

        record = read_run(self.run_dir)
        for stem, status in record.get("notebooks", {}).items():
            if stem.split("_", 1)[0] == number:
                if status.get("status") == "done":
                    return self.run_dir
                pytest.fail(f"notebook {stem} did not finish: {status.get('error') or self.error}")
        pytest.fail(f"notebook {number} did not run; pipeline error: {self.error}")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    from seglib.runs import RunError, run_notebooks

    outputs = tmp_path_factory.mktemp("smoke_outputs")
    try:
        run_dir = run_notebooks(ROOT / "params" / "smoke.yaml", run_name="smoke", outputs_dir=outputs)
        return SmokeRun(run_dir, None)
    except RunError as err:
        return SmokeRun(outputs / "smoke", str(err))
