"""Parameters: the notebooks declare them, ``params/*.yaml`` set them.

Every notebook has one cell tagged ``parameters`` holding plain assignments
with smoke-scale defaults. The union of those names is the set of valid keys:
a key in a parameter file that no notebook declares is an error listing the
valid keys, and a value whose type disagrees with the notebook's default is an
error naming the key. Precedence: notebook default < parameter file < ``-p
key=value`` override. Values are parsed as YAML; nothing is ever ``eval``-ed.
"""
from __future__ import annotations

import ast
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


def load_params(
    params_path: str | Path | None,
    overrides: list[str] = (),
    notebook_dir: Path = NOTEBOOK_DIR,
) -> dict[str, Any]:
    """Resolve and validate parameters: notebook defaults < file < overrides."""
    known = known_parameters(notebook_paths(notebook_dir))
    from_file: dict[str, Any] = {}
    if params_path is not None:
        path = Path(params_path)
        if not path.is_file():
            raise ParamError(f"parameter file {path} does not exist")
        try:
            from_file = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ParamError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(from_file, dict):
            raise ParamError(f"{path}: expected a mapping of parameter names to values")
    merged = dict(from_file)
    parsed_overrides = [parse_override(o) for o in overrides]
    override_keys = {k for k, _ in parsed_overrides}
    merged.update(parsed_overrides)
    valid = sorted(set(known) | set(RUNNER_KEYS))
    resolved = {k: v for k, v in known.items() if k not in INJECTED_KEYS}
    for key, value in merged.items():
        if key in INJECTED_KEYS:
            raise ParamError(f"parameter {key!r} is set by the runner and may not be given")
        if key not in known and key not in RUNNER_KEYS:
            where = f" in {params_path}" if key in from_file else " (override)"
            raise ParamError(f"unknown parameter {key!r}{where}; valid keys are: {', '.join(valid)}")
        try:
            resolved[key] = check_value(key, value, known.get(key))
        except ParamError as err:  # name where the value came from: the file or a -p override
            source = params_path if key in from_file and key not in override_keys else "-p override"
            raise ParamError(f"{source}: {err}") from None
    return resolved
