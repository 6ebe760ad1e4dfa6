"""RefCOCO (refer pickle + COCO instances) and ReasonSeg (JSON polygons) loaders on hand-made fixtures."""
import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from seglib.data import DataError, load_samples, write_dataset
from seglib.data.reasonseg import load_reasonseg
from seglib.data.refcoco import load_refcoco

H, W = 16, 20
IMG = "COCO_train2014_000000000007.jpg"


def _refcoco_root(tmp_path):
    root = tmp_path / "refer"
    (root / "refcocog").mkdir(parents=True)
    img_dir = root / "images" / "mscoco" / "images" / "train2014"
    img_dir.mkdir(parents=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(img_dir / IMG)
    # ann 11: the polygon of the pixel block x 2..9, y 3..7 (COCO polygons trace pixel edges);
    # ann 12: uncompressed RLE (column-major runs) of the 2x2 block x 15..16, y 0..1.
    runs = [15 * H, 2, H - 2, 2, H - 2 + (W - 17) * H]
    instances = {
        "images": [{"id": 7, "file_name": IMG, "height": H, "width": W}],
        "annotations": [
            {"id": 11, "image_id": 7, "category_id": 1, "iscrowd": 0,
             "segmentation": [[2, 3, 10, 3, 10, 8, 2, 8]], "bbox": [2, 3, 8, 5], "area": 40},
            {"id": 12, "image_id": 7, "category_id": 2, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": runs}, "bbox": [15, 0, 2, 2], "area": 4},
        ],
        "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}],
    }
    (root / "refcocog" / "instances.json").write_text(json.dumps(instances))
    refs = [
        {"ref_id": 100, "ann_id": 11, "image_id": 7, "split": "train", "category_id": 1, "sent_ids": [1, 2],
         "file_name": "COCO_train2014_000000000007_11.jpg",
         "sentences": [{"sent": "the dog on the left", "raw": "The dog on the left.", "tokens": ["the"], "sent_id": 1},
                       {"sent": "brown dog", "raw": "brown dog", "tokens": ["brown", "dog"], "sent_id": 2}]},
        {"ref_id": 101, "ann_id": 12, "image_id": 7, "split": "val", "category_id": 2, "sent_ids": [3],
         "file_name": "COCO_train2014_000000000007_12.jpg",
         "sentences": [{"sent": "small cat top right", "raw": "", "tokens": [], "sent_id": 3}]},
    ]
    with open(root / "refcocog" / "refs(umd).p", "wb") as f:
        pickle.dump(refs, f, protocol=0)  # the refer toolkit's py2 pickles are protocol 0
    return root


def test_refcoco_masks_boxes_and_samples(tmp_path):
    root = _refcoco_root(tmp_path)
    samples = load_refcoco(root, "refcocog", "umd")
    assert [s.sample_id for s in samples] == ["100-0", "100-1", "101-0"]
    assert [s.query for s in samples] == ["the dog on the left", "brown dog", "small cat top right"]
    expect = np.zeros((H, W), bool)
    expect[3:8, 2:10] = True
    assert np.array_equal(samples[0].union_mask(), expect)
    assert samples[0].target_boxes() == [[2, 3, 9, 7]]
    expect2 = np.zeros((H, W), bool)
    expect2[0:2, 15:17] = True
    assert np.array_equal(samples[2].target_masks()[0], expect2)
    assert samples[2].split == "val" and samples[2].meta["category_names"] == ["cat"]
    assert samples[0].image().shape == (H, W, 3)
    assert [s.sample_id for s in load_refcoco(root, splits="val")] == ["101-0"]
    # round trip through our own folder format
    out = write_dataset(samples, tmp_path / "ours")
    again = load_samples(out)
    assert [s.query for s in again] == [s.query for s in samples]
    assert np.array_equal(again[2].union_mask(), expect2)


def test_refcoco_errors_name_file_and_id(tmp_path):
    root = _refcoco_root(tmp_path)
    inst_path = root / "refcocog" / "instances.json"
    inst = json.loads(inst_path.read_text())
    inst["annotations"][0]["segmentation"] = [[2, 3, 10]]
    inst_path.write_text(json.dumps(inst))
    with pytest.raises(DataError, match=r"instances.json: annotation 11 \(ref 100\)"):
        load_refcoco(root)
    (root / "images" / "mscoco" / "images" / "train2014" / IMG).unlink()
    with pytest.raises(DataError, match=rf"{IMG}: image file missing for ref 100"):
        load_refcoco(root)


def test_refcoco_refuses_pickles_outside_root(tmp_path):
    root = _refcoco_root(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "refs(umd).p").write_bytes((root / "refcocog" / "refs(umd).p").read_bytes())
    with pytest.raises(DataError, match="outside the configured dataset root"):
        load_refcoco(root, refs_file=elsewhere / "refs(umd).p")
    with pytest.raises(DataError, match="outside the configured dataset root"):
        load_refcoco(root, refs_file="../elsewhere/refs(umd).p")
    os.symlink(elsewhere / "refs(umd).p", root / "refcocog" / "refs(link).p")
    with pytest.raises(DataError, match="outside the configured dataset root"):
        load_refcoco(root, split_by="link")
    # inside the root, but carrying a code reference: refused by the plain-data unpickler
    with open(root / "refcocog" / "refs(evil).p", "wb") as f:
        pickle.dump([{"ref_id": os.getcwd}], f, protocol=0)
    with pytest.raises(DataError, match="refused to load"):
        load_refcoco(root, split_by="evil")


def _reasonseg_root(tmp_path):
    root = tmp_path / "ReasonSeg"
    (root / "val").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "val" / "img1.jpg")
    anno = {
        "text": ["what would you sit on?", "the chair"], "is_sentence": True,
        "shapes": [
            {"label": "target", "points": [[2, 3], [9, 3], [9, 7], [2, 7]], "shape_type": "polygon"},
            {"label": "ignore", "points": [[4, 4], [5, 4], [5, 5], [4, 5]], "shape_type": "polygon"},
            {"label": "flag", "points": [[0, 0], [19, 0], [19, 15], [0, 15]], "shape_type": "polygon"},
        ],
    }
    (root / "val" / "img1.json").write_text(json.dumps(anno))
    return root


def test_reasonseg_target_and_ignore(tmp_path):
    root = _reasonseg_root(tmp_path)
    samples = load_reasonseg(root, splits=["train", "val"])
    assert [s.sample_id for s in samples] == ["img1-0", "img1-1"]
    assert samples[0].query == "what would you sit on?" and samples[0].split == "val"
    ignore = np.zeros((H, W), bool)
    ignore[4:6, 4:6] = True  # the small ignore square is drawn after (over) the larger target
    target = np.zeros((H, W), bool)
    target[3:8, 2:10] = True  # cv2 fill + 1 px outline: corners inclusive
    target &= ~ignore
    assert np.array_equal(samples[0].union_mask(), target)
    from seglib.masks import decode_rle
    assert np.array_equal(decode_rle(samples[0].meta["ignore_rles"][0]), ignore)
    assert samples[0].kind == "reasoning" and samples[0].meta["is_sentence"] is True
    out = write_dataset(samples, tmp_path / "ours")
    again = load_samples(out)
    assert np.array_equal(decode_rle(again[1].meta["ignore_rles"][0]), ignore)


def test_reasonseg_errors_name_file_and_shape(tmp_path):
    root = _reasonseg_root(tmp_path)
    jp = root / "val" / "img1.json"
    anno = json.loads(jp.read_text())
    anno["shapes"][0]["points"] = [[1, 2]]
    jp.write_text(json.dumps(anno))
    with pytest.raises(DataError, match=r"img1.json: shape #0"):
        load_reasonseg(root)
    (root / "val" / "img1.jpg").unlink()
    with pytest.raises(DataError, match=r"img1.json: no image"):
        load_reasonseg(root)


def test_prepare_dataset_from_refcoco_with_reasonseg(tmp_path):
    from seglib.data import prepare_dataset

    root, rs = _refcoco_root(tmp_path), _reasonseg_root(tmp_path)
    out = tmp_path / "run" / "data"
    prepare_dataset("refcoco", out, data_root=root, refcoco_dataset="refcocog", refcoco_split_by="umd",
                    reasonseg_root=rs, n_images=None)
    samples = load_samples(out)
    assert [(s.split, s.kind, s.query) for s in samples] == [
        ("train", "referring", "the dog on the left"), ("train", "referring", "brown dog"),
        ("val", "referring", "small cat top right"),
        ("val_reasoning", "reasoning", "what would you sit on?"), ("val_reasoning", "reasoning", "the chair")]
    assert samples[0].target_boxes() == [[2, 3, 9, 7]] and samples[0].image().shape == (H, W, 3)
    assert "ignore_rles" in samples[3].meta


def test_check_images_reports_every_broken_image_at_once(tmp_path):
    from PIL import Image

    from seglib.data import DataError, Sample, check_images

    good = tmp_path / "good.png"
    Image.new("RGB", (4, 3)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:20])
    wrong_size = tmp_path / "wrong.png"
    Image.new("RGB", (5, 3)).save(wrong_size)
    missing = tmp_path / "missing.png"
    samples = [Sample(f"s{i}", str(p), "q", "referring", "train", 3, 4)
               for i, p in enumerate([good, truncated, good, wrong_size, missing])]
    with pytest.raises(DataError) as err:
        check_images(samples)
    msg = str(err.value)
    assert msg.startswith("3 of 4 images cannot be used")  # good.png appears twice and is read once
    assert all(str(p) in msg for p in (truncated, wrong_size, missing)) and f"{good}:" not in msg
    assert check_images(samples[:1] + samples[2:3]) == 1


def test_missing_dataset_says_run_notebook_01_first(tmp_path):
    from seglib.data import DataError, load_samples

    with pytest.raises(DataError, match="Run notebook 01"):
        load_samples(tmp_path / "data")
