"""Prediction runners on fake policies: schema, resuming, voting records, clicks rollouts, task files;
and the batch-size invariance of greedy decoding on the tiny model."""
import json

import numpy as np
import pytest
from PIL import Image

from seglib.data import Sample
from seglib.evaluation import evaluate_records
from seglib.inference import (
    REQUIRED_KEYS,
    PredictionFileError,
    load_task,
    predict_split,
    prediction_path,
    read_predictions,
    save_task,
)
from seglib.masks import decode_rle, encode_rle
from seglib.paradigms import get, polygon
from seglib.paradigms.base import State

H = W = 24


def make_samples(tmp_path, n=3):
    samples = []
    for i in range(n):
        img = np.full((H, W, 3), (40 * i) % 256, np.uint8)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(img).save(path)
        m = np.zeros((H, W), bool)
        m[2 + i: 12 + i, 3: 15] = True
        samples.append(Sample(sample_id=f"s{i}", image_path=str(path), query=f"square {i}", kind="referring",
                              split="val", height=H, width=W, target_rles=[encode_rle(m)]))
    return samples


class PolygonOracle:
    """Answers each query with the ground truth's polygon text; 'broken' queries get garbage."""

    def __init__(self, samples, broken=(), shifted_every=0):
        self.by_query = {s.query: s for s in samples}
        self.broken, self.shifted_every = set(broken), shifted_every
        self.calls = []

    def text(self, s, j=0):
        if s.sample_id in self.broken:
            return "no polygon here"
        m = s.union_mask()
        if self.shifted_every and j % self.shifted_every == self.shifted_every - 1:
            m = np.roll(m, 6, axis=1)  # a minority answer elsewhere
        return polygon.target_text([m], W, H)

    def __call__(self, images, prompts, n, do_sample):
        self.calls.append((len(prompts), n, do_sample))
        out = []
        for p in prompts:
            s = next(s for q, s in self.by_query.items() if f'"{q}"' in p or q in p)
            out.append([self.text(s, j) for j in range(n)])
        return out


SPEC = get("polygon", outline=True)  # outline: the oracle's traced rectangles decode onto themselves


def test_greedy_polygon_records_have_the_schema_and_score(tmp_path):
    samples = make_samples(tmp_path)
    pol = PolygonOracle(samples, broken={"s2"})
    path = predict_split(samples, pol, None, SPEC, tmp_path / "run", "sft-polygon", "greedy", batch_size=2,
                         progress=False)
    assert path == prediction_path(tmp_path / "run", "sft-polygon", "greedy")
    recs = read_predictions(path)
    assert [r["sample_id"] for r in recs] == ["s0", "s1", "s2"]
    assert all(set(REQUIRED_KEYS) <= set(r) for r in recs)
    assert [r["parsed"] for r in recs] == [True, True, False] and recs[2]["mask_rle"] is None
    assert pol.calls == [(2, 1, False), (1, 1, False)]
    e = evaluate_records(recs)
    assert e["splits"]["val"]["giou"] == pytest.approx((1 + 1 + 0) / 3, abs=0.03)  # rectangles survive polygons
    assert decode_rle(recs[0]["gt_rle"]).sum() == 10 * 12 and recs[0]["gt_boxes"] == [[3, 2, 14, 11]]


def test_resume_after_a_torn_line_gives_the_same_file(tmp_path):
    samples = make_samples(tmp_path)
    full = predict_split(samples, PolygonOracle(samples), None, SPEC, tmp_path / "a", "sft-polygon", progress=False)
    ref = full.read_text().splitlines()
    part = prediction_path(tmp_path / "b", "sft-polygon", "greedy")
    part.parent.mkdir(parents=True)
    part.write_text(ref[0] + "\n" + ref[1][: len(ref[1]) // 2])  # one whole line and a torn one
    pol = PolygonOracle(samples)
    predict_split(samples, pol, None, SPEC, tmp_path / "b", "sft-polygon", progress=False)
    assert part.read_text().splitlines() == ref
    assert sum(c[0] for c in pol.calls) == 2  # only the two missing samples were generated


def test_read_predictions_rejects_a_bad_middle_line_and_foreign_records(tmp_path):
    samples = make_samples(tmp_path)
    path = predict_split(samples, PolygonOracle(samples), None, SPEC, tmp_path, "sft-polygon", progress=False)
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{oops\n" + lines[2] + "\n")
    with pytest.raises(PredictionFileError, match="line 2"):
        read_predictions(path)
    path.write_text(lines[0] + "\n")
    other = prediction_path(tmp_path, "grpo-polygon", "greedy")
    other.write_text(lines[0] + "\n")
    with pytest.raises(PredictionFileError, match="sft-polygon-greedy"):
        predict_split(samples, PolygonOracle(samples), None, SPEC, tmp_path, "grpo-polygon", progress=False)


def test_vote_record_stores_samples_and_clusters(tmp_path):
    samples = make_samples(tmp_path, n=1)
    pol = PolygonOracle(samples, shifted_every=3)  # samples 0, 1 right; 2 shifted; 3, 4 right
    path = predict_split(samples, pol, None, SPEC, tmp_path, "sft-polygon", "vote", n_samples=5, progress=False)
    (rec,) = read_predictions(path)
    assert len(rec["samples"]) == 5 and rec["vote"]["n"] == 5 and rec["vote"]["k_hat"] == 1
    clusters = rec["vote"]["clusters"]
    assert [c["votes"] for c in clusters] == [4, 1]
    assert [c["chosen"] for c in clusters] == [True, False]
    assert clusters[1]["members"] == [[2, 0]]
    gt = decode_rle(rec["gt_rle"])
    pred = decode_rle(rec["mask_rle"])
    assert (pred & gt).sum() / (pred | gt).sum() > 0.95
    e = evaluate_records([rec])
    assert e["vote_curve"]["val"]["n"] == [1, 2, 4, 5]


# ----------------------------------------------------------------------------- clicks on fakes


class BoxSegmenter:
    """Fake segmenter: a 7×7 square around each positive click, minus squares at negative clicks."""

    def __init__(self):
        self.set_image_calls = 0

    def set_image(self, image):
        self.set_image_calls += 1

    def predict(self, points_xy=(), labels=(), box_xyxy=None, mask_logits=None):
        from seglib.segmenters import Prompt

        return self.predict_many([Prompt(list(points_xy), list(labels), box_xyxy, mask_logits)])[0]

    def predict_many(self, prompts):
        from seglib.segmenters import Prediction

        out = []
        for p in prompts:
            m = np.zeros((H, W), bool)
            for (x, y), lab in zip(p.points_xy, p.labels):
                sq = np.zeros((H, W), bool)
                sq[max(int(y) - 3, 0): int(y) + 4, max(int(x) - 3, 0): int(x) + 4] = True
                m = m | sq if lab else m & ~sq
            out.append(Prediction(m, 1.0, np.zeros((H, W), np.float32)))
        return out


class ClickOracle:
    """PRM-format clicks policy: writes the true IoU of the state (read from the green overlay) and clicks
    F_sim's next click."""

    def __init__(self, samples):
        self.by_query = {s.query: s for s in samples}

    def __call__(self, images, prompts, n, do_sample):
        from seglib.clicker import next_click
        from seglib.frames import to_grid

        out = []
        for img, p in zip(images, prompts):
            s = next(s for q, s in self.by_query.items() if q in p)
            base = s.image()
            mask = np.any(img != base, axis=2)
            gt = s.union_mask()
            iou = (mask & gt).sum() / max((mask | gt).sum(), 1)
            c = next_click(gt, mask)
            gx, gy = to_grid(c.x, c.y, W, H)
            kind = "Positive" if c.positive else "Negative"
            out.append([f"Current IoU: {100 * iou:.1f}, {kind} point: ({gx}, {gy})"] * n)
        return out


def test_clicks_greedy_and_prm_search_records(tmp_path):
    samples = make_samples(tmp_path, n=2)
    for s in samples:  # images must differ from the overlay everywhere the mask is
        s.image_path = str(tmp_path / f"{s.sample_id}_grey.png")
        Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(s.image_path)
    spec = get("clicks", prm=True)
    pol, seg = ClickOracle(samples), BoxSegmenter()
    g = read_predictions(predict_split(samples, pol, seg, spec, tmp_path, "sft-clicks", "greedy", max_clicks=3,
                                       progress=False))
    assert all(len(r["steps"]) == 3 and r["parsed"] for r in g)
    assert all(set(REQUIRED_KEYS) <= set(r) for r in g)
    ious = [[st["iou"] for st in r["steps"]] for r in g]
    assert all(np.diff(i).min() >= -1e-9 for i in ious)  # F_sim clicks never hurt here
    k = read_predictions(predict_split(samples, pol, seg, spec, tmp_path, "sft-clicks", "prm_search", search_k=2,
                                       search_t=3, progress=False))
    assert k[0]["strategy"] == "prm_search_k2" and k[0]["search"]["k"] == 2
    assert all(len(st["candidates"]) == 2 for r in k for st in r["steps"])
    # the predicted IoU is the true IoU here, so calibration is perfect
    e = evaluate_records(k, "sft-clicks-prm_search_k2")
    assert e["search"]["calibration"]["mae"] == pytest.approx(0, abs=1e-3)
    assert e["clicks"]["val"]["n"] == 2


def test_load_task_reads_task_file_and_folder_name(tmp_path):
    d = tmp_path / "sft-boxpoints"
    d.mkdir()
    assert load_task(d).name == "boxpoints"
    (d / "task.json").write_text(json.dumps({"paradigm": "boxpoints", "template": "compact", "style": "list"}))
    p = load_task(d, resize=None, prm=True)  # None overrides are ignored, options the paradigm lacks dropped
    assert (p.options.prompt_template, p.options.style, p.options.resize) == ("compact", "list", None)
    with pytest.raises(ValueError, match="paradigm"):
        load_task(tmp_path / "oddname")


def test_load_task_reads_legacy_files_and_aliases(tmp_path):
    d = tmp_path / "grpo-clicks-rest"
    d.mkdir()
    (d / "grpo_done.json").write_text(json.dumps({"task": {"paradigm": "clicks", "template": "compact", "prm": True,
                                                           "style": None, "resize": None}, "steps": 3}))
    p = load_task(d)
    assert p.name == "clicks" and (p.options.prompt_template, p.options.prm) == ("compact", True)
    assert "prm_search" in p.strategies()
    b = tmp_path / "sft-boxpoints"
    b.mkdir()
    (b / "seglib_task.json").write_text(json.dumps({"boxpoints_style": "segzero", "segzero_resize": 840}))
    assert (load_task(b).options.style, load_task(b).options.resize) == ("segzero", 840)


def test_save_task_round_trips_and_keeps_the_flat_keys(tmp_path):
    p = get("clicks", prm=True, prompt_template="compact", hold=True)
    path = save_task(tmp_path, p)
    data = json.loads(path.read_text())
    assert list(data)[:2] == ["paradigm", "options"] and data["options"]["hold"] is True
    assert (data["prompt_template"], data["prm"], data["style"], data["resize_image"]) == ("compact", True, None, True)
    assert load_task(tmp_path).task() == p.task()


def test_a_strategy_the_paradigm_lacks_is_refused(tmp_path):
    samples = make_samples(tmp_path, n=1)
    with pytest.raises(ValueError, match="does not apply"):
        predict_split(samples, ClickOracle(samples), BoxSegmenter(), get("clicks", prm=True), tmp_path, "sft-clicks",
                      "vote", progress=False)
    with pytest.raises(ValueError, match="does not apply"):
        predict_split(samples, PolygonOracle(samples), None, SPEC, tmp_path, "sft-polygon", "prm_search",
                      progress=False)


# ----------------------------------------------------------------------------- the tiny model


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    from seglib.models import build_tiny_policy, load_policy

    out = tmp_path_factory.mktemp("tiny")
    texts = ["Find the red square.", "Positive point: (412, 377)", "[[0.1,0.2],[0.3,0.4],[0.5,0.6]]"] * 20
    small = {"image_size": 56, "vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 64,
             "text_layers": 2, "text_heads": 2, "vocab_size": 300}
    build_tiny_policy(small, texts, out)
    return load_policy(out)


def test_batch_size_never_changes_greedy_outputs(tiny_policy, tmp_path):
    from seglib.inference import Policy

    model, processor = tiny_policy
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (H + 8 * (i % 3), W, 3), dtype=np.uint8) for i in range(8)]
    prompts = ["Find the red square." + " square" * (i % 4) for i in range(8)]  # different lengths: padding
    one = Policy(model, processor, max_new_tokens=10, batch_size=1)(images, prompts)
    eight = Policy(model, processor, max_new_tokens=10, batch_size=8)(images, prompts)
    assert one == eight
    assert all(len(t) == 1 for t in one) and any(t[0] for t in one)  # something was generated


def test_prediction_files_do_not_depend_on_batch_size(tiny_policy, tmp_path):
    from seglib.inference import Policy

    model, processor = tiny_policy
    samples = make_samples(tmp_path, n=8)
    for i, s in enumerate(samples):  # different queries → different prompt lengths → padding in a batch
        s.query = "square" + " red" * (i % 4)
    files = []
    for bs in (1, 8):
        pol = Policy(model, processor, max_new_tokens=10, batch_size=bs)
        files.append(predict_split(samples, pol, None, SPEC, tmp_path / f"bs{bs}", "sft-polygon", "greedy",
                                   batch_size=bs, progress=False).read_text())
    assert files[0] == files[1] and files[0].count("\n") == 8


def test_resize_image_false_keeps_the_image_and_the_coarse_frame(tmp_path):
    image = np.zeros((112, 112, 3), np.uint8)
    state = State(make_samples(tmp_path, n=1)[0], image)
    assert get("boxpoints", resize=56).observe(state)[0].shape == (56, 56, 3)  # Seg-Zero: resized
    assert get("boxpoints", resize=28, resize_image=False).observe(state)[0].shape == (112, 112, 3)
    assert get("polygon").observe(state)[0].shape == (112, 112, 3)
    d = tmp_path / "sft-boxpoints"
    d.mkdir()
    save_task(d, get("boxpoints", prompt_template="compact", resize=28, resize_image=False))
    p = load_task(d)
    assert (p.options.resize, p.options.resize_image, p.options.prompt_template) == (28, False, "compact")


# ----------------------------------------------------------------------------- explicit generation settings
def _tiny(tmp_path):
    from seglib.models import build_tiny_policy, load_policy

    tiny = {"vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32, "text_layers": 1,
            "text_heads": 2, "vocab_size": 300, "image_size": 56, "patch_size": 14}
    path = build_tiny_policy(tiny, ["the red circle", "Positive point: (412, 377)", "square 1"] * 5, tmp_path / "p")
    return load_policy(path)


def test_generation_ignores_the_checkpoints_generation_config(tmp_path):
    from seglib.models import generate

    model, processor = _tiny(tmp_path)
    ims = [np.full((30, 40, 3), 60 * i, np.uint8) for i in range(3)]
    prompts = ["the red circle", "x", "square 1"]
    clean = generate(model, processor, ims, prompts, max_new_tokens=12)
    # a checkpoint file may carry sampling defaults (real Qwen2.5-VL: repetition_penalty 1.05, top_k 1, ...)
    model.generation_config.repetition_penalty = 50.0
    model.generation_config.no_repeat_ngram_size = 1
    assert generate(model, processor, ims, prompts, max_new_tokens=12) == clean


def test_eos_ids_are_the_union_of_tokenizer_and_checkpoint(tmp_path):
    from seglib.models import eos_token_ids, generate

    model, processor = _tiny(tmp_path)
    tok = processor.tokenizer
    im_end, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config.eos_token_id = [im_end, pad]  # Qwen: [151645 <|im_end|>, 151643 <|endoftext|>]
    assert eos_token_ids(model, tok) == [im_end, pad]
    seen = []
    original = model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs["generation_config"])
        return original(*args, **kwargs)

    model.generate = spy
    generate(model, processor, [np.zeros((30, 40, 3), np.uint8)], ["x"], max_new_tokens=3)
    assert seen[0].eos_token_id == [im_end, pad] and seen[0].repetition_penalty == 1.0


def test_prediction_records_carry_the_generation_settings(tmp_path):
    from seglib.inference import Policy

    model, processor = _tiny(tmp_path)
    samples = make_samples(tmp_path, 2)
    policy = Policy(model, processor, max_new_tokens=5, temperature=0.7, top_p=0.9, top_k=20,
                    repetition_penalty=1.0)
    spec = get("polygon")
    greedy = read_predictions(predict_split(samples, policy, None, spec, tmp_path / "run", "ck", "greedy",
                                            progress=False))
    sampled = read_predictions(predict_split(samples, policy, None, spec, tmp_path / "run", "ck", "sample",
                                             n_samples=2, progress=False))
    g, s = greedy[0]["generation"], sampled[0]["generation"]
    assert (g["do_sample"], g["max_new_tokens"], g["repetition_penalty"], g["top_k"]) == (False, 5, 1.0, 0)
    assert (s["do_sample"], s["temperature"], s["top_p"], s["top_k"]) == (True, 0.7, 0.9, 20)
    assert g["eos_token_id"] == [processor.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    assert all("generation" in r for r in greedy + sampled)
    evaluate_records(greedy, "ck")  # evaluation reads the records as before


def test_greedy_generation_config_sets_no_sampling_knobs():
    """Greedy decoding leaves temperature/top_p/top_k unset, so transformers has nothing to call ignored."""
    import warnings

    from seglib.models import _generation_config

    settings = {"do_sample": False, "max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0, "top_k": 0,
                "repetition_penalty": 1.0, "eos_token_id": [2], "pad_token_id": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = _generation_config(settings, 1)
    assert (config.temperature, config.top_p, config.top_k) == (None, None, None)
    assert config.do_sample is False and config.repetition_penalty == 1.0
    sampled = _generation_config({**settings, "do_sample": True, "temperature": 0.7, "top_k": 5}, 4)
    assert (sampled.temperature, sampled.top_k, sampled.num_return_sequences) == (0.7, 5, 4)


def test_scaling_strategies_only_on_each_paradigms_latest_stage():
    from pathlib import Path

    from seglib import paradigms
    from seglib.inference import strategies_by_checkpoint

    names = ["sft-boxpoints", "grpo-boxpoints", "grpo-boxpoints-rlonly", "sft-clicks", "star-clicks", "sft-polygon"]
    tasks = {n: paradigms.get(n.split("-")[1]) for n in names}
    wanted = ["greedy", "vote", "prm_search"]
    plan = strategies_by_checkpoint([Path(n) for n in names], tasks, wanted, "latest")
    assert plan == {"sft-boxpoints": ["greedy"], "grpo-boxpoints": wanted, "grpo-boxpoints-rlonly": ["greedy"],
                    "sft-clicks": ["greedy"], "star-clicks": wanted, "sft-polygon": wanted}
    assert strategies_by_checkpoint([Path(n) for n in names], tasks, wanted, "all") == {n: wanted for n in names}
    with pytest.raises(ValueError, match="scaling_on"):
        strategies_by_checkpoint([], {}, wanted, "newest")


def test_scaling_paradigms_limit_the_sampled_strategies():
    from pathlib import Path

    from seglib import paradigms
    from seglib.inference import strategies_by_checkpoint

    names = ["sft-boxpoints", "grpo-boxpoints", "sft-clicks", "star-clicks", "sft-polygon", "grpo-polygon"]
    tasks = {n: paradigms.get(n.split("-")[1]) for n in names}
    wanted = ["greedy", "vote", "prm_search"]
    plan = strategies_by_checkpoint([Path(n) for n in names], tasks, wanted, "latest", ["boxpoints", "clicks"])
    assert plan == {"sft-boxpoints": ["greedy"], "grpo-boxpoints": wanted, "sft-clicks": ["greedy"],
                    "star-clicks": wanted, "sft-polygon": ["greedy"], "grpo-polygon": ["greedy"]}
    plan = strategies_by_checkpoint([Path(n) for n in names], tasks, wanted, "all", ["polygon"])
    assert plan == {n: (wanted if "polygon" in n else ["greedy"]) for n in names}
    with pytest.raises(ValueError, match="'polygons'"):
        strategies_by_checkpoint([Path(n) for n in names], tasks, wanted, "latest", ["polygons"])


def test_prm_search_runs_on_its_own_samples(monkeypatch, tmp_path):
    """``search_samples`` reaches prm_search (every K) and only it; greedy and vote keep ``samples``."""
    from pathlib import Path

    from seglib.inference import runner

    class Every:  # a paradigm that has every strategy
        def strategies(self):
            return ("greedy", "vote", "prm_search")

    calls = []
    monkeypatch.setattr(runner, "load_checkpoint_policy", lambda *a, **k: "policy")
    monkeypatch.setattr(runner, "predict_split", lambda samples, *a, **k: calls.append(
        (a[5], k["search_k"], list(samples))) or Path(f"{a[5]}-{k['search_k']}"))
    runner.run_checkpoint(tmp_path / "star-clicks", ["a", "b", "c"], tmp_path, ["greedy", "vote", "prm_search"],
                          search_k=[1, 3], paradigm=Every(), search_samples=["a"])
    assert calls == [("greedy", 1, ["a", "b", "c"]), ("vote", 1, ["a", "b", "c"]),
                     ("prm_search", 1, ["a"]), ("prm_search", 3, ["a"])]
