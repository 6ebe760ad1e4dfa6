"""The notebook runner: ``python -m seglib run params/smoke.yaml`` executes the numbered notebooks
in order into a run folder (``seglib.runs.folder``) through papermill, resumably."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

from seglib.config import (
    NOTEBOOK_DIR,
    RUNNER_KEYS,
    explicit_params,
    load_params,
    notebook_injection,
    notebook_parameters,
    notebook_paths,
)
from seglib.runs.folder import (
    OUTPUTS_DIR,
    git_state,
    machine_info,
    new_run_name,
    package_versions,
    prepare_run_dir,
    read_run,
    utc_now,
    write_run,
)
from seglib.system import RunError


class RunInterrupted(RuntimeError):
    """Ctrl-C during a notebook: the run folder marks it ``interrupted``; the message says how to resume."""



def children_peak_rss_mb() -> float | None:
    """Peak resident memory (MiB) of the largest finished child process so far (the notebook kernels), or None.

    ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is in KiB on Linux; it is a running maximum over every child
    that has ended, so a notebook's value is the peak of it and all notebooks before it.
    """
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    except (ImportError, OSError):
        return None

def select_notebooks(paths: list[Path], only: str | None) -> list[Path]:
    """``only`` is a comma list of numbers or names: ``01,02`` or ``01_data_prep``."""
    if not only:
        return paths
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [p for p in paths if any(p.stem == w or p.stem.split("_", 1)[0] == w.zfill(2) for w in wanted)]
    missing = [w for w in wanted if not any(p.stem == w or p.stem.split("_", 1)[0] == w.zfill(2) for p in paths)]
    if missing:
        raise RunError(f"--only names no notebook for {missing}; have {[p.stem for p in paths]}")
    return chosen


def run_notebooks(
    params_path: str | Path | None,
    overrides: list[str] = (),
    only: str | None = None,
    run_name: str | None = None,
    resume: bool = False,
    force: bool = False,
    outputs_dir: Path = OUTPUTS_DIR,
    notebook_dir: Path = NOTEBOOK_DIR,
    kernel_name: str = "python3",
    rerun: str | None = None,
    progress: bool | None = None,
) -> Path:
    """Execute the notebooks into a run folder and return its path.

    ``rerun`` (comma list, like ``only``) runs those notebooks again in an existing folder and marks every
    later finished notebook ``stale``, so the next ``--resume`` reruns them too. ``progress`` shows
    papermill's per-cell bar (default: when stderr is a terminal).
    """
    import logging

    # papermill warns about parameter lines it cannot parse (inline comments) although it injects them fine
    logging.getLogger("papermill").setLevel(logging.ERROR)
    params = load_params(params_path, overrides, notebook_dir=notebook_dir)
    explicit = explicit_params(params_path, overrides, notebook_dir=notebook_dir)
    if progress is None:
        progress = sys.stderr.isatty()
    all_paths = notebook_paths(notebook_dir)
    rerun_paths = select_notebooks(all_paths, rerun) if rerun else []
    if rerun:
        resume = True
        only = only or rerun
    # the kernels inherit it: string hashes, hence set order (e.g. trl's model-card tags), repeat from run to run
    os.environ.setdefault("PYTHONHASHSEED", str(params.get("seed", 0)))
    os.environ["SEGLIB_HEADLESS"] = "1"  # kernels draw text progress bars, which a saved notebook keeps (seglib.progress)
    # no bar per weight-loading or shard-writing call (transformers / hub); the training and data bars stay
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    paths = select_notebooks(notebook_paths(notebook_dir), only)
    if not paths:
        raise RunError(f"no notebooks found in {notebook_dir}")
    if rerun and not (run_name or params.get("run_name")):
        raise RunError("--rerun needs the run folder: give it with --name")
    name = run_name or params.get("run_name") or new_run_name(params_path)
    run_dir = prepare_run_dir(Path(outputs_dir) / name, resume=resume, force=force).resolve()
    record = _open_record(run_dir, params, params_path, resume, all_paths, rerun_paths, overrides)

    for i, nb_path in enumerate(paths, 1):
        out_nb = run_dir / nb_path.name
        status = record["notebooks"].get(nb_path.stem, {})
        if resume and status.get("status") == "done" and out_nb.is_file():
            print(f"[{i}/{len(paths)}] {nb_path.stem}: done earlier, skipped", flush=True)
            continue
        nb_params = notebook_injection(nb_path, explicit, run_dir)
        print(f"[{i}/{len(paths)}] {nb_path.stem} ...", flush=True)
        t0 = time.time()
        record["notebooks"][nb_path.stem] = {"status": "running", "started": utc_now()}
        write_run(run_dir, record)
        _execute(nb_path, out_nb, nb_params, kernel_name, progress, record, run_dir,
                 lambda: resume_command(params_path, overrides, run_dir.name))
        seconds = time.time() - t0
        record["notebooks"][nb_path.stem] = {"status": "done", "seconds": round(seconds, 1), "ended": utc_now(),
                                             "peak_rss_mb": children_peak_rss_mb()}
        write_run(run_dir, record)
        print(f"[{i}/{len(paths)}] {nb_path.stem}: done in {seconds:.1f}s", flush=True)
    record["ended"] = utc_now()
    write_run(run_dir, record)
    return run_dir


def _open_record(run_dir: Path, params: dict[str, Any], params_path: str | Path | None, resume: bool,
                 all_paths: list[Path], rerun_paths: list[Path], overrides: Sequence[str] = ()) -> dict:
    """``run.json`` at the start of a run: the provenance, the notebooks' states; written with params.yaml."""
    record = read_run(run_dir) if resume else {}
    if resume and record.get("params") and record["params"] != params:
        _check_resume_changes(record, params, all_paths, run_dir)
    record.update(
        params=params,
        params_file=str(params_path) if params_path else None,
        overrides=list(overrides),
        git=git_state(),
        packages=package_versions(),
        machine=machine_info(),
        started=record.get("started") or utc_now(),
        ended=None,
    )
    record.setdefault("notebooks", {})
    if rerun_paths:
        _mark_reruns(record["notebooks"], all_paths, rerun_paths)
    write_run(run_dir, record)
    (run_dir / "params.yaml").write_text(_yaml_dump(params))
    return record


def _mark_reruns(states: dict[str, dict], all_paths: list[Path], rerun_paths: list[Path]) -> None:
    """Mark the notebooks to rerun, and every later finished one ``stale``."""
    first = min(all_paths.index(p) for p in rerun_paths)
    for later in all_paths[first:]:
        state = states.get(later.stem)
        if later in rerun_paths:
            states[later.stem] = {"status": "rerun requested", "at": utc_now()}
        elif state and state.get("status") == "done":
            state["status"] = "stale"


def _execute(nb_path: Path, out_nb: Path, nb_params: dict, kernel_name: str, progress: bool, record: dict,
             run_dir: Path, resume_cmd: Callable[[], str]) -> None:
    """Run one notebook through papermill; an interruption or failure is recorded and raised as Run*."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(nb_path),
            str(out_nb),
            parameters=nb_params,
            kernel_name=kernel_name,
            cwd=str(nb_path.parent),
            progress_bar=progress,
            log_output=False,
            # the kernel logs a plain-TCP notice at every start and a KeyboardInterrupt at every shutdown: noise
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except KeyboardInterrupt:
        record["notebooks"][nb_path.stem] = {"status": "interrupted", "at": utc_now()}
        write_run(run_dir, record)
        raise RunInterrupted(
            f"interrupted in {nb_path.name}; the run folder {run_dir} keeps every finished notebook.\n"
            f"  continue with: {resume_cmd()}") from None
    except pm.PapermillExecutionError as err:
        record["notebooks"][nb_path.stem] = {"status": "failed", "error": f"{err.ename}: {err.evalue}"}
        write_run(run_dir, record)
        raise RunError(
            f"{nb_path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"  the executed notebook with the full traceback is {out_nb}"
        ) from None


def resume_command(params_path: str | Path | None, overrides: list[str], run_name: str) -> str:
    """The exact command that continues a run (shell-quoted)."""
    import shlex

    exe = os.path.relpath(sys.executable)
    parts = [exe if not exe.startswith("..") else sys.executable, "-m", "seglib", "run", str(params_path or "")]
    for o in overrides:
        parts += ["-p", o]
    parts += ["--name", run_name, "--resume"]
    return " ".join(shlex.quote(p) for p in parts if p)


def _check_resume_changes(record: dict, params: dict[str, Any], all_notebooks: list[Path], run_dir: Path) -> None:
    """Allow ``--resume`` with changed parameters only where no finished notebook reads them.

    A change to a parameter of a notebook still to run (e.g. GRPO settings after notebook 03 finished)
    is kept in ``run.json`` under ``param_changes``; a change to anything a finished notebook used is
    refused, naming the parameters and notebooks, so a run folder never mixes two settings silently.
    """
    old = record["params"]
    changed = sorted(k for k in set(params) | set(old) if params.get(k) != old.get(k))
    done = {stem for stem, st in record.get("notebooks", {}).items() if st.get("status") == "done"}
    declared = {nb.stem: notebook_parameters(nb).defaults for nb in all_notebooks if nb.stem in done}
    readers = {k: sorted(stem for stem, names in declared.items() if k in names) for k in changed}
    clash = {k: v for k, v in readers.items() if v or k in RUNNER_KEYS}
    if clash:
        raise RunError(f"--resume with different parameters than {run_dir} was started with: "
                       + ", ".join(f"{k} (used by {', '.join(v) or 'the runner'})" for k, v in clash.items()))
    record.setdefault("param_changes", []).append(
        {"at": utc_now(), "changed": {k: {"old": old.get(k), "new": params.get(k)} for k in changed}})


def _yaml_dump(params: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(params, sort_keys=True)
