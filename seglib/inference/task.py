"""The task record of a checkpoint: which paradigm it writes, with which options (``task.json``).

``save_task(folder, paradigm)`` writes ``task.json``::

    {"paradigm": name, "options": {every field of paradigm.Options},
     "prompt_template", "style", "resize", "resize_image", "prm", "outline"}

The flat keys after ``options`` are the spelling of earlier releases (read by
their ``checkpoint_spec``); they repeat the options (a default where the
paradigm has no such option). ``load_task(folder, **overrides)`` gives the
``Paradigm`` back. It reads ``task.json`` and the legacy files
(``seglib_task.json``, ``sft_done.json``, ``grpo_done.json``,
``star_done.json``: fields at the top level or under ``"task"``) with their
aliases; the legacy flat fields (``LEGACY_FIELDS``) and everything under
``"options"`` map onto the paradigm's ``Options`` by name and
fields the ``Options`` lacks are dropped. The paradigm otherwise comes from the
folder name (``sft-<paradigm>``, ``grpo-<paradigm>[-<variant>]``, ``star-<paradigm>``).
This is the only place that knows the legacy spellings.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

TASK_FILE = "task.json"
TASK_FILES = (TASK_FILE, "seglib_task.json", "sft_done.json", "grpo_done.json", "star_done.json")
#: legacy spelling → the ``Options`` field it means
ALIASES = {"template": "prompt_template", "boxpoints_style": "style", "segzero_resize": "resize"}
#: the flat fields of earlier task files, with the value they had when a paradigm lacked them
LEGACY_FIELDS = {"prompt_template": None, "style": None, "resize": None, "resize_image": True, "prm": False,
                 "outline": False}


def save_task(folder: str | Path, paradigm: Any) -> Path:
    """Write ``<folder>/task.json`` for ``paradigm`` (a ``seglib.paradigms.base.Paradigm``); returns its path."""
    record = paradigm.task()
    options = record["options"]
    record.update({k: options.get(k, default) for k, default in LEGACY_FIELDS.items()})
    path = Path(folder) / TASK_FILE
    path.write_text(json.dumps(record, indent=1))
    return path


def read_task(folder: str | Path) -> dict:
    """``{"paradigm": name or None, "options": {...}}`` from the task files of ``folder`` (first file wins per key)."""
    folder = Path(folder)
    name, options = None, {}
    for file_name in TASK_FILES:
        f = folder / file_name
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text())
        except ValueError as err:
            raise ValueError(f"{f}: not valid JSON ({err})") from None
        for block in (data, data.get("task") if isinstance(data, dict) else None):
            if not isinstance(block, dict):
                continue
            name = name or block.get("paradigm")
            nested = block.get("options")
            flat = {ALIASES.get(k, k): v for k, v in block.items() if ALIASES.get(k, k) in LEGACY_FIELDS}
            for values in (nested if isinstance(nested, dict) else {}, flat):
                for k, v in values.items():
                    options.setdefault(ALIASES.get(k, k), v)
    return {"paradigm": name, "options": options}


def load_task(folder: str | Path, **overrides: Any) -> Any:
    """The ``Paradigm`` a checkpoint folder was trained with.

    ``overrides`` (option names or their legacy aliases; ``paradigm`` = the name)
    win over the files; a None override is ignored, and one the paradigm's
    ``Options`` lacks is dropped (e.g. ``prm`` for a one-step paradigm).
    """
    from seglib.paradigms import PARADIGMS, from_task, paradigm_class

    folder = Path(folder)
    found = read_task(folder)
    parts = folder.name.split("-")
    name = overrides.pop("paradigm", None) or found["paradigm"] or (parts[1] if len(parts) > 1 else parts[0])
    if name not in PARADIGMS:
        raise ValueError(f"{folder}: cannot tell the paradigm (got {name!r}); pass paradigm=")
    known = {f.name for f in dataclasses.fields(paradigm_class(name).Options)}
    options = {k: v for k, v in found["options"].items() if k in known}
    options.update({k: v for k, v in ((ALIASES.get(k, k), v) for k, v in overrides.items())
                    if v is not None and k in known})
    return from_task({"paradigm": name, "options": options})


def with_options(paradigm: Any, **overrides: Any) -> Any:
    """``paradigm`` with the ``overrides`` it has as options applied (None values and unknown names ignored)."""
    known = {f.name for f in dataclasses.fields(paradigm.Options)}
    chosen = {k: v for k, v in overrides.items() if v is not None and k in known}
    return type(paradigm)(paradigm.options, **chosen) if chosen else paradigm
