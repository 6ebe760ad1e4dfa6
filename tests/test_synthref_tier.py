"""SynthRef's "parts" tier (objects of several differently coloured parts) and the existing tiers left unchanged."""
import hashlib
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.clicker import next_click
from seglib.data import load_samples
from seglib.data.synthref import COLOURS, DIFFICULTIES, SHAPES, evaluate, generate, make_scene
from seglib.masks import mask_iou
from seglib.paradigms.boxpoints import format as fmt
from seglib.segmenters import build_segmenter

# Digests written from the generator as it was before the "parts" tier was added.
SCENE_DIGESTS = {
    "easy": "70821ef401825510bd66bcceeca417f2dcbd7c9f1cb043977f2dc8eb69a58db6",
    "medium": "035085d88e9216bbe2f4fa8f796620461c0c18b5ec222c0938dd8b7cf4943bed",
    "hard": "dd67b069dff825c72567187ec81c51a3a47c3b1a7a7c92b5f2020406d91d5ac9",
}
FOLDER_DIGESTS = {
    "easy": "76d8802f9bd67bd3c9ba68e3a5b5ebc50a16e7c74d58015d0b53b1195b003b55",
    "medium": "f4778949f88d110460215d81ce9bd53d72b5fcc3a34f5c7aa1d203e726caa6b0",
    "hard": "d860f94e6f09ff01f66f31886cf7e0310c1b202be15736a5320872cf0b223acf",
}


def scene_digest(difficulty: str, n: int = 12, size: int = 112) -> str:
    """sha256 over ``make_scene``'s images, visible masks and attributes for seeds [7, 0..n-1]."""
    h = hashlib.sha256()
    for i in range(n):
        img, objs = make_scene(np.random.default_rng([7, i]), size, DIFFICULTIES[difficulty], SHAPES)
        h.update(img.tobytes())
        for o in objs:
            h.update(np.packbits(o["mask"]).tobytes())
            h.update(json.dumps({k: v for k, v in o.items() if k != "mask"}, sort_keys=True).encode())
    return h.hexdigest()


def folder_digest(difficulty: str) -> str:
    """sha256 over a generated folder's instances.json, refs.json and decoded image pixels."""
    h = hashlib.sha256()
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, 10, seed=3, image_size=64, difficulty=difficulty)
        for name in ("instances.json", "refs.json"):
            h.update((Path(tmp) / name).read_bytes())
        for p in sorted((Path(tmp) / "images").glob("*.png")):
            h.update(cv2.imread(str(p)).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_existing_tiers_are_byte_identical(difficulty):
    assert scene_digest(difficulty) == SCENE_DIGESTS[difficulty]
    assert folder_digest(difficulty) == FOLDER_DIGESTS[difficulty]


def parts_scenes(n: int = 8, size: int = 112):
    cfg = DIFFICULTIES["parts"]
    return [make_scene(np.random.default_rng([11, i]), size, cfg, SHAPES) for i in range(n)]


def test_parts_have_distinct_colours_and_tile_the_mask():
    lo, hi = DIFFICULTIES["parts"]["parts"]["n"]
    n_objects = 0
    for img, objects in parts_scenes():
        for o in objects:
            n_objects += 1
            parts = o["parts"]
            names = [p["colour"] for p in parts]
            assert lo <= len(parts) <= hi and len(set(names)) == len(names), names
            assert names[0] == o["colour"]  # queries name the largest part's colour
            union = np.zeros_like(o["mask"])
            for p in parts:
                assert not (union & p["mask"]).any(), "parts overlap"
                union |= p["mask"]
            np.testing.assert_array_equal(union, o["mask"])
            for p in parts:  # each part is painted its own colour: nearest palette colour to its mean pixel
                if p["mask"].sum() >= 20:
                    mean = img[p["mask"]].mean(axis=0)
                    nearest = min(COLOURS, key=lambda c: np.linalg.norm(np.array(COLOURS[c]) - mean))
                    assert nearest == p["colour"], (nearest, p["colour"])
    assert n_objects >= 10


def test_one_click_is_not_enough_but_gt_box_and_points_are():
    seg = build_segmenter("classic")
    one_click, box_points = [], []
    for img, objects in parts_scenes():
        seg.set_image(img)
        for o in objects:
            gt = o["mask"]
            c = next_click(gt, np.zeros_like(gt), [])
            one_click.append(mask_iou(seg.predict([(c.x, c.y)], [1]).mask, gt))
            answer = fmt.Answer(tuple(fmt.objects_from_masks([gt], n_points=2)))
            box_points.append(mask_iou(fmt.decode(answer, *gt.shape, segmenter=seg), gt))
    assert np.mean(np.array(one_click) < 0.85) > 0.5, one_click
    assert np.mean(np.array(box_points) >= 0.8) > 0.5, box_points


def test_parts_folder_loads_and_queries_name_the_main_colour(tmp_path):
    generate(tmp_path, 20, seed=1, image_size=96, difficulty="parts")
    inst = json.loads((tmp_path / "instances.json").read_text())
    by_image = {}
    for a in inst["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    refs = json.loads((tmp_path / "refs.json").read_text())
    checked = 0
    for ref in refs:
        spec = ref["spec"]
        if ref["kind"] != "referring" or "colour" not in spec or "relation" in spec:
            continue
        objects = [dict(a["attributes"]) for a in by_image[ref["image_id"]]]
        ids = [a["id"] for a in by_image[ref["image_id"]]]
        assert {ids[i] for i in evaluate(objects, spec, 96)} == set(ref["ann_ids"])
        checked += 1
    assert checked > 0
    samples = load_samples(tmp_path)
    assert samples and all(s.union_mask().shape == (96, 96) for s in samples)


def test_mixed_tier_draws_each_image_from_one_of_its_tiers(tmp_path):
    """Image i of a "mixed" folder is pixel-for-pixel image i of the single-tier folder it names (same seed,
    same split), both tiers occur, and the folder loads like any other."""
    n = 24
    generate(tmp_path / "mixed", n, seed=4, image_size=64, difficulty="mixed")
    for tier in ("easy", "parts"):
        generate(tmp_path / tier, n, seed=4, image_size=64, difficulty=tier)
    images = json.loads((tmp_path / "mixed" / "instances.json").read_text())["images"]
    tiers = [im["difficulty"] for im in images]
    assert set(tiers) == {"easy", "parts"}
    single = {t: json.loads((tmp_path / t / "instances.json").read_text())["images"] for t in ("easy", "parts")}
    for im, tier in zip(images, tiers):
        other = {"easy": "parts", "parts": "easy"}[tier]
        pix = cv2.imread(str(tmp_path / "mixed" / "images" / im["file_name"]))
        assert np.array_equal(pix, cv2.imread(str(tmp_path / tier / "images" / im["file_name"])))
        assert im["split"] == single[tier][im["id"] - 1]["split"]
        assert not np.array_equal(pix, cv2.imread(str(tmp_path / other / "images" / im["file_name"])))
    assert "difficulty" not in single["easy"][0]  # single-tier folders keep their layout
    assert load_samples(tmp_path / "mixed")
