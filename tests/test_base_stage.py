"""The base stage's generic-grounding samples and its install into the base-policy folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from seglib.data import Sample
from seglib.masks import decode_rle
from seglib.train.base_stage import (GROUNDING_KIND, base_stage_done, grounding_samples, install_base)
from seglib.train.pretrain_vision import SceneObject


def _obj(shape, x0, y0, colour="red"):
    m = np.zeros((10, 10), bool)
    m[y0:y0 + 2, x0:x0 + 2] = True
    return SceneObject(m, (x0, y0, x0 + 1, y0 + 1), colour, shape, "small")


def _sample(i, path, query="the red circle"):
    return Sample(f"train-{i}", path, query, "referring", "train", 10, 10)


def test_one_sample_per_shape_with_every_object_of_it():
    scene = {"a.png": [_obj("star", 0, 0), _obj("circle", 5, 5), _obj("star", 7, 0, "blue")],
             "b.png": [_obj("ring", 3, 3), _obj(None, 0, 0)]}
    # two study samples on a.png, one on b.png: the images count once each
    out = grounding_samples([_sample(0, "a.png"), _sample(1, "a.png"), _sample(2, "b.png")], scene)
    assert [s.query for s in out] == ["find every circle", "find every star", "find every ring"]
    assert all(s.kind == GROUNDING_KIND and s.split == "train" for s in out)
    stars = out[1]
    assert len(stars.target_rles) == 2
    union = np.logical_or(*[decode_rle(r) for r in stars.target_rles])
    assert union.sum() == 8 and union[0, 0] and union[1, 8] and not union[5, 5]
    assert len(out[0].target_rles) == 1 and decode_rle(out[0].target_rles[0])[5, 5]
    assert len({s.sample_id for s in out}) == 3


def test_image_cap_and_missing_image():
    scene = {"a.png": [_obj("star", 0, 0)], "b.png": [_obj("ring", 3, 3)]}
    assert len(grounding_samples([_sample(0, "a.png"), _sample(1, "b.png")], scene, max_images=1)) == 1
    with pytest.raises(KeyError, match="c.png.*train-7"):
        grounding_samples([_sample(7, "c.png")], scene)


def test_install_copies_weights_only(tmp_path):
    stage, base = tmp_path / "stage", tmp_path / "base"
    stage.mkdir(), base.mkdir()
    for name, text in [("config.json", "new"), ("model.safetensors", "W"), ("tokenizer.json", "stage-tok"),
                       ("task.json", "{}"), ("sft_done.json", "{}")]:
        (stage / name).write_text(text)
    (base / "tokenizer.json").write_text("base-tok")
    (base / "config.json").write_text("old")
    assert base_stage_done(base) is None
    install_base(stage, base, {"steps": 3})
    assert (base / "config.json").read_text() == "new" and (base / "model.safetensors").read_text() == "W"
    assert (base / "tokenizer.json").read_text() == "base-tok"
    assert not (base / "task.json").exists() and not (base / "sft_done.json").exists()
    assert base_stage_done(base) == {"steps": 3}
    assert json.loads((base / "base_stage.json").read_text())["steps"] == 3


def test_install_refuses_an_unfinished_stage(tmp_path):
    (tmp_path / "stage").mkdir()
    with pytest.raises(FileNotFoundError, match="stage"):
        install_base(tmp_path / "stage", tmp_path, {})
