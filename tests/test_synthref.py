"""SynthRef generator and the COCO-style loader: checked against the scene metadata independently."""
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from seglib.data import DataError, load_samples
from seglib.data.synthref import generate

# Written out here, not imported, so the test does not share the generator's tables.
RGB = {"red": (215, 40, 40), "green": (50, 165, 60), "blue": (40, 80, 215), "yellow": (235, 205, 40),
       "purple": (135, 60, 180), "white": (240, 240, 240)}
PROPERTY_SETS = {
    "hole": ("shape", {"ring"}), "rollable": ("shape", {"circle", "ring"}),
    "no_corners": ("shape", {"circle", "ring", "blob"}), "three_corners": ("shape", {"triangle"}),
    "six_sides": ("shape", {"hexagon"}), "five_points": ("shape", {"star"}), "moon": ("shape", {"crescent"}),
    "plus": ("shape", {"cross"}), "stick": ("shape", {"bar"}), "irregular": ("shape", {"blob"}),
    "sky": ("colour", {"blue"}), "grass": ("colour", {"green"}), "tomato": ("colour", {"red"}),
    "banana": ("colour", {"yellow"}), "pumpkin": ("colour", {"orange"}), "plum": ("colour", {"purple"}),
    "flamingo": ("colour", {"pink"}), "snow": ("colour", {"white"}), "coal": ("colour", {"black"}),
}
N_CORNERS = {"triangle": 3, "square": 4, "bar": 4, "hexagon": 6, "star": 10, "cross": 12, "crescent": 2,
             "circle": 0, "ring": 0, "blob": 0}
REASONING_WORDS = ("hole", "roll", "corner", "sides", "tips", "moon", "plus sign", "stick", "irregular",
                   "sky", "grass", "tomato", "banana", "pumpkin", "plum", "flamingo", "snow", "coal")


def _decode(a, size):
    """pycocotools' own polygon rasteriser (frPyObjects + merge), as COCO.annToMask does it."""
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], size, size))).astype(bool)


def _load(d):
    return json.loads((d / "instances.json").read_text()), json.loads((d / "refs.json").read_text())


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    d = tmp_path_factory.mktemp("hard")
    generate(d, 48, seed=3, image_size=96, difficulty="hard")
    return d


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    d = tmp_path_factory.mktemp("easy")
    generate(d, 30, seed=1, image_size=96, difficulty="easy")
    return d


def test_same_seed_gives_byte_identical_files(tmp_path, hard):
    generate(tmp_path / "again", 48, seed=3, image_size=96, difficulty="hard")
    files = sorted(p.relative_to(hard) for p in hard.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for f in files:
        assert (hard / f).read_bytes() == (tmp_path / "again" / f).read_bytes(), f
    generate(tmp_path / "other", 48, seed=4, image_size=96, difficulty="hard")
    assert (hard / "refs.json").read_bytes() != (tmp_path / "other" / "refs.json").read_bytes()


def test_identical_across_processes_with_other_hash_seeds(tmp_path, hard):
    """String hashing differs per process; nothing may depend on set or hash order."""
    import os
    import subprocess
    import sys

    code = ("import sys; from seglib.data.synthref import generate; "
            "generate(sys.argv[1], 48, seed=3, image_size=96, difficulty='hard')")
    for hash_seed in ("1", "977"):
        out = tmp_path / hash_seed
        subprocess.run([sys.executable, "-c", code, str(out)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
        for name in ("refs.json", "instances.json", "refs(synthref).p", "grefs(synthref).json"):
            assert (out / name).read_bytes() == (hard / name).read_bytes(), (hash_seed, name)


def _select(spec, anns, size):
    """Independent evaluation of a stored query program on the stored scene attributes."""
    by_id = {a["id"]: a["attributes"] for a in anns}
    cand = [i for i, a in by_id.items()
            if all(spec.get(k) is None or a[k] == spec[k] for k in ("shape", "colour", "size"))
            and all(a[PROPERTY_SETS[p][0]] in PROPERTY_SETS[p][1] for p in spec.get("properties", []))]
    if spec.get("scene_property") == "most_corners":
        most = max(N_CORNERS[a["shape"]] for a in by_id.values())
        cand = [i for i in cand if N_CORNERS[by_id[i]["shape"]] == most]
        assert sum(N_CORNERS[a["shape"]] == most for a in by_id.values()) == 1
    margin = 0.06 * size
    if spec.get("relation"):
        rel, lm = spec["relation"]["rel"], by_id[spec["relation"]["landmark_ann_id"]]["center"]
        axis = 0 if rel in ("left of", "right of") else 1
        sign = -1 if rel in ("left of", "above") else 1
        offsets = {i: sign * (by_id[i]["center"][axis] - lm[axis]) for i in cand if i != spec["relation"]["landmark_ann_id"]}
        assert all(abs(d) > margin for d in offsets.values()), "a candidate sits on the relation's boundary"
        cand = [i for i, d in offsets.items() if d > 0]
    if spec.get("extreme"):
        axis = 0 if spec["extreme"] in ("left", "right") else 1
        sign = -1 if spec["extreme"] in ("left", "top") else 1
        vals = sorted((sign * by_id[i]["center"][axis] for i in cand), reverse=True)
        assert len(vals) >= 2 and vals[0] - vals[1] >= margin
        cand = [max(cand, key=lambda i: sign * by_id[i]["center"][axis])]
    return set(cand)


@pytest.mark.parametrize("which", ["hard", "easy"])
def test_every_expression_selects_exactly_its_targets(which, request):
    d = request.getfixturevalue(which)
    inst, refs = _load(d)
    anns_by_image = {}
    for a in inst["annotations"]:
        anns_by_image.setdefault(a["image_id"], []).append(a)
    kinds = set()
    for ref in refs:
        kinds.add(ref["kind"])
        spec = ref["spec"]
        assert _select(spec, anns_by_image[ref["image_id"]], 96) == set(ref["ann_ids"]), ref
        sent = ref["sentences"][0]["sent"]
        for key in ("colour", "shape", "size"):
            if spec.get(key):
                assert spec[key] in sent, (sent, spec)
        if spec.get("relation"):
            assert sent.endswith("the " + spec["relation"]["landmark_text"])
        if ref["kind"] == "empty":
            assert ref["ann_ids"] == []
        elif ref["kind"] == "multi":
            assert len(ref["ann_ids"]) >= 2
        elif ref["kind"] == "referring":
            assert len(ref["ann_ids"]) == 1
    assert kinds == {"referring", "reasoning", "multi", "empty"}


def test_splits_disjoint_by_image_and_reasoning_held_out(hard):
    inst, refs = _load(hard)
    split_of_image = {im["id"]: im["split"] for im in inst["images"]}
    # on disk the held-out reasoning split is "reasoning" (seglib's "test_reasoning")
    assert set(split_of_image.values()) == {"train", "val", "test", "reasoning"}
    for ref in refs:
        assert ref["split"] == split_of_image[ref["image_id"]]
        assert (ref["kind"] == "reasoning") == (ref["split"] == "reasoning"), ref
        if ref["kind"] != "reasoning":
            assert not any(w in ref["sentences"][0]["sent"] for w in REASONING_WORDS), ref
    assert all(any(r["image_id"] == i for r in refs) for i, s in split_of_image.items() if s == "reasoning")
    assert {x.split for x in load_samples(hard, split="test_reasoning")} == {"test_reasoning"}


def test_reasoning_in_train_when_asked(tmp_path):
    generate(tmp_path, 40, seed=0, image_size=64, difficulty="medium", reasoning_in_train=True)
    refs = json.loads((tmp_path / "refs.json").read_text())
    assert any(r["kind"] == "reasoning" and r["split"] == "train" for r in refs)


def test_masks_non_empty_disjoint_and_consistent(hard):
    inst, _ = _load(hard)
    by_image = {}
    for a in inst["annotations"]:
        assert all(isinstance(p, list) and len(p) == 8 for p in a["segmentation"])  # COCO polygons
        m = _decode(a, 96)
        assert m.sum() == a["area"] > 0
        ys, xs = np.nonzero(m)
        assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        by_image.setdefault(a["image_id"], []).append(m.astype(int))
    for masks in by_image.values():
        assert np.sum(masks, axis=0).max() <= 1, "visible parts overlap"


def test_masks_are_exactly_the_drawn_pixels(easy):
    """Easy scenes: solid palette colours, distinct per image, never on the greyish background."""
    inst, _ = _load(easy)
    samples = {s.meta["image_id"]: s for s in load_samples(easy)}
    for a in inst["annotations"]:
        img = samples[a["image_id"]].image() if a["image_id"] in samples else None
        if img is None:
            continue
        m = _decode(a, 96)
        painted = np.all(img == np.array(RGB[a["attributes"]["colour"]]), axis=-1)
        assert np.array_equal(painted, m), a["id"]


def test_load_samples_one_per_sentence(hard):
    _, refs = _load(hard)
    samples = load_samples(hard)
    assert len(samples) == sum(len(r["sentences"]) for r in refs)
    s = samples[0]
    assert s.sample_id == f"{refs[0]['ref_id']}-0" and s.query == refs[0]["sentences"][0]["sent"]
    assert s.meta["ann_ids"] == refs[0]["ann_ids"] and s.meta["ref_id"] == refs[0]["ref_id"]
    assert s.image().shape == (96, 96, 3) and s.image().dtype == np.uint8
    assert len(s.target_masks()) == len(refs[0]["ann_ids"])
    assert {x.split for x in load_samples(hard, split="val")} == {"val"}
    empty = next(x for x in samples if x.kind == "empty")
    assert empty.target_rles == [] and not empty.union_mask().any()
    multi = next(x for x in samples if x.kind == "multi")
    assert multi.union_mask().sum() == sum(m.sum() for m in multi.target_masks())


def test_loader_errors_name_file_and_id(tmp_path, easy):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(easy, d)
    first = load_samples(d)[0]
    png = Path(first.image_path)
    png.write_bytes(png.read_bytes()[:200])  # truncated PNG: caught when the image is read
    with pytest.raises(DataError, match=png.name):
        load_samples(d)[0].image()
    png.unlink()
    with pytest.raises(DataError, match=rf"{png.name}.*ref {first.meta['ref_id']}"):
        load_samples(d)
    shutil.copyfile(easy / "images" / png.name, png)
    inst = json.loads((d / "instances.json").read_text())
    ann_id = first.meta["ann_ids"][0]
    next(a for a in inst["annotations"] if a["id"] == ann_id)["segmentation"] = {"size": [5], "counts": 3}
    (d / "instances.json").write_text(json.dumps(inst))
    with pytest.raises(DataError, match=rf"instances.json: annotation {ann_id}"):
        load_samples(d)


def test_refuses_existing_dataset(tmp_path):
    generate(tmp_path, 4, seed=0, image_size=48)
    with pytest.raises(FileExistsError):
        generate(tmp_path, 4, seed=0, image_size=48)


def test_prepare_dataset_reuses_same_settings_only(tmp_path):
    from seglib.data import prepare_dataset

    d = tmp_path / "data"
    first = prepare_dataset("synthref", d, seed=2, n_images=6, image_size=48)
    assert first["n_images"] == 6 and not first.get("reused")
    assert prepare_dataset("synthref", d, seed=2, n_images=6, image_size=48)["reused"]
    with pytest.raises(DataError, match="other settings"):
        prepare_dataset("synthref", d, seed=3, n_images=6, image_size=48)
    with pytest.raises(DataError, match="data_root"):
        prepare_dataset("refcoco", tmp_path / "real")


def test_hf_rows(tmp_path):
    from seglib.data import to_hf_dataset

    generate(tmp_path, 6, seed=0, image_size=48)
    samples = load_samples(tmp_path)[:4]
    ds = to_hf_dataset(samples)
    assert len(ds) == 4 and ds[0]["query"] == samples[0].query
    assert ds[0]["image"].size == (48, 48)
    assert np.array_equal(np.asarray(ds[0]["image"].convert("RGB")), samples[0].image())
    assert ds[0]["boxes_xyxy"] == samples[0].target_boxes()
    m = samples[0].target_masks()[0]
    ys, xs = np.nonzero(m)
    assert samples[0].target_boxes()[0] == [xs.min(), ys.min(), xs.max(), ys.max()]


def test_label_maps_and_attribute_only_forms(tmp_path):
    from seglib.data.synthref import label_maps

    generate(tmp_path, 10, seed=5, image_size=64, difficulty="medium", referring_forms={"attr": 1.0})
    inst, refs = _load(tmp_path)
    assert all("extreme" not in r["spec"] and "relation" not in r["spec"] for r in refs if r["kind"] == "referring")
    maps = label_maps(tmp_path, 1)
    anns = [a for a in inst["annotations"] if a["image_id"] == 1]
    assert sorted(np.unique(maps["instance"][maps["instance"] > 0])) == sorted(a["id"] for a in anns)
    for a in anns:
        m = _decode(a, 64)
        assert np.array_equal(maps["instance"] == a["id"], m)
        assert (maps["shape"][m] > 0).all() and (maps["colour"][m] > 0).all()
    assert ((maps["shape"] == 0) == (maps["instance"] == 0)).all()


def test_sample_dict_round_trip(easy):
    s = load_samples(easy)[0]
    again = type(s).from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s and np.array_equal(again.union_mask(), s.union_mask())
