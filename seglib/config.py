"""Parameters: the notebooks declare them, ``params/*.yaml`` set them.

Every notebook has one cell tagged ``parameters`` holding plain assignments
with smoke-scale defaults. The union of those names is the set of valid keys:
a key in a parameter file that no notebook declares is an error listing the
valid keys, and a value whose type disagrees with the notebook's default is an
error naming the key. Precedence: notebook default < parameter file < ``-p
key=value`` override. Values are parsed as YAML; nothing is ever ``eval``-ed.

A parameter with a fixed set of values (``difficulty``, ``segmenter``, ...) is
checked against ``CHOICES`` before anything runs, and an unknown key or value
suggests the nearest valid one. Each notebook receives only the values a file
or override sets: a notebook never inherits another notebook's default.
"""
from __future__ import annotations

import ast
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# Keys the runner itself reads; notebooks never see them.
RUNNER_KEYS = {"run_name": "name of the run folder under outputs/ (default: <params stem>-<time>)"}
# Keys the runner sets for every notebook; a parameter file may not set them.
INJECTED_KEYS = ("run_dir",)


def _synthref_difficulties() -> list[str]:
    from seglib.data.synthref import DIFFICULTIES

    return sorted(DIFFICULTIES)


def _synthref_splits() -> list[str]:
    from seglib.data.synthref import SPLITS

    return list(SPLITS)


def _paradigm_names() -> list[str]:
    from seglib.paradigms import PARADIGMS

    return list(PARADIGMS)


def _gain_rules() -> list[str]:
    from seglib.trajectories import GAIN_RULES

    return list(GAIN_RULES)


# Parameters with a fixed set of values: a list, or a function returning the list from the module that owns it.
CHOICES: dict[str, Any] = {
    "dataset": ["synthref", "refcoco"],
    "difficulty": _synthref_difficulties,
    "segmenter": ["classic", "sam2"],
    "launcher": ["inline", "accelerate"],
    "refcoco_dataset": ["refcoco", "refcoco+", "refcocog"],
    "refcoco_split_by": ["unc", "umd", "google"],
    "grpo_vllm_mode": ["colocate", "server"],
    "traj_gain_rule": _gain_rules,
    "demo_split": _synthref_splits,
    "scaling_on": ["all", "latest"],
    "scaling_paradigms": _paradigm_names,   # a list: each item is checked
}


def choices_for(name: str) -> list[str] | None:
    """The valid values of parameter ``name``, or None when any value of the right type will do."""
    allowed = CHOICES.get(name)
    return allowed() if callable(allowed) else allowed


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ParamError(ValueError):
    """A parameter file or override that cannot be used; the message names the key."""


@dataclass
class NotebookParams:
    path: Path
    defaults: dict[str, Any] = field(default_factory=dict)


def notebook_paths(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks, in pipeline order (``01_…`` before ``02_…``)."""
    return sorted(p for p in Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(path: Path) -> NotebookParams:
    """Read the literal defaults of a notebook's ``parameters`` cell."""
    nb = json.loads(Path(path).read_text())
    cells = [c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    source = "".join(cells[0]["source"]) if isinstance(cells[0]["source"], list) else cells[0]["source"]
    defaults: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name = node.target.id
        else:
            continue
        try:
            defaults[name] = ast.literal_eval(node.value)
        except ValueError as err:
            raise ParamError(f"{path}: parameter {name!r} must have a literal default ({err})") from None
    return NotebookParams(Path(path), defaults)


def known_parameters(paths: list[Path]) -> dict[str, Any]:
    """Name → default over all notebooks. The same name must mean the same type everywhere."""
    known: dict[str, Any] = {}
    for nbp in (notebook_parameters(p) for p in paths):
        for name, default in nbp.defaults.items():
            if name in known and known[name] is not None and default is not None:
                if _type_name(known[name]) != _type_name(default):
                    raise ParamError(
                        f"{nbp.path.name}: parameter {name!r} is {_type_name(default)} here "
                        f"but {_type_name(known[name])} in another notebook"
                    )
            if name not in known or known[name] is None:
                known[name] = default
    return known


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def check_value(name: str, value: Any, default: Any) -> Any:
    """Return ``value`` if it fits the type of ``default``; raise ParamError naming ``name`` if not."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ParamError(
            f"parameter {name!r}: expected {type(default).__name__} (like the default {default!r}), "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``-p lr=1e-4``, ``-p paradigms=[polygon]``)."""
    if "=" not in text:
        raise ParamError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ParamError(f"override {text!r}: value is not valid YAML ({err})") from None


def _read_param_file(params_path: str | Path | None) -> dict[str, Any]:
    if params_path is None:
        return {}
    path = Path(params_path)
    if not path.is_file():
        raise ParamError(f"parameter file {path} does not exist")
    try:
        from_file = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(from_file, dict):
        raise ParamError(f"{path}: expected a mapping of parameter names to values")
    return from_file


def explicit_params(
    params_path: str | Path | None,
    overrides: list[str] = (),
    notebook_dir: Path = NOTEBOOK_DIR,
    check_choices: bool = True,
) -> dict[str, Any]:
    """Only the values the parameter file and the ``-p`` overrides set, validated (name, type, choices).

    ``check_choices=False`` leaves the ``CHOICES`` check to the caller (the dry run lists those with the rest).
    """
    known = known_parameters(notebook_paths(notebook_dir))
    from_file = _read_param_file(params_path)
    merged = dict(from_file)
    parsed_overrides = [parse_override(o) for o in overrides]
    override_keys = {k for k, _ in parsed_overrides}
    merged.update(parsed_overrides)
    valid = sorted((set(known) | set(RUNNER_KEYS)) - set(INJECTED_KEYS))
    explicit: dict[str, Any] = {}
    for key, value in merged.items():
        source = params_path if key in from_file and key not in override_keys else "-p override"
        if key in INJECTED_KEYS:
            raise ParamError(f"parameter {key!r} is set by the runner and may not be given")
        if key not in known and key not in RUNNER_KEYS:
            where = f" in {params_path}" if key in from_file else " (override)"
            raise ParamError(f"unknown parameter {key!r}{where}{_did_you_mean(key, valid)}; "
                             f"valid keys are: {', '.join(valid)}")
        try:
            explicit[key] = check_value(key, value, known.get(key))
        except ParamError as err:  # name where the value came from: the file or a -p override
            raise ParamError(f"{source}: {err}") from None
        problem = choice_problem(key, value) if check_choices else None
        if problem:
            raise ParamError(f"{source}: parameter {problem}")
    return explicit


def choice_problem(key: str, value: Any) -> str | None:
    """``"'difficulty' is 'medum' (did you mean 'medium'?); choose one of ..."``, or None when the value is valid."""
    allowed = choices_for(key)
    if allowed is None or value is None:
        return None
    if isinstance(value, (list, tuple)):  # a list parameter: the first item that is not a choice
        bad = [v for v in value if v not in allowed]
        if not bad:
            return None
        return (f"{key!r} lists {bad[0]!r}{_did_you_mean(bad[0], allowed)}; "
                f"choose from {', '.join(map(str, allowed))}")
    if value in allowed:
        return None
    return f"{key!r} is {value!r}{_did_you_mean(value, allowed)}; choose one of {', '.join(map(str, allowed))}"


def load_params(
    params_path: str | Path | None,
    overrides: list[str] = (),
    notebook_dir: Path = NOTEBOOK_DIR,
    check_choices: bool = True,
) -> dict[str, Any]:
    """Resolve and validate parameters: notebook defaults < file < overrides (the record of a run).

    A default here is the first declaring notebook's; the runner injects only ``explicit_params``,
    so each notebook still runs with its own defaults.
    """
    known = known_parameters(notebook_paths(notebook_dir))
    resolved = {k: v for k, v in known.items() if k not in INJECTED_KEYS}
    resolved.update(explicit_params(params_path, overrides, notebook_dir=notebook_dir, check_choices=check_choices))
    return resolved


def notebook_injection(nb_path: Path, explicit: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """What papermill injects into one notebook: the explicitly set values it declares, and ``run_dir``."""
    declared = notebook_parameters(nb_path).defaults
    injected = {k: v for k, v in explicit.items() if k in declared and k not in RUNNER_KEYS}
    injected["run_dir"] = str(run_dir)
    return injected
