"""The refer / gRefCOCO side of the on-disk format: split names, a ref's standard fields, the API files.

Standard fields of a ref (:func:`refer_ref_fields`): one target → ``ann_id``
and ``category_id`` are ints (refer's layout); several → lists of the targets'
ids (gRefCOCO's); none → ``ann_id == category_id == [-1]`` and ``no_target``
true (gRefCOCO's rule). ``grefs`` writes single targets as one-element lists,
as gRefCOCO does.

Split names: the refer API's ``getRefIds(split="test")`` returns every ref
whose split name contains "test", so the held-out reasoning split is written as
``"reasoning"`` (:data:`FILE_SPLITS`); seglib calls it ``"test_reasoning"``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# seglib split name -> the name written in refs.json / instances.json (see the module docstring).
FILE_SPLITS = {"test_reasoning": "reasoning"}
_SEGLIB_SPLITS = {v: k for k, v in FILE_SPLITS.items()}
NO_TARGET_ID = -1  # gRefCOCO's ann_id / category_id of a ref that names nothing


def file_split(split: str) -> str:
    """The split name written to disk for seglib's ``split`` ("test_reasoning" → "reasoning")."""
    return FILE_SPLITS.get(split, split)


def seglib_split(name: str) -> str:
    """seglib's split name for a name read from disk ("reasoning" → "test_reasoning"; others unchanged)."""
    return _SEGLIB_SPLITS.get(name, name)


def mask_to_pixel_polygons(mask: np.ndarray) -> list[list[int]]:
    """COCO polygons that decode (pycocotools ``frPyObjects`` + ``merge``) to exactly ``mask``.

    Each polygon is an axis-aligned rectangle on pixel corners, ``[x0, y0, x1, y0, x1, y1, x0, y1]``
    (x right, y down, integers; pixel (x, y) is the unit square [x, x+1] × [y, y+1]), covering one
    run of mask pixels in a row, stacked over the consecutive rows where that run is the same.
    The rectangles are disjoint, so refer's ``getMask`` (which sums the parts) gives 0/1 too.
    Ordered by (top row, x0). An empty mask gives [].
    """
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    pad = np.zeros((h, w + 2), np.int8)
    pad[:, 1:-1] = m
    edges = np.diff(pad, axis=1)
    opened: dict[tuple[int, int], int] = {}
    prev: set[tuple[int, int]] = set()
    rects: list[list[int]] = []
    for y in range(h + 1):
        runs = set(zip(np.flatnonzero(edges[y] == 1).tolist(), np.flatnonzero(edges[y] == -1).tolist())) if y < h else set()
        for x0, x1 in prev - runs:
            y0 = opened.pop((x0, x1))
            rects.append([x0, y0, x1, y0, x1, y, x0, y])
        for r in runs - prev:
            opened[r] = y
        prev = runs
    return sorted(rects, key=lambda r: (r[1], r[0]))


def refer_ref_fields(ann_ids: list[int], category_ids: list[int]) -> dict:
    """A ref's standard fields ``ann_id``, ``category_id``, ``no_target`` (refer / gRefCOCO layout).

    One target → ints (the refer API reads it unchanged); several → lists; none → ``[-1]`` each and
    ``no_target`` true, gRefCOCO's rule for a no-target expression.
    """
    if not ann_ids:
        return {"ann_id": [NO_TARGET_ID], "category_id": [NO_TARGET_ID], "no_target": True}
    if len(ann_ids) == 1:
        return {"ann_id": int(ann_ids[0]), "category_id": int(category_ids[0]), "no_target": False}
    return {"ann_id": [int(a) for a in ann_ids], "category_id": [int(c) for c in category_ids], "no_target": False}


def ref_ann_ids(ref: dict) -> list[int]:
    """Target annotation ids of a ref in any of the layouts: seglib's ``ann_ids``, refer's int
    ``ann_id``, gRefCOCO's list ``ann_id`` (``[-1]`` or ``no_target`` → no target)."""
    if "ann_ids" in ref:
        return [int(a) for a in ref["ann_ids"]]
    if ref.get("no_target"):
        return []
    a = ref["ann_id"]
    ids = [int(x) for x in a] if isinstance(a, list) else [int(a)]
    return [x for x in ids if x != NO_TARGET_ID]


def write_refer_files(out_dir: str | Path, refs: list[dict], split_by: str) -> None:
    """Write ``refs(<split_by>).p`` (single-target refs, unchanged, protocol-2 pickle of plain data) and
    ``grefs(<split_by>).json`` (every ref, ``ann_id``/``category_id`` always lists) beside refs.json.

    The refs are taken through JSON first, so the pickle holds only dicts, lists, str, int, float,
    bool and None, and the bytes do not depend on object identity.
    """
    import pickle

    out_dir = Path(out_dir)
    plain = json.loads(json.dumps(refs, sort_keys=True))
    single = [r for r in plain if not r.get("no_target") and not isinstance(r.get("ann_id"), list)]
    (out_dir / f"refs({split_by}).p").write_bytes(pickle.dumps(single, protocol=2))
    grefs = []
    for r in plain:
        g = dict(r)
        for key in ("ann_id", "category_id"):
            if not isinstance(g[key], list):
                g[key] = [g[key]]
        grefs.append(g)
    (out_dir / f"grefs({split_by}).json").write_text(json.dumps(grefs, sort_keys=True, separators=(",", ":")))
