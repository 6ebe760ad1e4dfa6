"""The output paradigms: what the policy writes and how it becomes a mask.

=========== =========================================== ============================== ========
name        model writes                                papers                         horizon
=========== =========================================== ============================== ========
boxpoints   ``<think>`` + JSON box and point(s)         Seg-Zero, VisionReasoner, StAR 1
polygon     polygons in [0, 1] coordinates, 3 decimals  SimpleSeg                      1
clicks      one ``Positive/Negative point: (x, y)``     SegAgent                       T clicks
descriptors a G×G grid of labels, rows run-length coded Text4Seg                       1
=========== =========================================== ============================== ========

Each paradigm is a folder ``seglib/paradigms/<name>/`` holding its answer format
(``format.py``: templates, ``parse`` that never raises, target text, decoding),
its rewards, and one ``seglib.paradigms.base.Paradigm`` subclass
(``paradigm.py``). Every stage of seglib talks to a paradigm only through that
class. ``get(name, options)`` builds one; ``REGISTRY`` is the one list of them:
a new paradigm is a new folder plus one line here.

The text helpers all parsers share live in ``seglib.paradigms.text`` and are re-exported here.
"""
from __future__ import annotations

import importlib
from typing import Any

from seglib.paradigms.base import OptionsError, Paradigm  # noqa: F401  (re-exported)
from seglib.paradigms.text import (  # noqa: F401  (re-exported)
    MAX_ABS_COORD,
    MAX_BOX_ANSWER_CHARS,
    MAX_TEXT_CHARS,
    answer_span,
    as_number,
    as_numbers,
    has_think_format,
    loads_json,
    to_jsonable,
)

#: name → "module:Class" of every registered paradigm (imported on first use).
REGISTRY: dict[str, str] = {
    "boxpoints": "seglib.paradigms.boxpoints:BoxPointsParadigm",
    "polygon": "seglib.paradigms.polygon:PolygonParadigm",
    "clicks": "seglib.paradigms.clicks:ClicksParadigm",
    "descriptors": "seglib.paradigms.descriptors:DescriptorsParadigm",
}
PARADIGMS = tuple(REGISTRY)


def paradigm_class(name: str) -> type[Paradigm]:
    """The ``Paradigm`` subclass registered as ``name`` (ValueError listing ``PARADIGMS`` when unknown)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown paradigm {name!r}; expected one of {PARADIGMS}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get(name: str, options: Any = None, **overrides: Any) -> Paradigm:
    """The paradigm ``name`` with ``options`` (an Options instance or a dict; ``overrides`` win).

    An option the paradigm does not have raises ``OptionsError`` naming it.
    """
    return paradigm_class(name)(options, **overrides)


def from_task(task: dict) -> Paradigm:
    """The paradigm of a task record ``{"paradigm": name, "options": {...}}`` (``Paradigm.task()``)."""
    if not isinstance(task, dict) or "paradigm" not in task:
        raise ValueError(f"a task record needs a 'paradigm' key, got {task!r}")
    return get(task["paradigm"], task.get("options") or {})
