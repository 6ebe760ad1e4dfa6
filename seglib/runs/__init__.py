"""Run folders and the notebook runner (papermill).

``python -m seglib run params/smoke.yaml`` executes the numbered notebooks in
order into ``outputs/<run_name>/``. The folder describes itself in
``run.json``: resolved parameters, git commit and dirty flag, exact package
versions, the machine, start and end times, and the notebooks executed.
A run never overwrites another run's folder: ``--resume`` continues one,
``--force`` moves the old folder aside (``<name>.replaced-<time>``) first.
"""
from seglib.config import ParamError
from seglib.runs.compare import DATA_KEYS, compare_runs
from seglib.runs.folder import (OUTPUTS_DIR, RUN_FILE, git_state, machine_info, new_run_name, package_versions,
                                prepare_run_dir, read_run, write_run)
from seglib.runs.preflight import dry_run
from seglib.runs.runner import RunInterrupted, resume_command, run_notebooks, select_notebooks
from seglib.runs.sam2_check import check_sam2_checkpoint, sam2_meta_state_shapes
from seglib.system import RunError, check_free_space, seed_everything

__all__ = [
    "DATA_KEYS",
    "OUTPUTS_DIR",
    "RUN_FILE",
    "ParamError",
    "RunError",
    "RunInterrupted",
    "check_free_space",
    "check_sam2_checkpoint",
    "compare_runs",
    "dry_run",
    "git_state",
    "machine_info",
    "new_run_name",
    "package_versions",
    "prepare_run_dir",
    "read_run",
    "resume_command",
    "run_notebooks",
    "sam2_meta_state_shapes",
    "seed_everything",
    "select_notebooks",
    "write_run",
]
