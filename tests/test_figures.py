"""Every figure function, drawn from small hand-made inputs, checked for what a reader relies on:

* legend entries can be told apart (pairwise different colour / line style / marker; run legends: colours);
* every axes that plots data names both of its axes;
* drawing raises no warning (an empty legend, for one);
* the markdown tables the evaluation writes hold no raw ``<``, ``>`` or ``&`` (a notebook renders them as HTML).
"""
import json
import re
import shutil
import warnings
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from seglib import evaluation, viz  # noqa: E402
from seglib.inference import SCHEMA_VERSION, append_record, prediction_path  # noqa: E402
from seglib.masks import encode_rle  # noqa: E402

H, W = 24, 32


# --------------------------------------------------------------------------- checks


def _signature(handle) -> tuple:
    """(colour, line style, marker) of a legend handle, colours as rounded RGBA."""
    def rgba(c):
        return tuple(round(float(v), 3) for v in to_rgba(c))

    if isinstance(handle, Line2D):
        return rgba(handle.get_color()), handle.get_linestyle(), handle.get_marker()
    if isinstance(handle, Patch):
        return rgba(handle.get_facecolor()), "patch", None
    if isinstance(handle, PathCollection):
        return rgba(handle.get_facecolor()[0]), "scatter", None
    raise AssertionError(f"unexpected legend handle {type(handle).__name__}")


def legends(fig: Figure) -> list:
    found = list(fig.legends)
    for ax in fig.axes:
        found += [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
    return found


def legend_colours(legend) -> list[tuple]:
    return [_signature(h)[0] for h in legend.legend_handles]


def check_figure(fig: Figure) -> None:
    """Draws without a warning; legends distinguishable; axes with data labelled on x and y."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fig.canvas.draw()
    for leg in legends(fig):
        sigs = [_signature(h) for h in leg.legend_handles]
        labels = [t.get_text() for t in leg.get_texts()]
        assert len(set(sigs)) == len(sigs), f"legend entries look alike: {list(zip(labels, sigs))}"
    for ax in fig.axes:
        if ax.images or not ax.axison:
            continue  # image panels carry titles, not axes
        has_data = bool(ax.lines or ax.collections or ax.patches)
        if has_data:
            assert ax.get_xlabel(), f"axes {ax.get_title()!r} has no x label"
            assert ax.get_ylabel(), f"axes {ax.get_title()!r} has no y label"


ENTITY = re.compile(r"&(amp|lt|gt|quot|#\d+);")


def html_unsafe(text: str) -> list[str]:
    """Raw <, > or & (an entity such as &lt; is safe) in markdown text."""
    return re.findall(r"[<>&]", ENTITY.sub("", text))


# --------------------------------------------------------------------------- hand-made inputs


def box_mask(x0, y0, x1, y1):
    m = np.zeros((H, W), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


@dataclass
class FakeSample:
    sample_id: str
    image_path: str
    query: str
    kind: str = "referring"
    mask: np.ndarray = field(default_factory=lambda: box_mask(4, 4, 12, 12))

    def image(self):
        img = np.full((H, W, 3), 250, np.uint8)  # a white picture: the ground-truth line must still show
        return img

    def union_mask(self):
        return self.mask

    def target_masks(self):
        return [self.mask]


def eval_row(sid, iou, mask):
    return {"sample_id": sid, "kind": "referring", "iou": iou, "parsed": True, "text": "", "mask": mask,
            "boxes": [[4, 4, 12, 12]]}


def pred_record(sid, gt, pred, checkpoint, strategy="greedy", paradigm="boxpoints", split="val", **extra):
    rec = {"schema": SCHEMA_VERSION, "sample_id": sid, "split": split, "kind": "referring", "paradigm": paradigm,
           "checkpoint": checkpoint, "strategy": strategy, "height": H, "width": W, "gt_rle": encode_rle(gt),
           "gt_boxes": [[4, 4, 12, 12]], "texts": ["..."], "answers": [{}], "parsed": pred is not None,
           "mask_rle": None if pred is None else encode_rle(pred),
           "object_rles": [] if pred is None else [encode_rle(pred)], "boxes": [[4, 4, 12, 12]]}
    rec.update(extra)
    return rec


def vote_record(sid, gt, checkpoint):
    a, b = box_mask(4, 4, 12, 12), box_mask(20, 10, 28, 20)
    samples = [{"parsed": True, "object_rles": [encode_rle(a)], "scores": [1.0]},
               {"parsed": True, "object_rles": [encode_rle(a)], "scores": [1.0]},
               {"parsed": True, "object_rles": [encode_rle(b)], "scores": [1.0]}]
    vote = {"n": 3, "empty": False, "clusters": [{"rle": encode_rle(a), "votes": 2, "chosen": True},
                                                 {"rle": encode_rle(b), "votes": 1, "chosen": False}]}
    return pred_record(sid, gt, a, checkpoint, strategy="vote", samples=samples, vote=vote)


# --------------------------------------------------------------------------- colours and styles


def test_distinct_colours_and_styles_never_repeat():
    for n in (1, 10, 11, 20, 21, 40):
        colours = viz.distinct_colors(n)
        assert len(colours) == n and len(set(colours)) == n
    styles = viz.line_styles(11)
    assert len({(s["color"], s["marker"], s["linestyle"]) for s in styles}) == 11


# --------------------------------------------------------------------------- notebook 04


def test_training_curves_give_each_run_one_colour_on_every_panel():
    # each run logs its own reward component, so each reward panel holds one run only
    logs = {
        f"grpo-{p}": [{"step": s, "reward": 0.1 * s, f"rewards/{p}_iou/mean": 0.2 * s, "kl": 0.01,
                       "completions/mean_length": 30 + s, "step_time": 2.0, "reward_time_s": 0.5} for s in (1, 2)]
        for p in ("boxpoints", "polygon", "clicks")
    }
    fig = viz.plot_training(logs)
    check_figure(fig)
    (leg,) = fig.legends
    colours = dict(zip([t.get_text() for t in leg.get_texts()], legend_colours(leg)))
    assert len(set(colours.values())) == 3  # before: all three the first colour (blue)
    for ax in fig.axes:
        for line in ax.lines:
            assert _signature(line)[0] == colours[line.get_label()]  # same colour as its legend entry
    plt.close(fig)


def test_training_curves_with_a_single_step_per_run():
    logs = {"a": [{"step": 1, "reward": 0.5}], "b": []}
    fig = viz.plot_training(logs)
    check_figure(fig)
    assert all(len(line.get_xdata()) == 1 and line.get_marker() not in (None, "None", "") for ax in fig.axes
               for line in ax.lines)
    plt.close(fig)


def test_grpo_before_after_gallery_outlines_the_truth_on_distinct_images():
    samples = [FakeSample(f"s{i}", f"img{i // 2}.png", f"the object number {i}") for i in range(6)]
    recs = {name: [pred_record(s.sample_id, s.mask, box_mask(4, 4, 4 + 2 * k + i, 12), name) for i, s in
                   enumerate(samples)] for k, name in enumerate(("sft-boxpoints", "grpo-boxpoints"))}
    fig = viz.before_after_gallery(recs, samples, n=3)
    check_figure(fig)
    titles = [ax.get_title() for ax in fig.axes]
    gt_titles = [t for t in titles if t.startswith("GT")]
    # three rows from three different images (two samples per image above)
    assert len(gt_titles) == 3
    assert len({int(t.split("number ")[1]) // 2 for t in gt_titles}) == 3
    for ax in fig.axes:
        if ax.get_title().startswith(("sft", "grpo")):
            assert len(ax.collections) >= 2  # dark and light ground-truth lines
    plt.close(fig)


# --------------------------------------------------------------------------- notebook 02


def test_iou_vs_clicks_with_eleven_groups_has_eleven_colours():
    groups = [f"shape{g}" for g in range(11) for _ in range(3)]
    rng = np.random.default_rng(0)
    curves = np.sort(rng.uniform(0, 1, (33, 6)), axis=1)
    fig = viz.plot_iou_vs_clicks_by_group(curves, groups)
    check_figure(fig)
    (leg,) = legends(fig)
    assert len(leg.legend_handles) == 11
    assert len(set(legend_colours(leg))) == 11  # before: the 11th group shared the 1st group's blue
    ax = fig.axes[0]
    assert leg.get_window_extent().x0 >= ax.get_window_extent().x1  # outside the data
    plt.close(fig)


def test_stop_reasons_name_split_and_start_in_words():
    stops = pd.DataFrame([{"split": sp, "start": st, "stop": r} for sp in ("train", "val") for st in ("empty", "box")
                          for r in ("tau_stop", "tau_stop", "no_gain", "max_clicks")])
    counts = stops.groupby(["split", "start"])["stop"].value_counts().unstack(fill_value=0)
    fig = viz.plot_stop_reasons(counts)
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "split and starting state"  # before: pandas' raw "split,start"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["train\nbox start", "train\nempty start", "val\nbox start", "val\nempty start"]
    plt.close(fig)


# --------------------------------------------------------------------------- notebook 03


def test_sft_curves_without_val_giou_say_no_data_and_do_not_warn():
    results = {"boxpoints": {"log_history": [{"step": 1, "loss": 2.0}, {"step": 1, "eval_loss": 2.5}]},
               "polygon": {"log_history": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]}}
    fig = viz.plot_sft_curves(results)
    check_figure(fig)  # before: "No artists with labels found to put in legend" on the gIoU panel
    loss_ax, giou_ax = fig.axes[:2]
    assert not giou_ax.lines and any("no data" in t.get_text() for t in giou_ax.texts)
    one_point = [line for line in loss_ax.lines if len(line.get_xdata()) == 1]
    assert one_point and all(line.get_marker() not in (None, "None", "") for line in one_point)
    plt.close(fig)
    fig = viz.plot_sft_curves({"clicks": {"log_history": [{"step": 2, "val_giou": 0.4}]}})
    check_figure(fig)
    assert len(fig.axes[1].lines) == 1 and fig.axes[1].lines[0].get_marker() == "o"
    plt.close(fig)


def test_spread_samples_takes_one_per_image_first():
    # 3 images: img0 holds s0..s3, img1 holds s4, s5, img2 holds s6, s7
    samples = [FakeSample(f"s{i}", f"img{0 if i < 4 else 1 if i < 6 else 2}.png", "q") for i in range(8)]
    picked = viz.spread_samples(samples, 3, seed=0)
    assert sorted(s.image_path for s in picked) == ["img0.png", "img1.png", "img2.png"]
    more = viz.spread_samples(samples, 5, seed=0)
    assert len({s.sample_id for s in more}) == 5 and more[:3] == picked
    assert viz.spread_samples(samples, 3, seed=0) == picked  # seeded


def test_sft_before_after_shows_query_iou_and_truth_on_white():
    samples = [FakeSample("a", "a.png", "the white square"), FakeSample("b", "b.png", "the left bar")]
    before = {"boxpoints": [eval_row("a", 0.0, None), eval_row("b", 0.1, box_mask(0, 0, 3, 3))]}
    after = {"boxpoints": [eval_row("b", 0.9, box_mask(4, 4, 12, 11)), eval_row("a", 0.75, box_mask(4, 4, 12, 9))]}
    fig = viz.before_after_figure(samples, before, after)
    check_figure(fig)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["boxpoints before: IoU 0.00\n[referring] the white square",
                      "boxpoints before: IoU 0.10\n[referring] the left bar",
                      "boxpoints after: IoU 0.75\n[referring] the white square",  # matched by id, not position
                      "boxpoints after: IoU 0.90\n[referring] the left bar"]
    for ax in fig.axes:
        colours = [tuple(c.get_edgecolor()[0][:3]) for c in ax.collections if len(c.get_edgecolor())]
        assert (0.0, 0.0, 0.0) in colours and (1.0, 1.0, 1.0) in colours  # black under white
    plt.close(fig)


# --------------------------------------------------------------------------- notebook 05


def test_star_figures():
    stats = [{"round": r, "share_replaced": 0.3, "share_unparsable": 0.1, "iou_curve_policy": [0, 0.4, 0.5],
              "iou_curve_refined": [0, 0.5, 0.7]} for r in (1, 2, 3, 4, 5, 6)]
    fig = viz.plot_rounds(stats)
    check_figure(fig)
    plt.close(fig)
    curves = {f"S_{i}": [0, 0.1 * i, 0.2 * i] for i in range(12)}
    fig = viz.plot_iou_vs_clicks(curves)
    check_figure(fig)
    assert len(set(legend_colours(legends(fig)[0]))) == 12
    plt.close(fig)
    from seglib.train import star  # the rollout records StaR+ writes

    sample = FakeSample("a", "a.png", "the square")
    empty = encode_rle(np.zeros((H, W), bool))
    steps = [star.StarStep(1, "(5,5)", [5, 5, True], 0.0, 0.4, [5, 5, True], False, 0.4, empty),
             star.StarStep(2, "bad", None, 0.4, None, [8, 8, True], True, 0.6, encode_rle(box_mask(4, 4, 8, 8)))]
    fig = viz.plot_refined_example(star.StarRollout("a", steps, [0, 0.4, 0.6]), sample)
    check_figure(fig)
    plt.close(fig)


# --------------------------------------------------------------------------- notebooks 06 and 07


def write_run(tmp_path, files):
    run = tmp_path / "run"
    for recs in files:
        path = prediction_path(run, recs[0]["checkpoint"], recs[0]["strategy"])
        path.parent.mkdir(parents=True, exist_ok=True)
        for r in recs:
            append_record(path, r)
    return run


def capture_figures(monkeypatch) -> dict:
    """{file name: figure} of every figure plot_figures saves (it closes them, but the objects stay)."""
    saved = {}
    original = Figure.savefig

    def savefig(fig, fname, *args, **kwargs):
        saved[getattr(fname, "name", str(fname)).rsplit("/", 1)[-1]] = fig
        return original(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def clicks_records(checkpoint, strategy="greedy", k=None):
    gt = box_mask(4, 4, 12, 12)
    recs = []
    for i in range(2):
        steps = [{"mask_rle": encode_rle(box_mask(4, 4, 6 + 2 * t + i, 12)), "pred_iou": 0.2 * t + 0.1,
                  "iou": 0.2 * t} for t in range(3)]
        extra = {"steps": steps, "paradigm": "clicks"}
        if k:
            extra.update(search={"k": k, "t": 3}, best_step=2)
        recs.append(pred_record(f"c{i}", gt, box_mask(4, 4, 10, 12), checkpoint, strategy, **extra))
    return recs


def test_evaluation_figures_and_tables(tmp_path, monkeypatch):
    gt = box_mask(4, 4, 12, 12)
    files = [[vote_record(f"v{i}", gt, ckpt) for i in range(2)]
             for ckpt in ("sft-boxpoints", "grpo-boxpoints", "grpo-boxpoints-rlonly", "star-boxpoints",
                          "sft-boxpoints-b", "grpo-boxpoints-b", "sft-boxpoints-c", "grpo-boxpoints-c")]
    files.append([pred_record(f"v{i}", gt, box_mask(4, 4, 10, 12), "sft-boxpoints") for i in range(2)])
    files += [clicks_records("sft-clicks"), clicks_records("sft-clicks", "prm_search_k1", 1),
              clicks_records("sft-clicks", "prm_search_k2", 2)]
    run = write_run(tmp_path, files)
    saved = capture_figures(monkeypatch)
    evaluation.evaluate_run(run)
    assert {"07_giou_bars.png", "07_iou_vs_n.png", "07_iou_vs_t.png", "07_iou_vs_clicks.png",
            "07_calibration.png"} <= set(saved)
    for name, fig in saved.items():
        check_figure(fig)
    fig = saved["07_iou_vs_n.png"]
    ax = fig.axes[0]
    runs, metric = sorted(legends(fig), key=lambda leg: -len(leg.legend_handles))
    assert len(runs.legend_handles) == 8 and len(set(legend_colours(runs))) == 8  # one colour per file
    assert [t.get_text() for t in metric.get_texts()] == ["gIoU", "cIoU"]
    for leg in (runs, metric):  # outside the data: before, a 16-entry legend covered the curves
        assert leg.get_window_extent().x0 >= ax.get_window_extent().x1
    for md in sorted((run / "tables").glob("*.md")):
        assert html_unsafe(md.read_text()) == [], md.name
    claims = (run / "tables" / "claims.md").read_text()
    assert "K &gt; 1" in claims  # the claim keeps its words, escaped
    for c in json.loads((run / "metrics.json").read_text())["claims"]:
        assert "<" not in c["measured"]  # before: "prm_search_k<K > 1>" rendered as "prm_search_k 1>"


def test_md_cell_by_hand():
    # & first, so the entities themselves are not escaped again; | would end the cell
    assert evaluation.md_cell("prm_search_k<K > 1> & a|b") == "prm_search_k&lt;K &gt; 1&gt; &amp; a\\|b"
    assert evaluation.md_cell("two\nlines") == "two lines"
    assert html_unsafe(evaluation.md_cell("<b>&")) == []


def test_vote_gallery_names_checkpoint_and_query_and_outlines_truth():
    gt = box_mask(4, 4, 12, 12)
    recs = [vote_record(f"id-{i}", gt, "grpo-boxpoints") for i in range(3)]
    images = {r["sample_id"]: np.full((H, W, 3), 255, np.uint8) for r in recs}  # white image, white object
    queries = {r["sample_id"]: f"the white square number {i}" for i, r in enumerate(recs)}
    fig = viz.plot_vote_gallery(recs, images, n=3, queries=queries)
    check_figure(fig)
    assert "grpo-boxpoints (vote)" in fig._suptitle.get_text()
    for ax in fig.axes:
        assert "the white square number" in ax.get_title() and "id-" not in ax.get_title()
        colours = [tuple(c.get_edgecolor()[0][:3]) for c in ax.collections if len(c.get_edgecolor())]
        assert (0.0, 0.0, 0.0) in colours and (1.0, 1.0, 1.0) in colours
    plt.close(fig)


def test_search_strip_renders():
    rec = clicks_records("sft-clicks", "prm_search_k2", 2)[0]
    for s in rec["steps"]:
        s["candidates"] = [dict(s, click=[5, 5, True]), dict(s, click=[6, 6, False], pred_iou=0.0)]
        s["chosen"] = 0
    fig = viz.plot_search_strip(dict(rec, stopped_by="t_max"), np.full((H, W, 3), 128, np.uint8))
    check_figure(fig)
    plt.close(fig)


def test_viz_panels_render():
    sample = FakeSample("a", "a.png", "q")
    fig = viz.gallery([{"image": sample.image(), "masks": sample.mask, "title": "a"}])
    check_figure(fig)
    plt.close(fig)
    fig = viz.trajectory_strip(sample.image(), [sample.mask], [(5, 5, True)], [0.5])
    check_figure(fig)
    plt.close(fig)


# --------------------------------------------------------------------------- the smoke run


@pytest.mark.slow
def test_smoke_run_figures_and_tables(smoke_run, tmp_path, monkeypatch):
    """The evaluation's figures redrawn from the smoke run's predictions, and every table it wrote."""
    run_dir = smoke_run.require("07")
    for md in sorted((run_dir / "tables").glob("*.md")):
        assert html_unsafe(md.read_text()) == [], md.name
    assert sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    copy = tmp_path / "copy"
    shutil.copytree(run_dir / "predictions", copy / "predictions")
    saved = capture_figures(monkeypatch)
    evaluation.evaluate_run(copy)
    for fig in saved.values():
        check_figure(fig)
