"""The three output paradigms: what the policy writes and how it becomes a mask.

========== ============================================ =========================
name       model writes                                 papers
========== ============================================ =========================
boxpoints  ``<think>`` + JSON box and point(s)          Seg-Zero, VisionReasoner, StAR
polygon    polygons in [0, 1] coordinates, 3 decimals   SimpleSeg
clicks     one ``Positive/Negative point: (x, y)``      SegAgent
========== ============================================ =========================

Each module has ``prompt``, ``target_text``, ``parse`` (never raises, never
evals: ``None`` on anything malformed) and ``decode`` (answer → bool mask).
``get(name)`` returns the module. A fourth paradigm is one more module here.

This file also holds the small text helpers the parsers share (hostile-input
guards, answer-tag extraction, lenient JSON).
"""
from __future__ import annotations

import importlib
import json
import math
import re
from types import ModuleType
from typing import Any

PARADIGMS = ("boxpoints", "polygon", "clicks")

#: Texts longer than this are rejected by every parser (a guard against runaway generations).
MAX_TEXT_CHARS = 65_536
#: Box/point answers longer than this are rejected before JSON decoding (100 objects take ~6,000).
MAX_BOX_ANSWER_CHARS = 16_384
#: Coordinates beyond this magnitude (in any frame) are rejected as nonsense.
MAX_ABS_COORD = 1e5

#: Any answer nests at most 3 levels (polygons); 8 consecutive openers is runaway nesting, rejected before JSON.
_DEEP_NESTING_RE = re.compile(r"(?:[\[{]\s*){8}")
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_ANSWER_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def get(name: str) -> ModuleType:
    """The paradigm module called ``name`` (one of ``PARADIGMS``)."""
    if name not in PARADIGMS:
        raise ValueError(f"unknown paradigm {name!r}; expected one of {PARADIGMS}")
    return importlib.import_module(f"seglib.paradigms.{name}")


def answer_span(text: Any) -> str | None:
    """The content of the last complete ``<answer>…</answer>`` pair.

    Without any ``<answer>`` tag the whole text is the answer (compact formats
    that drop the tags). An opened but unclosed tag (truncated) gives ``None``.
    Non-strings and over-long texts give ``None``.
    """
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    found = _ANSWER_RE.findall(text)
    if found:
        return found[-1].strip()
    if "<answer>" in text:
        return None
    tail = text.rsplit("</think>", 1)[-1] if "</think>" in text else text
    return tail.strip()


def has_think_format(text: Any) -> bool:
    """Seg-Zero's think format: the whole text is ``<think>…</think>\\s*<answer>…</answer>``."""
    return isinstance(text, str) and len(text) <= MAX_TEXT_CHARS and _THINK_ANSWER_RE.fullmatch(text) is not None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite JSON constant {name}")


def loads_json(span: str | None, max_chars: int = MAX_TEXT_CHARS) -> Any:
    """Parse JSON without eval; ``None`` when it is not JSON.

    Accepts single-quoted JSON (quotes swapped once, the common model slip).
    Rejects ``NaN``/``Infinity`` constants; numbers that overflow to inf are
    left to the callers' finiteness checks. Spans over ``max_chars``, runaway
    nesting (8 consecutive ``[``/``{``), huge integers and every other failure
    give ``None``.
    """
    if not isinstance(span, str) or not span or len(span) > max_chars or _DEEP_NESTING_RE.search(span):
        return None
    for candidate in (span, span.replace("'", '"') if "'" in span else None):
        if candidate is None:
            continue
        try:
            return json.loads(candidate, parse_constant=_reject_constant)
        except (ValueError, RecursionError, TypeError, OverflowError):
            continue
    return None


def as_number(v: Any) -> float | None:
    """A finite JSON number within ``MAX_ABS_COORD`` as float, else ``None`` (bools are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except (OverflowError, ValueError):
        return None
    if not math.isfinite(f) or abs(f) > MAX_ABS_COORD:
        return None
    return f


def as_numbers(v: Any, n: int) -> tuple[float, ...] | None:
    """A JSON list of exactly ``n`` valid numbers (``as_number``) as a tuple, else ``None``."""
    if not isinstance(v, (list, tuple)) or len(v) != n:
        return None
    out = tuple(as_number(x) for x in v)
    return None if any(x is None for x in out) else out  # type: ignore[return-value]
