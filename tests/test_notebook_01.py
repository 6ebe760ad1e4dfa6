"""Notebook 01 on smoke parameters: the dataset folder, its splits and the figures it writes."""
import json

from seglib.data import load_samples


def test_notebook_01_writes_dataset_and_figures(smoke_run):
    run_dir = smoke_run.require("01")
    data = run_dir / "data"
    inst = json.loads((data / "instances.json").read_text())
    refs = json.loads((data / "refs.json").read_text())
    split_of_image = {im["id"]: im["split"] for im in inst["images"]}
    images_per_split = {}
    for ref in refs:
        images_per_split.setdefault(ref["split"], set()).add(ref["image_id"])
        assert ref["split"] == split_of_image[ref["image_id"]]
    splits = list(images_per_split)
    assert {"train", "val", "test", "reasoning"} <= set(splits)  # "reasoning" on disk = seglib's test_reasoning
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not images_per_split[a] & images_per_split[b], (a, b)
    assert all(r["kind"] == "reasoning" for r in refs if r["split"] == "reasoning")
    assert not any(r["kind"] == "reasoning" for r in refs if r["split"] != "reasoning")
    assert len(list((data / "images").glob("*.png"))) == len(inst["images"])
    samples = load_samples(data)
    assert len(samples) == sum(len(r["sentences"]) for r in refs)
    stats = json.loads((data / "statistics.json").read_text())
    assert stats["n_samples"] == len(samples)
    for name in ("01_gallery.png", "01_statistics.png"):
        png = run_dir / "figures" / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (run_dir / "01_data_prep.ipynb").is_file()
