"""Trajectory simulation: the three SegAgent principles with a scripted segmenter whose IoUs are
known in advance, the defined behaviour for multi/empty samples, JSONL resume."""
import json
import re

import numpy as np
import pytest

from seglib.clicker import Click, next_click
from seglib.masks import box_from_mask
from seglib.paradigms import clicks as clicks_paradigm
from seglib.segmenters import Prediction, build_segmenter
from seglib.trajectories import read_trajectories, simulate, simulate_split, trajectory_steps

H = W = 20


def gt_block():
    gt = np.zeros((H, W), bool)
    gt[0:10, 0:10] = True  # area 100
    return gt


def rows_mask(k):
    """First k rows of the gt block: IoU with gt_block() = k / 10 exactly."""
    m = np.zeros((H, W), bool)
    m[0:k, 0:10] = True
    return m


class FakeSample:
    def __init__(self, masks, sample_id="s0"):
        self.sample_id = sample_id
        self._masks = masks
        self.height, self.width = H, W

    def union_mask(self):
        out = np.zeros((H, W), bool)
        for m in self._masks:
            out |= m
        return out

    def image(self):
        return np.zeros((H, W, 3), np.uint8)


class Scripted:
    """Returns the given masks in order; records every call."""

    name = "scripted"

    def __init__(self, masks):
        self.masks, self.calls, self.images = masks, [], 0

    def set_image(self, image):
        self.images += 1

    def predict(self, points_xy, labels, box_xyxy=None, mask_logits=None):
        self.calls.append({"points": [tuple(p) for p in points_xy], "labels": list(labels), "box": box_xyxy,
                           "logits": None if mask_logits is None else float(mask_logits.flat[0])})
        m = self.masks[min(len(self.calls) - 1, len(self.masks) - 1)]
        return Prediction(m, 0.5, np.full((2, 2), float(len(self.calls))))


def test_stops_at_tau_stop_and_feeds_all_clicks_and_previous_logits():
    seg = Scripted([rows_mask(5), rows_mask(9), rows_mask(10)])
    traj = simulate(FakeSample([gt_block()]), seg, max_clicks=20, tau_stop=0.98)
    assert traj.ious == [0.0, 0.5, 0.9, 1.0]
    assert traj.stop_reason == "tau_stop" and traj.n_steps == 3
    first = next_click(gt_block(), np.zeros((H, W), bool))
    assert traj.clicks()[0] == first
    assert [len(c["points"]) for c in seg.calls] == [1, 2, 3]
    assert [c["logits"] for c in seg.calls] == [None, 1.0, 2.0]  # the previous step's logits go back in
    assert seg.calls[2]["points"][:2] == seg.calls[1]["points"]
    # the second click is F_sim's on the first mask, never the first click again
    assert traj.clicks()[1] == next_click(gt_block(), rows_mask(5), [first])
    for step, c in zip(traj.steps, traj.clicks()):
        assert step.action == clicks_paradigm.target_text(c, W, H)
        assert re.fullmatch(r"(Positive|Negative) point: \(\d+, \d+\)", step.action)
    assert seg.images == 1


def test_paper_rule_small_gain_ends_the_trajectory_without_keeping_the_action():
    traj = simulate(FakeSample([gt_block()]), Scripted([rows_mask(5), rows_mask(4)]), tau_diff=0.0)
    assert traj.ious == [0.0, 0.5] and traj.n_steps == 1
    assert traj.stop_reason == "small_gain"
    assert traj.rejected[0]["iou"] == pytest.approx(0.4)
    # a positive but too small gain also ends it
    traj = simulate(FakeSample([gt_block()]), Scripted([rows_mask(5), rows_mask(6)]), tau_diff=0.2)
    assert traj.ious == [0.0, 0.5] and traj.stop_reason == "small_gain"


def test_public_rule_discards_a_click_that_does_not_beat_the_best_and_goes_on():
    seg = Scripted([rows_mask(5), rows_mask(4), rows_mask(7), rows_mask(10)])
    traj = simulate(FakeSample([gt_block()]), seg, gain_rule="best")
    assert traj.ious == [0.0, 0.5, 0.7, 1.0]
    assert len(traj.rejected) == 1 and traj.stop_reason == "tau_stop"
    rejected = tuple(traj.rejected[0]["click"][:2])
    third = seg.calls[2]
    assert len(third["points"]) == 2 and rejected not in third["points"]  # not in the prompt...
    assert third["logits"] == 1.0  # ...and the state went on from the kept step
    assert (traj.clicks()[1].x, traj.clicks()[1].y) != rejected  # F_sim moved on


def test_max_clicks_caps_the_attempts():
    traj = simulate(FakeSample([gt_block()]), Scripted([rows_mask(1), rows_mask(2), rows_mask(3), rows_mask(4)]),
                    max_clicks=3)
    assert traj.n_steps == 3 and traj.stop_reason == "max_clicks"
    traj = simulate(FakeSample([gt_block()]), Scripted([rows_mask(5), rows_mask(5)]), max_clicks=5, gain_rule="best")
    assert traj.n_steps == 1 and len(traj.rejected) == 4 and traj.stop_reason == "max_clicks"


def test_tau_stop_below_08_is_refused_and_bad_options_named():
    with pytest.raises(ValueError, match="0.8"):
        simulate(FakeSample([gt_block()]), Scripted([rows_mask(5)]), tau_stop=0.7)
    with pytest.raises(ValueError, match="start"):
        simulate(FakeSample([gt_block()]), Scripted([rows_mask(5)]), start="middle")


def test_empty_target_has_no_trajectory_and_multi_uses_the_union():
    assert simulate(FakeSample([]), Scripted([rows_mask(5)])) is None
    a = np.zeros((H, W), bool)
    a[2:6, 2:6] = True
    b = np.zeros((H, W), bool)
    b[10:19, 10:19] = True  # the thicker part: F_sim's first click goes there
    seg = Scripted([b, a | b])
    traj = simulate(FakeSample([a, b]), seg)
    assert traj.ious[1] == pytest.approx(81 / 97) and traj.ious[2] == 1.0
    assert traj.clicks()[0] == Click(14, 14, True)
    assert traj.clicks()[1].positive and a[traj.clicks()[1].y, traj.clicks()[1].x]


def test_box_start_prompts_the_box_once_then_clicks_only():
    seg = Scripted([rows_mask(6), rows_mask(10)])
    traj = simulate(FakeSample([gt_block()]), seg, start="box")
    assert seg.calls[0]["box"] == box_from_mask(gt_block()) and seg.calls[0]["points"] == []
    assert seg.calls[1]["box"] is None and len(seg.calls[1]["points"]) == 1 and seg.calls[1]["logits"] == 1.0
    assert traj.ious == [0.6, 1.0]
    before, click, iou_before = next(trajectory_steps(traj))
    np.testing.assert_array_equal(before, rows_mask(6))
    assert iou_before == 0.6


def test_random_clicks_start_is_seeded():
    a = simulate(FakeSample([gt_block()]), Scripted([rows_mask(3), rows_mask(10)]), start="random_clicks", seed=1)
    b = simulate(FakeSample([gt_block()]), Scripted([rows_mask(3), rows_mask(10)]), start="random_clicks", seed=1)
    assert a.start_clicks == b.start_clicks and a.start_clicks[0][2] is True
    assert gt_block()[a.start_clicks[0][1], a.start_clicks[0][0]]


def test_classic_backend_two_object_union_takes_two_clicks():
    img = np.full((40, 40, 3), 128, np.uint8)
    a = np.zeros((40, 40), bool)
    a[5:15, 5:15] = True
    b = np.zeros((40, 40), bool)
    b[22:36, 20:36] = True
    img[a] = (215, 40, 40)
    img[b] = (40, 80, 215)
    sample = FakeSample([a, b])
    sample.image = lambda: img
    sample.union_mask = lambda: a | b
    traj = simulate(sample, build_segmenter("classic"))
    assert traj.n_steps == 2 and traj.ious[-1] == 1.0 and traj.stop_reason == "tau_stop"


def test_simulate_split_writes_resumes_and_tolerates_a_torn_line(tmp_path):
    samples = [FakeSample([gt_block()], f"s{i}") for i in range(4)] + [FakeSample([], "empty")]
    path = tmp_path / "trajectories" / "train.jsonl"
    seg = Scripted([rows_mask(10)])
    out = simulate_split(samples[:2], seg, path, progress=False)
    assert out["written"] == 2
    with open(path, "a") as fh:
        fh.write('{"sample_id": "s2", "ste')  # interrupted mid-write
    seg2 = Scripted([rows_mask(10)])
    out = simulate_split(samples, seg2, path, progress=False)
    assert out == {"written": 2, "skipped_done": 2, "skipped_empty": 1, "shared": 0, "path": str(path)}
    assert len(seg2.calls) == 2  # only s2 and s3 were simulated
    trajs = read_trajectories(path)
    assert [t.sample_id for t in trajs] == ["s0", "s1", "s2", "s3"]
    lines = path.read_text().splitlines()
    rec = json.loads(lines[0])
    assert rec["n_steps"] == 1 and rec["stop_reason"] == "tau_stop" and rec["ious"] == [0.0, 1.0]
    assert rec["steps"][0]["mask_rle"]["size"] == [H, W]
    # other settings in the same file are refused
    with pytest.raises(ValueError, match="settings|made with"):
        simulate_split(samples, Scripted([rows_mask(10)]), path, tau_stop=0.9, progress=False)
    # a corrupt line in the middle is an error naming the file and line
    path.write_text(lines[0] + "\nnot json\n" + lines[1] + "\n")
    with pytest.raises(ValueError, match="line 2"):
        read_trajectories(path)


# ----------------------------------------------------------------------------- one simulation per (image, target)
def test_sentences_of_one_ref_share_one_simulation(tmp_path):
    from seglib.data import Sample
    from seglib.masks import encode_rle

    gt = gt_block()
    common = dict(image_path=str(tmp_path / "img.png"), kind="referring", split="train", height=H, width=W,
                  target_rles=[encode_rle(gt)])
    from PIL import Image

    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(common["image_path"])
    two = [Sample(sample_id="r1-0", query="the square", **common), Sample(sample_id="r1-1", query="top left", **common)]

    class Counting:
        name = "counting"

        def __init__(self):
            self.inner, self.calls = build_segmenter("classic"), 0

        def set_image(self, image):
            return self.inner.set_image(image)

        def predict(self, *a, **k):
            self.calls += 1
            return self.inner.predict(*a, **k)

    one_seg, two_seg = Counting(), Counting()
    simulate_split(two[:1], one_seg, tmp_path / "one.jsonl", max_clicks=3, progress=False)
    summary = simulate_split(two, two_seg, tmp_path / "two.jsonl", max_clicks=3, progress=False)
    assert two_seg.calls == one_seg.calls > 0  # the second sentence costs no segmenter call
    assert summary["written"] == 2 and summary["shared"] == 1
    a, b = read_trajectories(tmp_path / "two.jsonl")
    assert (a.sample_id, b.sample_id) == ("r1-0", "r1-1")
    assert a.ious == b.ious and [s.click for s in a.steps] == [s.click for s in b.steps]


def test_cli_trajectories_follow_traj_splits_and_traj_max_samples(tmp_path):
    from accelerate import PartialState

    from seglib.data import synthref
    from seglib.train.__main__ import ensure_trajectories

    run = tmp_path / "run"
    synthref.generate(run / "data", n_images=6, seed=0, image_size=56)
    params = {"traj_splits": ["train"], "traj_max_samples": 2, "max_clicks": 2, "traj_starts": ["empty"]}
    path = ensure_trajectories(run, params, PartialState(cpu=True))
    assert len(read_trajectories(path)) <= 2  # at most 2 samples (empty targets write nothing)
    assert not (run / "trajectories" / "val.jsonl").exists()  # val is not in traj_splits
    with pytest.raises(FileNotFoundError, match="traj_splits"):
        ensure_trajectories(tmp_path / "other", {"traj_splits": ["val"]}, PartialState(cpu=True))
