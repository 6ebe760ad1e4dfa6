"""The standard RefCOCO / gRefCOCO / COCO files: hand-written fixtures in those formats, and SynthRef's own files
checked against the rules the refer and grefer APIs read them by (field names, polygon branch, split matching)."""
import json
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from seglib.data import DataError, load_samples, mask_to_pixel_polygons, refer_ref_fields, write_dataset
from seglib.data.refcoco import load_grefcoco, load_refcoco, load_refs_pickle
from seglib.masks import decode_rle

H, W = 16, 20
IMG = "COCO_train2014_000000000007.jpg"


def _box(x0, y0, x1, y1):
    """Inclusive pixel block x0..x1, y0..y1 as a bool (H, W) mask."""
    m = np.zeros((H, W), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


# ----------------------------------------------------------------------------- a Python-2 refs pickle, by hand

def _py2_pickle(obj) -> bytes:
    """Protocol 2 as Python 2's cPickle writes plain data (opcodes from the pickle documentation / pickletools):
    a py2 ``str`` (here: bytes) as SHORT_BINSTRING 'U' / BINSTRING 'T', ``unicode`` (here: str) as BINUNICODE 'X',
    containers as EMPTY_LIST/EMPTY_DICT + MARK ... APPENDS/SETITEMS, each followed by a BINPUT memo entry."""
    out = bytearray(b"\x80\x02")
    memo = [0]

    def put():
        out.extend(b"q" + bytes([memo[0]]))
        memo[0] += 1

    def emit(x):
        if isinstance(x, bool):
            out.extend(b"\x88" if x else b"\x89")
        elif isinstance(x, int):
            out.extend(b"K" + bytes([x]) if 0 <= x < 256 else b"J" + struct.pack("<i", x))
        elif isinstance(x, bytes):
            out.extend((b"U" + bytes([len(x)]) if len(x) < 256 else b"T" + struct.pack("<I", len(x))) + x)
            put()
        elif isinstance(x, str):
            raw = x.encode("utf-8")
            out.extend(b"X" + struct.pack("<I", len(raw)) + raw)
            put()
        elif isinstance(x, list):
            out.extend(b"]")
            put()
            if x:
                out.extend(b"(")
                for v in x:
                    emit(v)
                out.extend(b"e")
        elif isinstance(x, dict):
            out.extend(b"}")
            put()
            if x:
                out.extend(b"(")
                for k, v in x.items():
                    emit(k)
                    emit(v)
                out.extend(b"u")
        else:
            raise TypeError(type(x))

    emit(obj)
    out.extend(b".")
    return bytes(out)


def test_hand_pickle_is_what_pickle_reads():
    # the encoder itself, checked against the standard library's reader (py2 str -> str with encoding="utf-8")
    data = [{b"ref_id": 300, b"s": b"caf\xc3\xa9", b"u": "dog", b"l": [1, -2, True], b"n": {}}]
    assert pickle.loads(_py2_pickle(data), encoding="utf-8") == [
        {"ref_id": 300, "s": "café", "u": "dog", "l": [1, -2, True], "n": {}}]


def _refcoco_root(tmp_path):
    root = tmp_path / "refer"
    (root / "refcocog").mkdir(parents=True)
    img_dir = root / "images" / "mscoco" / "images" / "train2014"
    img_dir.mkdir(parents=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(img_dir / IMG)
    # RefCOCO's instances.json: COCO polygons [x1, y1, x2, y2, ...] in pixel-corner coordinates.
    # ann 11: two parts, the blocks x 2..9, y 3..7 and x 12..13, y 0..1; ann 12: the block x 15..18, y 10..14.
    instances = {
        "images": [{"id": 7, "file_name": IMG, "height": H, "width": W}],
        "annotations": [
            {"id": 11, "image_id": 7, "category_id": 18, "iscrowd": 0, "area": 44.0, "bbox": [2.0, 0.0, 12.0, 8.0],
             "segmentation": [[2, 3, 10, 3, 10, 8, 2, 8], [12.0, 0.0, 14.0, 0.0, 14.0, 2.0, 12.0, 2.0]]},
            {"id": 12, "image_id": 7, "category_id": 17, "iscrowd": 0, "area": 20.0, "bbox": [15.0, 10.0, 4.0, 5.0],
             "segmentation": [[15, 10, 19, 10, 19, 15, 15, 15]]},
        ],
        "categories": [{"id": 17, "name": "cat", "supercategory": "animal"},
                       {"id": 18, "name": "dog", "supercategory": "animal"}],
    }
    (root / "refcocog" / "instances.json").write_text(json.dumps(instances))
    # refs(umd).p: RefCOCOg's ref fields, keys and most strings as py2 str, one sentence as unicode
    refs = [
        {b"image_id": 7, b"split": b"train", b"sentences": [
            {b"tokens": [b"the", b"dog"], b"raw": b"The dog, caf\xc3\xa9 side.", b"sent_id": 1, b"sent": "the dog"},
            {b"tokens": [b"brown", b"dog"], b"raw": b"brown dog", b"sent_id": 2, b"sent": b"brown dog"}],
         b"file_name": b"COCO_train2014_000000000007_11.jpg", b"category_id": 18, b"ann_id": 11, b"sent_ids": [1, 2],
         b"ref_id": 100},
        {b"image_id": 7, b"split": b"val", b"sentences": [
            {b"tokens": [b"cat"], b"raw": b"cat", b"sent_id": 3, b"sent": b"cat"}],
         b"file_name": b"COCO_train2014_000000000007_12.jpg", b"category_id": 17, b"ann_id": 12, b"sent_ids": [3],
         b"ref_id": 101},
    ]
    (root / "refcocog" / "refs(umd).p").write_bytes(_py2_pickle(refs))
    return root


def test_refcoco_py2_pickle_and_polygons(tmp_path):
    root = _refcoco_root(tmp_path)
    raw = load_refs_pickle(root / "refcocog" / "refs(umd).p", root)
    assert raw[0]["sentences"][0]["raw"] == "The dog, café side."  # py2 utf-8 bytes decode to str
    samples = load_refcoco(root, "refcocog", "umd")
    assert [(s.sample_id, s.query, s.split) for s in samples] == [
        ("100-0", "the dog", "train"), ("100-1", "brown dog", "train"), ("101-0", "cat", "val")]
    # ann 11 = 8*5 + 2*2 = 44 px; ann 12 = 4*5 = 20 px
    assert np.array_equal(samples[0].union_mask(), _box(2, 3, 9, 7) | _box(12, 0, 13, 1))
    assert samples[0].union_mask().sum() == 44
    assert np.array_equal(samples[2].union_mask(), _box(15, 10, 18, 14)) and samples[2].union_mask().sum() == 20
    assert samples[0].meta["category_names"] == ["dog"] and samples[0].meta["sent_id"] == 1
    assert samples[0].target_boxes() == [[2, 0, 13, 7]]


# ----------------------------------------------------------------------------- gRefCOCO, by hand

def _grefcoco_root(tmp_path):
    root = tmp_path / "gref"
    (root / "grefcoco").mkdir(parents=True)
    (root / "images" / "train2014").mkdir(parents=True)
    Image.fromarray(np.full((H, W, 3), 60, np.uint8)).save(root / "images" / "train2014" / IMG)
    # ann 23 is a crowd region given as uncompressed RLE: column-major runs, 0s first.
    # It covers x 0..1, y 14..15: 14 zeros, 2 ones (column 0), 14 zeros, 2 ones (column 1), then the rest zeros.
    runs = [14, 2, 14, 2, H * W - 32]
    instances = {
        "images": [{"id": 7, "file_name": IMG, "height": H, "width": W}],
        "annotations": [
            {"id": 21, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [2, 3, 8, 5], "area": 40,
             "segmentation": [[2, 3, 10, 3, 10, 8, 2, 8]]},
            {"id": 22, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [15, 10, 4, 5], "area": 20,
             "segmentation": [[15, 10, 19, 10, 19, 15, 15, 15]]},
            {"id": 23, "image_id": 7, "category_id": 1, "iscrowd": 1, "bbox": [0, 14, 2, 2], "area": 4,
             "segmentation": {"size": [H, W], "counts": runs}},
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }
    (root / "grefcoco" / "instances.json").write_text(json.dumps(instances))

    def sent(text, sid):
        return {"tokens": text.split(), "raw": text, "sent_id": sid, "sent": text}

    grefs = [  # gRefCOCO's fields: ann_id / category_id lists; no target = [-1] with no_target true
        {"ref_id": 200, "image_id": 7, "split": "testA", "ann_id": [21, 22], "category_id": [1, 1],
         "no_target": False, "sent_ids": [5], "file_name": IMG, "sentences": [sent("both people", 5)]},
        {"ref_id": 201, "image_id": 7, "split": "val", "ann_id": [-1], "category_id": [-1], "no_target": True,
         "sent_ids": [6, 7], "file_name": IMG, "sentences": [sent("the horse", 6), sent("a horse on the left", 7)]},
        {"ref_id": 202, "image_id": 7, "split": "train", "ann_id": [21], "category_id": [1], "no_target": False,
         "sent_ids": [8], "file_name": IMG, "sentences": [sent("the left person", 8)]},
        {"ref_id": 203, "image_id": 7, "split": "train", "ann_id": [23], "category_id": [1], "no_target": False,
         "sent_ids": [9], "file_name": IMG, "sentences": [sent("the crowd", 9)]},
    ]
    (root / "grefcoco" / "grefs(unc).json").write_text(json.dumps(grefs))
    return root


def test_grefcoco_multi_empty_single_and_crowd(tmp_path):
    root = _grefcoco_root(tmp_path)
    samples = load_grefcoco(root)
    assert [(s.sample_id, s.kind, s.split) for s in samples] == [
        ("200-0", "multi", "testA"), ("201-0", "empty", "val"), ("201-1", "empty", "val"),
        ("202-0", "referring", "train"), ("203-0", "referring", "train")]
    left, right = _box(2, 3, 9, 7), _box(15, 10, 18, 14)
    assert [m.sum() for m in samples[0].target_masks()] == [40, 20]
    assert np.array_equal(samples[0].union_mask(), left | right)
    assert samples[1].target_rles == [] and samples[1].meta["no_target"] is True and samples[1].meta["ann_ids"] == []
    assert np.array_equal(samples[3].union_mask(), left)
    assert samples[4].target_rles == []  # crowd left out, as grefer's getMaskByRef does
    crowd = load_grefcoco(root, skip_crowd=False)[4]
    assert np.array_equal(crowd.union_mask(), _box(0, 14, 1, 15))
    assert [s.sample_id for s in load_grefcoco(root, splits=["testA"])] == ["200-0"]
    # no_target contradicting a real ann_id is an error naming the file and ref
    refs = json.loads((root / "grefcoco" / "grefs(unc).json").read_text())
    refs[0]["no_target"] = True
    (root / "grefcoco" / "grefs(unc).json").write_text(json.dumps(refs))
    with pytest.raises(DataError, match=r"grefs\(unc\).json: ref 200 has no_target"):
        load_grefcoco(root)


def test_prepare_dataset_grefcoco_and_refer_files(tmp_path):
    from seglib.data import prepare_dataset

    root = _grefcoco_root(tmp_path)
    out = tmp_path / "run" / "data"
    prepare_dataset("grefcoco", out, data_root=root, n_images=None)
    samples = load_samples(out)
    assert [(s.kind, s.split, s.query) for s in samples][:3] == [
        ("multi", "testA", "both people"), ("empty", "val", "the horse"), ("empty", "val", "a horse on the left")]
    refs = json.loads((out / "refs.json").read_text())
    assert [(r["ann_id"], r["no_target"]) for r in refs] == [([1, 2], False), ([-1], True), (1, False), ([-1], True)]
    single = load_refs_pickle(out / "refs(seglib).p", out)
    assert [r["ref_id"] for r in single] == [202] and single[0] == refs[2]  # unchanged
    grefs = json.loads((out / "grefs(seglib).json").read_text())
    assert [g["ann_id"] for g in grefs] == [[1, 2], [-1], [1], [-1]]
    assert [[st["sent_id"] for st in r["sentences"]] for r in refs] == [[1], [2, 3], [4], [5]]


# ----------------------------------------------------------------------------- seglib's readers of the layouts

def test_load_samples_reads_refer_grefcoco_and_old_fields(tmp_path):
    d = tmp_path / "d"
    (d / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(d / "images" / "a.png")
    inst = {"images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[2, 3, 10, 3, 10, 8, 2, 8]]},
                            {"id": 6, "image_id": 1, "category_id": 1, "segmentation": [[15, 10, 19, 10, 19, 15, 15, 15]]}],
            "categories": [{"id": 1, "name": "thing"}]}
    s = [{"sent": "q", "sent_id": 1, "tokens": ["q"]}]
    refs = [
        {"ref_id": 1, "image_id": 1, "ann_id": 5, "category_id": 1, "split": "train", "sentences": s},  # refer
        {"ref_id": 2, "image_id": 1, "ann_id": [5, 6], "category_id": [1, 1], "no_target": False, "split": "val",
         "sentences": s},  # gRefCOCO multi
        {"ref_id": 3, "image_id": 1, "ann_id": [-1], "category_id": [-1], "no_target": True, "split": "test",
         "sentences": s},  # gRefCOCO no target
        {"ref_id": 4, "image_id": 1, "ann_ids": [6], "split": "test_reasoning", "kind": "reasoning",
         "sentences": s},  # an older seglib folder
        {"ref_id": 5, "image_id": 1, "ann_ids": [5], "ann_id": 5, "category_id": 1, "no_target": False,
         "split": "reasoning", "kind": "reasoning", "sentences": s},  # today's on-disk name
    ]
    (d / "instances.json").write_text(json.dumps(inst))
    (d / "refs.json").write_text(json.dumps(refs))
    got = load_samples(d)
    assert [(x.kind, x.split, x.meta["ann_ids"]) for x in got] == [
        ("referring", "train", [5]), ("multi", "val", [5, 6]), ("empty", "test", []),
        ("reasoning", "test_reasoning", [6]), ("reasoning", "test_reasoning", [5])]
    assert [x.meta["ref_id"] for x in load_samples(d, split="test_reasoning")] == [4, 5]
    assert [x.meta["ref_id"] for x in load_samples(d, split="reasoning")] == [4, 5]
    assert np.array_equal(got[1].union_mask(), _box(2, 3, 9, 7) | _box(15, 10, 18, 14))


def test_refer_ref_fields_rule():
    assert refer_ref_fields([7], [3]) == {"ann_id": 7, "category_id": 3, "no_target": False}
    assert refer_ref_fields([7, 9], [3, 4]) == {"ann_id": [7, 9], "category_id": [3, 4], "no_target": False}
    assert refer_ref_fields([], []) == {"ann_id": [-1], "category_id": [-1], "no_target": True}


# ----------------------------------------------------------------------------- exact pixel-edge polygons

def test_pixel_polygons_hand_cases():
    # . X X . .      rows 0-1: the run x 1..2 -> rectangle x 1..3 (corners), y 0..2
    # . X X . .      row 2: runs x 0 and x 3..4 -> [0,2,1,2,1,3,0,3] and [3,2,5,2,5,3,3,3]
    # X . . X X
    # . . . . .
    m = np.array([[0, 1, 1, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 1, 1], [0, 0, 0, 0, 0]], bool)
    assert mask_to_pixel_polygons(m) == [[1, 0, 3, 0, 3, 2, 1, 2], [0, 2, 1, 2, 1, 3, 0, 3], [3, 2, 5, 2, 5, 3, 3, 3]]
    ring = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], bool)  # a hole: COCO's union of parts still gives it
    assert mask_to_pixel_polygons(ring) == [[0, 0, 3, 0, 3, 1, 0, 1], [0, 1, 1, 1, 1, 2, 0, 2],
                                            [2, 1, 3, 1, 3, 2, 2, 2], [0, 2, 3, 2, 3, 3, 0, 3]]
    assert mask_to_pixel_polygons(np.zeros((2, 2), bool)) == []


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.data())
def test_pixel_polygons_decode_exactly_with_pycocotools(h, w, data):
    m = np.array(data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), bool).reshape(h, w)
    polys = mask_to_pixel_polygons(m)
    if not m.any():
        assert polys == []
        return
    parts = mask_utils.decode(mask_utils.frPyObjects(polys, h, w))  # (h, w, n), as refer's getMask decodes
    assert parts.sum(axis=2).max() <= 1 and np.array_equal(parts.sum(axis=2).astype(bool), m)
    assert np.array_equal(mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool), m)


# ----------------------------------------------------------------------------- SynthRef's own files

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from seglib.data.synthref import generate

    d = tmp_path_factory.mktemp("synth")
    generate(d, 40, seed=2, image_size=64, difficulty="medium")
    return d


def test_synthref_refer_files_follow_the_api_rules(synth):
    refs = json.loads((synth / "refs.json").read_text())
    inst = json.loads((synth / "instances.json").read_text())
    anns = {a["id"]: a for a in inst["annotations"]}
    # refer: refs(synthref).p holds exactly the single-target refs, unchanged; refer indexes ann_id and
    # category_id, takes the polygon branch when segmentation[0] is a list, and matches split="test" by substring
    single = load_refs_pickle(synth / "refs(synthref).p", synth)
    assert single == [r for r in refs if len(r["ann_ids"]) == 1] and single
    for r in single:
        assert isinstance(r["ann_id"], int) and r["ann_id"] in anns and isinstance(r["category_id"], int)
        assert anns[r["ann_id"]]["category_id"] == r["category_id"]
        assert all({"sent_id", "tokens", "sent"} <= set(s) for s in r["sentences"])
        assert isinstance(anns[r["ann_id"]]["segmentation"][0], list)
    file_splits = {r["split"] for r in refs}
    assert file_splits == {"train", "val", "test", "reasoning"}
    assert [s for s in file_splits if "test" in s] == ["test"]
    assert not any(c in s for s in file_splits for c in "ABC")  # refer's testA/B/C match these letters
    # grefer: every ref, ann_id/category_id lists, no-target = [-1] + no_target
    grefs = json.loads((synth / "grefs(synthref).json").read_text())
    assert [g["ref_id"] for g in grefs] == [r["ref_id"] for r in refs]
    for g, r in zip(grefs, refs):
        assert g["ann_id"] == (r["ann_ids"] or [-1]) and g["no_target"] == (not r["ann_ids"])
        assert len(g["category_id"]) == len(g["ann_id"])
    assert any(g["no_target"] for g in grefs) and any(len(g["ann_id"]) > 1 for g in grefs)


def test_synthref_instances_read_with_pycocotools_coco(synth):
    from pycocotools.coco import COCO

    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(synth / "instances.json"))
    n = 0
    for s in load_samples(synth):
        for a, m in zip(s.meta["ann_ids"], s.target_masks()):
            assert np.array_equal(coco.annToMask(coco.anns[a]).astype(bool), m)
            assert coco.anns[a]["area"] == m.sum()
            n += 1
    assert n > 40


def test_synthref_samples_same_as_before_the_format_change(tmp_path, synth):
    """An older SynthRef folder (RLE segmentations, only ``ann_ids``, split "test_reasoning") gives the same
    Samples as today's files: rewrite today's folder in that older form and compare."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(synth, old)
    inst = json.loads((old / "instances.json").read_text())
    for a in inst["annotations"]:
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], 64, 64))
        a["segmentation"] = {"size": [64, 64], "counts": rle["counts"].decode()}
    for im in inst["images"]:
        im["split"] = "test_reasoning" if im["split"] == "reasoning" else im["split"]
    refs = json.loads((old / "refs.json").read_text())
    for r in refs:
        for k in ("ann_id", "category_id", "no_target", "sent_ids", "file_name"):
            r.pop(k)
        r["split"] = "test_reasoning" if r["split"] == "reasoning" else r["split"]
    (old / "instances.json").write_text(json.dumps(inst))
    (old / "refs.json").write_text(json.dumps(refs))
    for f in ("refs(synthref).p", "grefs(synthref).json"):
        (old / f).unlink()
    a, b = load_samples(old), load_samples(synth)
    strip = [(x.sample_id, x.query, x.kind, x.split, x.target_rles, x.meta) for x in a]
    assert strip == [(x.sample_id, x.query, x.kind, x.split, x.target_rles, x.meta) for x in b]
    assert {x.split for x in a} == {"train", "val", "test", "test_reasoning"}
    assert [decode_rle(r).sum() for r in a[0].target_rles] == [m.sum() for m in b[0].target_masks()]


def test_write_dataset_polygons_option(tmp_path):
    root = _grefcoco_root(tmp_path)
    samples = load_grefcoco(root)
    out = write_dataset(samples, tmp_path / "poly", segmentation="polygons")
    inst = json.loads((out / "instances.json").read_text())
    assert all(isinstance(a["segmentation"], list) for a in inst["annotations"])
    again = load_samples(out)
    assert [np.array_equal(x.union_mask(), y.union_mask()) for x, y in zip(again, samples)] == [True] * len(samples)
    with pytest.raises(ValueError, match="segmentation"):
        write_dataset(samples, tmp_path / "bad", segmentation="mask")
