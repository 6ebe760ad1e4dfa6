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
    choice_problem,
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
    # no bar per weight-loading or shard-writing call (transformers / hub); the training and data bars stay
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
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

#: refer datasets and the splitBy values their refs files exist for (refer toolkit: refs(<splitBy>).p)
REFER_SPLIT_BY: dict[str, tuple[str, ...]] = {"refcoco": ("unc", "google"), "refcoco+": ("unc",),
                                              "refcocog": ("umd", "google")}
REASONSEG_SPLITS = ("train", "val", "test")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
#: refs whose image files are checked (first N of the refs file): enough to catch a wrong image_dir quickly
IMAGE_PROBES = 20


def dry_run(params_path: str | Path | None, overrides: list[str] = (), notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Validate parameters and check the contents of every path and model they name, loading nothing heavy.

    Returns the list of problems (empty when the run could start); each names the parameter and the item.

    * Paths (keys ending in ``_path``, ``_dir``, ``_root``, ``_file``, ``_checkpoint``) must exist.
    * ``dataset: refcoco``: ``refcoco_dataset`` is one of refcoco / refcoco+ / refcocog with a
      ``refcoco_split_by`` that dataset has (:data:`REFER_SPLIT_BY`); ``data_root`` holds
      ``<dataset>/refs(<splitBy>).p`` (a list of refs, read with the loader's safe unpickler) and
      ``<dataset>/instances.json`` (a COCO file naming the refs' images and annotations), and the
      first :data:`IMAGE_PROBES` refs' images exist under ``image_dir`` (default: the refer layout).
    * ``reasonseg_root`` (and ``data_root`` with ``dataset: reasonseg``): the split folders the
      loader reads exist and each holds at least one ``<name>.json`` with an image beside it.
    * ``policy``: a local folder or a hub name already in the local cache (nothing is downloaded),
      holding ``config.json`` and weights (or a peft adapter whose base model passes the same check).
    * ``sam2_config`` is a config shipped by the ``sam2`` package, and ``sam2_checkpoint`` holds a
      ``{"model": state_dict}`` whose keys and shapes are those of the model the config describes
      (built on the meta device: no memory, no GPU; the checkpoint is read onto the meta device too).
    """
    params = load_params(params_path, overrides, notebook_dir=notebook_dir, check_choices=False)
    problems: list[str] = []
    missing: set[str] = set()
    for key, value in sorted(params.items()):
        if key not in ("refcoco_dataset", "refcoco_split_by"):  # checked below, with the refer layout
            problem = choice_problem(key, value)
            if problem:
                problems.append(f"{key}: {problem}")
    for key, value in sorted(params.items()):
        if value in (None, "") or not isinstance(value, str):
            continue
        if key.endswith(PATH_SUFFIXES) and not Path(value).expanduser().exists():
            problems.append(f"{key}: path {value} does not exist")
            missing.add(key)
    problems += _check_data(params, missing)
    policy = params.get("policy")
    if isinstance(policy, str) and policy:
        folder = Path(policy).expanduser()
        if not folder.exists():
            cached = _hub_cache_folder(policy)
            if cached is None:
                problems.append(f"policy: {policy} is neither a local folder nor in the local model cache")
            else:
                problems += _check_policy_folder("policy", cached)
        else:
            problems += _check_policy_folder("policy", folder)
    config = params.get("sam2_config")
    if isinstance(config, str) and config and not _sam2_config_exists(config):
        problems.append(f"sam2_config: {config} is not a config of the installed sam2 package")
    elif (isinstance(config, str) and config and params.get("segmenter", "sam2") == "sam2"
          and isinstance(params.get("sam2_checkpoint"), str) and "sam2_checkpoint" not in missing):
        problems += check_sam2_checkpoint(config, params["sam2_checkpoint"])
    return problems


def _check_data(params: dict[str, Any], missing: set[str]) -> list[str]:
    problems: list[str] = []
    dataset = params.get("dataset")
    root = params.get("data_root")
    if dataset == "refcoco":
        name, split_by = params.get("refcoco_dataset"), params.get("refcoco_split_by")
        if name not in REFER_SPLIT_BY:
            problems.append(f"refcoco_dataset: {name!r} is not a refer dataset; choose from {sorted(REFER_SPLIT_BY)}")
        elif split_by not in REFER_SPLIT_BY[name]:
            problems.append(f"refcoco_split_by: {name} has no split {split_by!r}; "
                            f"it has {list(REFER_SPLIT_BY[name])}")
        elif not root:
            problems.append("data_root: dataset refcoco needs the refer root (holding <dataset>/refs(<splitBy>).p)")
        elif "data_root" not in missing:
            problems += _check_refer(Path(root).expanduser(), name, split_by, params.get("image_dir"))
    elif dataset == "reasonseg":
        if not root:
            problems.append("data_root: dataset reasonseg needs the ReasonSeg root (holding train/ val/ test/)")
        elif "data_root" not in missing:
            problems += _check_reasonseg("data_root", Path(root).expanduser(), REASONSEG_SPLITS)
    rs = params.get("reasonseg_root")
    if isinstance(rs, str) and rs and "reasonseg_root" not in missing:
        problems += _check_reasonseg("reasonseg_root", Path(rs).expanduser(), ("val", "test"))
    return problems


def _check_refer(root: Path, name: str, split_by: str, image_dir: str | None) -> list[str]:
    from seglib.data import DataError
    from seglib.data.refcoco import load_refs_pickle

    refs_path = root / name / f"refs({split_by}).p"
    inst_path = root / name / "instances.json"
    problems = []
    if not refs_path.is_file():
        present = sorted(str(p.relative_to(root)) for p in root.glob("*/refs(*).p"))
        problems.append(f"data_root: {root} holds no {name}/refs({split_by}).p"
                        + (f" (it holds {present})" if present else " (no refs(<splitBy>).p file at all)"))
    if not inst_path.is_file():
        problems.append(f"data_root: {root} holds no {name}/instances.json")
    if problems:
        return problems
    try:
        refs = load_refs_pickle(refs_path, root)
    except DataError as err:
        return [f"data_root: {err}"]
    if not refs:
        return [f"data_root: {refs_path} holds no refs"]
    keys = {"ref_id", "ann_id", "image_id", "split", "sentences"}
    bad = [i for i, r in enumerate(refs) if not isinstance(r, dict) or not keys <= set(r)]
    if bad:
        return [f"data_root: {refs_path}: ref #{bad[0]} lacks some of {sorted(keys)} ({len(bad)} refs malformed)"]
    try:
        instances = json.loads(inst_path.read_text())
        images = {int(im["id"]): im for im in instances["images"]}
        anns = {int(a["id"]) for a in instances["annotations"]}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        return [f"data_root: {inst_path} is not a COCO instances file ({err!r})"]
    no_image = [r["ref_id"] for r in refs if int(r["image_id"]) not in images]
    no_ann = [r["ref_id"] for r in refs if int(r["ann_id"]) not in anns]
    if no_image:
        problems.append(f"data_root: {len(no_image)} refs of {refs_path.name} name images not in {inst_path} "
                        f"(first: ref {no_image[0]})")
    if no_ann:
        problems.append(f"data_root: {len(no_ann)} refs of {refs_path.name} name annotations not in {inst_path} "
                        f"(first: ref {no_ann[0]})")
    img_dir = Path(image_dir).expanduser() if image_dir else root / "images" / "mscoco" / "images" / "train2014"
    key = "image_dir" if image_dir else "data_root"
    probes = [images[int(r["image_id"])]["file_name"] for r in refs[:IMAGE_PROBES] if int(r["image_id"]) in images]
    absent = [f for f in probes if not (img_dir / f).is_file()]
    if absent:
        problems.append(f"{key}: {len(absent)} of the first {len(probes)} refs' images are not in {img_dir} "
                        f"(first: {absent[0]})")
    return problems


def _check_reasonseg(key: str, root: Path, splits: tuple[str, ...]) -> list[str]:
    from seglib.data.reasonseg import IMAGE_SUFFIXES

    found = [s for s in splits if (root / s).is_dir()]
    if not found:
        return [f"{key}: ReasonSeg root {root} has none of the split folders {list(splits)}"]
    problems = []
    for split in found:
        jsons = sorted((root / split).glob("*.json"))
        if not jsons:
            problems.append(f"{key}: ReasonSeg split folder {root / split} holds no <name>.json annotation")
            continue
        lone = [j.name for j in jsons if not any(j.with_suffix(s).is_file() for s in IMAGE_SUFFIXES)]
        if lone:
            problems.append(f"{key}: {len(lone)} annotations in {root / split} have no image beside them "
                            f"(first: {lone[0]})")
    return problems


def _check_policy_folder(key: str, folder: Path, depth: int = 0) -> list[str]:
    """A checkpoint folder holds config.json and weights, or a peft adapter on a base that does."""
    if not folder.is_dir():
        return [f"{key}: {folder} is not a folder (a checkpoint is a folder with config.json and weights)"]
    if (folder / "adapter_config.json").is_file():
        if not any((folder / w).is_file() for w in ADAPTER_WEIGHTS):
            return [f"{key}: adapter folder {folder} holds adapter_config.json but no {' or '.join(ADAPTER_WEIGHTS)}"]
        try:
            base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            return [f"{key}: {folder / 'adapter_config.json'} names no base model ({err!r})"]
        base_folder = Path(str(base)).expanduser()
        if not base_folder.exists():
            base_folder = _hub_cache_folder(str(base))
            if base_folder is None:
                return [f"{key}: the base model {base} of adapter {folder} is neither a folder nor cached"]
        return [] if depth else _check_policy_folder(f"{key} (base of the adapter)", base_folder, depth + 1)
    problems = []
    config = folder / "config.json"
    if not config.is_file():
        problems.append(f"{key}: {folder} holds no config.json (not a model checkpoint)")
    else:
        try:
            if "model_type" not in json.loads(config.read_text()):
                problems.append(f"{key}: {config} has no model_type")
        except json.JSONDecodeError as err:
            problems.append(f"{key}: {config} is not valid JSON ({err})")
    if not any((folder / w).is_file() for w in WEIGHT_FILES) and not list(folder.glob("model-*.safetensors")):
        problems.append(f"{key}: {folder} holds no weights ({', '.join(WEIGHT_FILES[::2])} or shards)")
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        problems.append(f"{key}: {folder} holds no tokenizer files (tokenizer.json / tokenizer_config.json)")
    return problems


def _hub_cache_folder(name: str) -> Path | None:
    """The cached snapshot folder of a hub model, or None when it is not in the local cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(name, "config.json")
    except Exception:  # an invalid repo id is simply "not cached"
        return None
    return Path(path).parent if isinstance(path, str) else None


def _in_hub_cache(name: str) -> bool:
    return _hub_cache_folder(name) is not None


def sam2_meta_state_shapes(config: str) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of the SAM2 model ``config`` describes, built on the meta device."""
    import torch
    from hydra import compose
    from hydra.utils import instantiate

    import sam2  # noqa: F401  (initialises hydra's config search path on the sam2 package)

    packaged = _sam2_config_exists(config) and not Path(config).is_file()
    if packaged:
        cfg = compose(config_name=config)
    else:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(config)
    from torch.overrides import TorchFunctionMode

    class _SmallOnCpu(TorchFunctionMode):
        # Hiera reads its drop-path schedule with .item(): that one small tensor is made on the CPU
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in (torch.linspace, torch.arange, torch.logspace) and "device" not in kwargs:
                kwargs["device"] = "cpu"
            return func(*args, **kwargs)

    with torch.device("meta"), _SmallOnCpu():
        model = instantiate(cfg.model, _recursive_=True)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_sam2_checkpoint(config: str, checkpoint: str | Path) -> list[str]:
    """Problems of a SAM2 checkpoint against a config: missing / unexpected keys, shape mismatches."""
    import torch

    try:
        state = torch.load(str(checkpoint), map_location="meta", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001  (any unreadable file is one problem)
        try:
            state = torch.load(str(checkpoint), map_location="meta", weights_only=True)
        except Exception:  # noqa: BLE001
            return [f"sam2_checkpoint: {checkpoint} is not a readable torch checkpoint ({type(err).__name__}: {err})"]
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        return [f"sam2_checkpoint: {checkpoint} does not hold {{'model': state_dict}} (the SAM2 checkpoint layout)"]
    have = {k: tuple(v.shape) for k, v in state["model"].items() if hasattr(v, "shape")}
    try:
        want = sam2_meta_state_shapes(config)
    except Exception as err:  # noqa: BLE001
        return [f"sam2_config: {config} does not build a model ({type(err).__name__}: {err})"]
    absent = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if not (absent or extra or wrong):
        return []
    detail = []
    if wrong:
        detail.append(f"{len(wrong)} shapes differ (first: {wrong[0]} {have[wrong[0]]} in the checkpoint, "
                      f"{want[wrong[0]]} in the config)")
    if absent:
        detail.append(f"{len(absent)} keys missing (first: {absent[0]})")
    if extra:
        detail.append(f"{len(extra)} unexpected keys (first: {extra[0]})")
    return [f"sam2_checkpoint: {checkpoint} does not match sam2_config {config}: " + "; ".join(detail)]


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
    "check_sam2_checkpoint",
    "compare_runs",
    "dry_run",
    "git_state",
    "prepare_run_dir",
    "run_notebooks",
    "seed_everything",
]
