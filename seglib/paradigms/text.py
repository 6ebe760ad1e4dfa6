"""Text helpers every paradigm's parser shares: hostile-input guards, answer-tag extraction, lenient JSON.

Model output is hostile input: nothing here raises on it or evals it.
``to_jsonable`` turns a parsed answer into plain JSON types (what prediction files store).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from typing import Any

import numpy as np

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


def is_strict_json(span: str | None, max_chars: int = MAX_BOX_ANSWER_CHARS) -> bool:
    """True when ``span`` is valid JSON as written (double quotes; no NaN/Infinity), within ``max_chars``.

    The parsers also read single-quoted pseudo-JSON (``loads_json``) so that
    accuracy can still be scored; format rewards give credit only to this.
    """
    if not isinstance(span, str) or not span or len(span) > max_chars:
        return False
    try:
        json.loads(span, parse_constant=_reject_constant)
    except (ValueError, RecursionError, TypeError, OverflowError):
        return False
    return True


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


def json_default(obj: Any) -> Any:
    """``json.dumps(default=…)``: numpy scalars and arrays, dataclasses, sets and tuples as plain JSON types."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def to_jsonable(obj: Any) -> Any:
    """A parsed answer as plain JSON types (tuples → lists, numpy → Python, dataclasses → dicts)."""
    return json.loads(json.dumps(obj, default=json_default))


def json_column(value: Any) -> Any:
    """A dataset column that ``rl_rows`` JSON-encoded (a ``str``), decoded; anything else as is."""
    return json.loads(value) if isinstance(value, str) else value


def has_answer_tags(text: Any) -> bool:
    """Format rewards need the answer inside ``<answer>…</answer>`` (the parsers also accept it bare)."""
    return isinstance(text, str) and "<answer>" in text and "</answer>" in text


def finite_scores(scores: dict[str, float]) -> dict[str, float]:
    """Reward components as floats, any non-finite value replaced by 0 (rewards are always finite)."""
    return {k: (float(v) if math.isfinite(float(v)) else 0.0) for k, v in scores.items()}


def known_options(fn: Any, options: dict) -> dict:
    """The entries of ``options`` that ``fn`` takes as keywords (one options dict feeds several scorers)."""
    import inspect

    params = inspect.signature(fn).parameters
    return {k: v for k, v in options.items() if k in params}
