"""Run folders and the notebook runner (papermill).

``python -m seglib run params/smoke.yaml`` executes the numbered notebooks in
order into ``outputs/<run_name>/``. The folder describes itself in
``run.json``: resolved parameters, git commit and dirty flag, exact package
versions, the machine, start and end times, and the notebooks executed.
A run never overwrites another run's folder: ``--resume`` continues one,
``--force`` moves the old folder aside (``<name>.replaced-<time>``) first.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from seglib.config import (
    NOTEBOOK_DIR,
    REPO_ROOT,
    RUNNER_KEYS,
    ParamError,
    explicit_params,
    load_params,
    notebook_injection,
    notebook_parameters,
    notebook_paths,
)

OUTPUTS_DIR = REPO_ROOT / "outputs"
RUN_FILE = "run.json"


class RunInterrupted(RuntimeError):
    """Ctrl-C during a notebook: the run folder marks it ``interrupted``; the message says how to resume."""


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


def _now() -> str:
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

    import papermill as pm

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
    paths = select_notebooks(notebook_paths(notebook_dir), only)
    if not paths:
        raise RunError(f"no notebooks found in {notebook_dir}")
    if rerun and not (run_name or params.get("run_name")):
        raise RunError("--rerun needs the run folder: give it with --name")
    name = run_name or params.get("run_name") or new_run_name(params_path)
    run_dir = prepare_run_dir(Path(outputs_dir) / name, resume=resume, force=force).resolve()
    record = read_run(run_dir) if resume else {}
    if resume and record.get("params") and record["params"] != params:
        _check_resume_changes(record, params, notebook_paths(notebook_dir), run_dir)
    record.update(
        params=params,
        params_file=str(params_path) if params_path else None,
        git=git_state(),
        packages=package_versions(),
        machine=machine_info(),
        started=record.get("started") or _now(),
        ended=None,
    )
    record.setdefault("notebooks", {})
    if rerun_paths:
        first = min(all_paths.index(p) for p in rerun_paths)
        for later in all_paths[first:]:
            state = record["notebooks"].get(later.stem)
            if later in rerun_paths:
                record["notebooks"][later.stem] = {"status": "rerun requested", "at": _now()}
            elif state and state.get("status") == "done":
                state["status"] = "stale"
    write_run(run_dir, record)
    (run_dir / "params.yaml").write_text(_yaml_dump(params))

    for i, nb_path in enumerate(paths, 1):
        out_nb = run_dir / nb_path.name
        status = record["notebooks"].get(nb_path.stem, {})
        if resume and status.get("status") == "done" and out_nb.is_file():
            print(f"[{i}/{len(paths)}] {nb_path.stem}: done earlier, skipped", flush=True)
            continue
        nb_params = notebook_injection(nb_path, explicit, run_dir)
        print(f"[{i}/{len(paths)}] {nb_path.stem} ...", flush=True)
        t0 = time.time()
        record["notebooks"][nb_path.stem] = {"status": "running", "started": _now()}
        write_run(run_dir, record)
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
            record["notebooks"][nb_path.stem] = {"status": "interrupted", "at": _now()}
            write_run(run_dir, record)
            raise RunInterrupted(
                f"interrupted in {nb_path.name}; the run folder {run_dir} keeps every finished notebook.\n"
                f"  continue with: {resume_command(params_path, overrides, run_dir.name)}") from None
        except pm.PapermillExecutionError as err:
            record["notebooks"][nb_path.stem] = {"status": "failed", "error": f"{err.ename}: {err.evalue}"}
            write_run(run_dir, record)
            raise RunError(
                f"{nb_path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                f"  the executed notebook with the full traceback is {out_nb}"
            ) from None
        seconds = time.time() - t0
        record["notebooks"][nb_path.stem] = {"status": "done", "seconds": round(seconds, 1), "ended": _now()}
        write_run(run_dir, record)
        print(f"[{i}/{len(paths)}] {nb_path.stem}: done in {seconds:.1f}s", flush=True)
    record["ended"] = _now()
    write_run(run_dir, record)
    return run_dir


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
        {"at": _now(), "changed": {k: {"old": old.get(k), "new": params.get(k)} for k in changed}})


def _yaml_dump(params: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(params, sort_keys=True)


# Parameters that decide which samples a run evaluates on: runs that differ in one are not comparable sample for sample.
DATA_KEYS = ("dataset", "n_images", "image_size", "difficulty", "seed", "data_root", "refcoco_dataset",
             "refcoco_split_by", "reasonseg_root", "eval_max_samples")


def compare_runs(a: Path, b: Path, all_rows: bool = False) -> str:
    """Markdown report: parameters that differ, then the metrics that changed (b − a) from metrics.json.

    Metrics equal in both runs, or present in only one, are counted rather than listed (``all_rows`` lists
    them). A warning heads the report when the runs differ in a parameter that decides their data.
    """
    ra, rb = read_run(a), read_run(b)
    if not ra or not rb:
        missing = [str(p) for p, r in ((a, ra), (b, rb)) if not r]
        raise RunError(f"not a run folder (no {RUN_FILE}): {', '.join(missing)}")
    pa, pb = ra.get("params", {}), rb.get("params", {})
    lines = [f"# {Path(a).name} vs {Path(b).name}", ""]
    data_diff = [k for k in DATA_KEYS if pa.get(k) != pb.get(k)]
    if data_diff:
        lines += [f"**Not comparable sample for sample**: the runs differ in {', '.join(data_diff)}, so their "
                  "metrics come from different data.", ""]
    diff = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
    lines += ["## Parameters that differ", "", "| parameter | a | b |", "|---|---|---|"]
    lines += [f"| {k} | {pa.get(k)!r} | {pb.get(k)!r} |" for k in diff] or ["| (none) | | |"]
    ma, mb = (_flat_metrics(Path(p) / "metrics.json") for p in (a, b))
    both = sorted(set(ma) & set(mb))
    changed = [k for k in both if abs(mb[k] - ma[k]) > 1e-12]
    only_a, only_b = sorted(set(ma) - set(mb)), sorted(set(mb) - set(ma))
    lines += ["", "## Metrics (b − a)", ""]
    if not ma or not mb:
        lines.append(f"no metrics.json in {', '.join(str(p) for p, m in ((a, ma), (b, mb)) if not m)} "
                     "(run notebook 07 first)")
        return "\n".join(lines) + "\n"
    lines.append(f"{len(changed)} of {len(both)} shared metrics changed; {len(both) - len(changed)} equal; "
                 f"{len(only_a)} only in a, {len(only_b)} only in b.")
    rows = both if all_rows else changed
    if rows:
        lines += ["", "| metric | a | b | delta |", "|---|---|---|---|"]
        lines += [f"| {k} | {_fmt(ma[k])} | {_fmt(mb[k])} | {mb[k] - ma[k]:+.4f} |" for k in rows]
    return "\n".join(lines) + "\n"


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def _flat_metrics(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    out: dict[str, float] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out[prefix] = float(node)

    walk("", json.loads(path.read_text()))
    return out


PATH_SUFFIXES = ("_path", "_dir", "_root", "_file", "_checkpoint")


def dry_run(params_path: str | Path | None, overrides: list[str] = (), notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Validate parameters and check every path and model name they give, loading nothing heavy.

    Returns the list of problems (empty when the run could start). Paths are keys ending in
    ``_path``, ``_dir``, ``_root``, ``_file`` or ``_checkpoint``; ``policy`` is a local folder or a
    hub name that must already be in the local cache (nothing is downloaded); ``sam2_config`` must be
    a config shipped by the ``sam2`` package.
    """
    params = load_params(params_path, overrides, notebook_dir=notebook_dir)
    problems: list[str] = []
    for key, value in sorted(params.items()):
        if value in (None, "") or not isinstance(value, str):
            continue
        if key.endswith(PATH_SUFFIXES) and not Path(value).expanduser().exists():
            problems.append(f"{key}: path {value} does not exist")
    policy = params.get("policy")
    if isinstance(policy, str) and policy:
        if not Path(policy).expanduser().exists() and not _in_hub_cache(policy):
            problems.append(f"policy: {policy} is neither a local folder nor in the local model cache")
    config = params.get("sam2_config")
    if isinstance(config, str) and config and not _sam2_config_exists(config):
        problems.append(f"sam2_config: {config} is not a config of the installed sam2 package")
    return problems


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an invalid repo id is simply "not cached"
        return False


def _sam2_config_exists(config: str) -> bool:
    if Path(config).is_file():
        return True
    spec = importlib.util.find_spec("sam2")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(loc) / config).is_file() for loc in spec.submodule_search_locations)


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


__all__ = [
    "ParamError",
    "RunError",
    "check_free_space",
    "compare_runs",
    "dry_run",
    "git_state",
    "prepare_run_dir",
    "run_notebooks",
    "seed_everything",
]
