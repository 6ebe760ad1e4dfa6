"""Semantic descriptors (Text4Seg, Lan et al., ICLR 2025, arXiv 2410.09855): a mask as a grid of words.

The target mask (the union of the targets) is resized to a G × G grid by
nearest neighbour (``downsample``; G = 16 by default, the paper also uses 24
and 32). Each cell is labelled with the query phrase when it is foreground and
with ``others`` when it is not. The grid is written row by row, each row
run-length encoded (the paper's "R-RLE", which it reports shortens the text by
74 % at G = 16; ``rle=False`` writes every cell for that comparison).

Text rule (the separators of the paper's released data, adopted exactly):

- a run is ``label *count`` (label, space, asterisk, the count in decimal);
- the runs of one row are joined by ``"| "`` (bar, space);
- rows are joined by ``"\\n "`` (a newline and a space, so every label after
  the first is preceded by a space, as after ``"| "``), the last row ends with
  ``"\\n"``, and the whole is wrapped in ``<seg>`` … ``</seg>``;
- without RLE a row is its G labels joined by ``"| "`` (no counts).

A 4 × 4 grid whose middle 2 × 2 cells are "q" reads::

    <seg>others *4
     others *1| q *2| others *1
     others *1| q *2| others *1
     others *4
    </seg>

The label written is the query with the characters the format uses (``|``,
``*``, ``<``, ``>``, line breaks) turned into spaces and runs of whitespace
collapsed; a query left empty, or equal to ``others``, is written ``target``.
The paper puts a sentence before ``<seg>``; the targets here are the block alone.

Parser rules (``read_grid`` / ``parse`` never raise, never eval):

- not a string, or longer than ``MAX_TEXT_CHARS`` → ``None``;
- the block starts after the first ``<seg>``; no ``<seg>`` at all → ``None``
  (reading a tag-less text as a grid would turn any prose into a mask);
- it ends at the next ``</seg>``, or, truncated, where the text stops;
- lines are rows; blank lines are skipped; rows after the G-th are ignored,
  missing rows are all ``others``;
- a row is split at ``|``; each run is ``label *count`` split at its last
  ``*``; a run without ``*`` is one cell (the full form); the label and count
  are stripped of spaces; an empty label reads as ``others``;
- a count must be a plain decimal integer: 0, a signed, fractional or
  missing count (``"q *"``, a run cut off by truncation) drops that run; a
  count over G is G (longer digit strings are never converted);
- a row shorter than G is padded with ``others``, a longer one is cut at G;
- a cell is foreground when its label is anything but ``others`` (compared
  without case or surrounding spaces). ``parse`` does not see the query, and
  a policy that shortens or rephrases the label still marks the cell; the
  released code reads labels the same way (every label except ``others``
  becomes a positive class).

The released code reads the labels of all rows as one sequence and pads a
short one with its last label. seglib reads each row on its own and pads with
``others``, so a ragged row does not shift the rows below it and a truncated
answer does not stretch its last label over the rest of the image (the
stricter rule of docs/METHODS.md, where output is malformed).

``well_formed`` is stricter (the format reward): a closed block of exactly G
rows, each of G cells, every run with a non-empty label and a valid count
(RLE) or every run a bare label (full form).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from seglib.paradigms.text import MAX_TEXT_CHARS

DEFAULT_GRID = 16
OTHERS = "others"
OPEN, CLOSE = "<seg>", "</seg>"
RUN_SEP, ROW_SEP = "| ", "\n "
#: Grid sides ``Options.grid`` accepts (the paper: 16, 24, 32).
MIN_GRID, MAX_GRID = 2, 64
#: Longest count (in digits) converted to int; longer ones count as G.
_MAX_COUNT_DIGITS = 6
_FORMAT_CHARS_RE = re.compile(r"[|*<>\r\n\t\v\f]")
_DIGITS_RE = re.compile(r"[0-9]+")


# ---------------------------------------------------------------- grid ↔ mask (nearest neighbour)
def cell_centres(n_out: int, n_in: int) -> np.ndarray:
    """Index into ``n_in`` samples of the centre of each of ``n_out`` equal bins: ⌊(i + ½)·n_in / n_out⌋."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def downsample(mask: np.ndarray, grid: int = DEFAULT_GRID) -> np.ndarray:
    """Bool (H, W) mask → bool (G, G) grid: each cell takes the pixel at its centre.

    Cell (i, j) reads pixel (⌊(i + ½)·H/G⌋, ⌊(j + ½)·W/G⌋), PIL's ``NEAREST``
    resize as the paper's data code uses it (equal to it for 32 → 16 and 112 → 16).
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    return mask[np.ix_(cell_centres(grid, h), cell_centres(grid, w))]


def upsample(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool (G, G) grid → bool (H, W) mask: pixel (y, x) takes cell (⌊(y + ½)·G/H⌋, ⌊(x + ½)·G/W⌋).

    When H and W are multiples of G each cell becomes an (H/G) × (W/G) block.
    """
    cells = np.asarray(cells, bool)
    g_rows, g_cols = cells.shape
    return cells[np.ix_(cell_centres(height, g_rows), cell_centres(width, g_cols))]


# ---------------------------------------------------------------- writing
def label_of(query: str, others: str = OTHERS) -> str:
    """The label written for ``query``: format characters → spaces, whitespace collapsed (module docstring)."""
    label = " ".join(_FORMAT_CHARS_RE.sub(" ", str(query)).split())
    return "target" if not label or label.lower() == others.strip().lower() else label


def row_text(labels: list[str], rle: bool = True) -> str:
    """One row of labels → ``"a *2| b *1"`` (``rle``) or ``"a| a| b"``."""
    if not rle:
        return RUN_SEP.join(labels)
    runs, start = [], 0
    for j in range(1, len(labels) + 1):
        if j == len(labels) or labels[j] != labels[start]:
            runs.append(f"{labels[start]} *{j - start}")
            start = j
    return RUN_SEP.join(runs)


def grid_text(cells: np.ndarray, label: str, others: str = OTHERS, rle: bool = True) -> str:
    """Bool (G, G) grid → the ``<seg>`` block; foreground cells are ``label``, the rest ``others``."""
    rows = [row_text([label if c else others for c in row], rle) for row in np.asarray(cells, bool)]
    return OPEN + ROW_SEP.join(rows) + "\n" + CLOSE


# ---------------------------------------------------------------- reading
def _block(text: Any) -> tuple[str, bool] | None:
    """(the text inside the first ``<seg>``, whether it was closed), or None (no block / not a string / too long)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    start = text.find(OPEN)
    if start < 0:
        return None
    body = text[start + len(OPEN):]
    end = body.find(CLOSE)
    return (body, False) if end < 0 else (body[:end], True)


def _run(run: str, grid: int) -> tuple[str, int, bool] | None:
    """(label, count, counted) of one run, or None when its count is not a positive integer."""
    label, star, count = run.rpartition("*")
    if not star:
        return run.strip(), 1, False
    count = count.strip()
    if not _DIGITS_RE.fullmatch(count):
        return None
    n = grid if len(count) > _MAX_COUNT_DIGITS else min(int(count), grid)
    return (label.strip(), n, True) if n > 0 else None


def _row(line: str, grid: int, others: str) -> tuple[np.ndarray, bool]:
    """(bool (G,) foreground cells of one row, whether the row is well formed)."""
    cells = np.zeros(grid, bool)
    pos, ok, kinds = 0, True, set()
    for part in line.split("|"):
        part = part.strip()
        if not part:
            ok = False
            continue
        run = _run(part, grid)
        if run is None:
            ok = False
            continue
        label, n, counted = run
        kinds.add(counted)
        ok &= bool(label)
        take = max(0, min(n, grid - pos))
        if take < n:
            ok = False
        if label and label.lower() != others:
            cells[pos:pos + take] = True
        pos += take
    return cells, ok and pos == grid and len(kinds) == 1


def read_grid(text: Any, grid: int = DEFAULT_GRID, others: str = OTHERS) -> tuple[np.ndarray, bool] | None:
    """Text → (bool (G, G) foreground grid, well formed) by the module's parser rules, or None."""
    try:
        found = _block(text)
        if found is None:
            return None
        body, closed = found
        others = others.strip().lower()
        cells = np.zeros((grid, grid), bool)
        lines = [ln for ln in body.split("\n") if ln.strip()]
        ok = closed and len(lines) == grid
        for i, line in enumerate(lines[:grid]):
            cells[i], row_ok = _row(line, grid, others)
            ok &= row_ok
        return cells, bool(ok)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        return None


def parse(text: Any, grid: int = DEFAULT_GRID, others: str = OTHERS) -> np.ndarray | None:
    """Text → bool (G, G) foreground grid (``read_grid``'s rules), or None; never raises."""
    found = read_grid(text, grid, others)
    return None if found is None else found[0]


def well_formed(text: Any, grid: int = DEFAULT_GRID, others: str = OTHERS) -> bool:
    """True for a closed block of exactly G rows of G cells with valid runs (module docstring)."""
    found = read_grid(text, grid, others)
    return bool(found and found[1])
