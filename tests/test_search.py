"""PRM tree search (SegAgent) on a fake paradigm, policy and segmenter, with hand-worked paths.

World: a 20×20 image, ground truth = the 10×10 square x, y ∈ [0, 9]. The fake
segmenter paints a 5×5 square (clipped) around every positive click. The fake
policy's self-predicted IoU is the true IoU against a "believed" mask the test
chooses; its actions come from tables indexed by the number of clicks so far.
The fake paradigm gives the search the members it uses (observe, parse, decode,
to_json; the self-estimate is ``Decoded.pred_iou``).
"""
import re
from dataclasses import dataclass, field

import numpy as np
import pytest

from seglib.clicker import Click
from seglib.paradigms.base import Decoded, State
from seglib.paradigms.text import to_jsonable
from seglib.metrics import calibration
from seglib.search import prm_search, result_to_record

H = W = 20
GT = np.zeros((H, W), bool)
GT[0:10, 0:10] = True


@dataclass
class FakePrompt:
    points_xy: list
    labels: list
    mask_logits: object = None


@dataclass
class FakePred:
    mask: np.ndarray
    score: float = 1.0
    logits: object = None


def square(x, y):
    m = np.zeros((H, W), bool)
    m[max(y - 2, 0): y + 3, max(x - 2, 0): x + 3] = True
    return m


@dataclass
class FakeSegmenter:
    set_image_calls: int = 0  # encodes: a call with the image already set is a cache hit, as in seglib.segmenters
    batch_sizes: list = field(default_factory=list)
    segmented: list = field(default_factory=list)  # the last click of every prompt segmented
    _key: object = None

    def set_image(self, image):
        if image.tobytes() != self._key:
            self._key = image.tobytes()
            self.set_image_calls += 1

    def predict_many(self, prompts):
        self.batch_sizes.append(len(prompts))
        out = []
        for p in prompts:
            self.segmented.append(tuple(p.points_xy[-1]))
            m = np.zeros((H, W), bool)
            for (x, y), lab in zip(p.points_xy, p.labels):
                m = m | square(x, y) if lab == 1 else m & ~square(x, y)
            out.append(FakePred(m, logits=len(p.points_xy)))
        return out


def iou(a, b):
    u = np.count_nonzero(a | b)
    return 1.0 if u == 0 else np.count_nonzero(a & b) / u


class FakePolicy:
    """State = (mask as image, number of clicks in the prompt). Text: 'Current IoU: .., Positive point: (x, y)'."""

    def __init__(self, believed, greedy_points, sampled_points=()):
        self.believed, self.greedy, self.sampled = believed, greedy_points, sampled_points
        self.calls = []

    def state(self, mask):
        return np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2), "segment the target"

    def _text(self, mask, point):
        pi = 100 * iou(mask, self.believed)
        if point is None:
            return f"Current IoU: {pi:.1f}, no idea"
        return f"Current IoU: {pi:.1f}, Positive point: ({point[0]}, {point[1]})"

    def generate(self, images, prompts, n, do_sample):
        self.calls.append((len(images), n, do_sample))
        out = []
        for img in images:
            mask = img[..., 0] > 0
            step = self.step_of(mask)
            if do_sample:
                pts = list(self.sampled[step]) if step < len(self.sampled) else []
                out.append([self._text(mask, pts[i] if i < len(pts) else None) for i in range(n)])
            else:
                pt = self.greedy[step] if step < len(self.greedy) else None
                out.append([self._text(mask, pt)])
        return out

    def step_of(self, mask):
        # clicks taken so far, looked up from the masks of the scripted paths
        return self.path_len.get(mask.tobytes(), 0)


@dataclass(frozen=True)
class FakeAnswer:
    pred: float | None
    x: int | None
    y: int | None
    positive: bool | None


class FakeParadigm:
    """A stepped paradigm on the fake world: the state image is the mask; text → click + self-estimate."""

    def observe(self, state):
        mask = np.zeros((H, W), bool) if state.mask is None else state.mask
        return np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2), "segment the target"

    def parse(self, text):
        m = re.search(r"Current IoU: ([0-9.]+)", text)
        pred = float(m.group(1)) / 100 if m else None
        c = re.search(r"(Positive|Negative) point: \((\d+), (\d+)\)", text)
        if c is None:  # a self-estimate without an action: nothing to apply, but the estimate counts
            return None if pred is None else FakeAnswer(pred, None, None, None)
        return FakeAnswer(pred, int(c.group(2)), int(c.group(3)), c.group(1) == "Positive")

    def to_json(self, answer):
        return to_jsonable(answer)

    def decode(self, state, answer, segmenter=None):
        if answer is None or answer.x is None:
            return Decoded(None, False, pred_iou=None if answer is None else answer.pred), state
        segmenter.set_image(state.image)
        clicks = state.clicks + (Click(answer.x, answer.y, answer.positive),)
        pred = segmenter.predict_many([FakePrompt([(c.x, c.y) for c in clicks], [int(c.positive) for c in clicks],
                                                  state.logits)])[0]
        nxt = State(state.sample, state.image, pred.mask, clicks, pred.logits, state.t + 1)
        return Decoded(self.to_json(answer), True, [pred.mask], [1.0], pred_iou=answer.pred), nxt


def make_policy(believed, greedy, sampled=()):
    pol = FakePolicy(believed, greedy, sampled)
    # index states by mask: empty → 0, after greedy prefix of length i → i, after any single sampled point → 1
    table = {np.zeros((H, W), bool).tobytes(): 0}
    m = np.zeros((H, W), bool)
    for i, p in enumerate(greedy):
        m = m | square(*p)
        table[m.tobytes()] = i + 1
    for p in (sampled[0] if sampled else ()):
        table[square(*p).tobytes()] = 1
    pol.path_len = table
    return pol


def run(pol, seg, **kw):
    start = State("segment the target", np.zeros((H, W, 3), np.uint8))
    return prm_search(FakeParadigm(), start, pol.generate, seg, gt_mask=GT, **kw)


def test_candidate_with_highest_predicted_iou_is_kept_and_k_share_one_encode():
    # step 1 candidates: greedy (15, 15) → believed IoU 0; sampled (0, 0) → 9/100; (5, 5) → 25/100.
    pol = make_policy(GT, greedy=[(15, 15)], sampled=[[(0, 0), (5, 5)]])
    seg = FakeSegmenter()
    res = run(pol, seg, max_steps=1, k=3)
    step = res.steps[0]
    assert [c.click for c in step.candidates] == [(15, 15, True), (0, 0, True), (5, 5, True)]
    assert [c.pred_iou for c in step.candidates] == pytest.approx([0.0, 0.09, 0.25])
    assert step.chosen == 2 and step.best.click == (5, 5, True)
    assert np.array_equal(res.mask, square(5, 5))
    # one image encode for all K; each candidate action segmented once; the K next states scored in one call
    assert seg.set_image_calls == 1 and seg.segmented[:3] == [(15, 15), (0, 0), (5, 5)]
    assert pol.calls == [(1, 1, False), (1, 2, True), (3, 1, False)]
    # true IoUs recorded for every candidate
    assert [c.iou for c in step.candidates] == pytest.approx([0.0, 0.09, 0.25])


def test_patience_stops_and_best_step_mask_is_returned():
    # believed = GT; greedy path (2,2) → .25, (7,2) → .50, (15,15) → 50/125 = .40, (15,5) → 50/150
    path = [(2, 2), (7, 2), (15, 15), (15, 5), (7, 7)]
    pol = make_policy(GT, greedy=path)
    seg = FakeSegmenter()
    res = run(pol, seg, max_steps=5, k=1, patience=1)
    assert [s.best.pred_iou for s in res.steps] == pytest.approx([0.25, 0.5, 0.4])
    assert res.stopped_by == "patience" and res.best_step == 2
    assert np.array_equal(res.mask, square(2, 2) | square(7, 2))
    res2 = run(make_policy(GT, greedy=path), FakeSegmenter(), max_steps=5, k=1, patience=2)
    assert len(res2.steps) == 4 and res2.best_step == 2 and res2.stopped_by == "patience"


def test_k1_follows_the_greedy_path_and_last_selection_is_plain_clicking():
    path = [(2, 2), (7, 2), (15, 15)]
    res = run(make_policy(GT, greedy=path), FakeSegmenter(), max_steps=3, k=1, patience=None, select="last")
    assert res.clicks == [(2, 2, True), (7, 2, True), (15, 15, True)]
    assert res.best_step == 3 and res.stopped_by == "max_steps"
    assert np.array_equal(res.mask, square(2, 2) | square(7, 2) | square(15, 15))
    best = run(make_policy(GT, greedy=path), FakeSegmenter(), max_steps=3, k=1, patience=None)
    assert best.best_step == 2  # best-scoring step on the same path


def test_policy_misbelief_picks_what_it_believes_not_the_truth():
    # the policy believes the target is the bottom-right square: it prefers (15, 15) though its true IoU is 0
    believed = np.zeros((H, W), bool)
    believed[10:20, 10:20] = True
    pol = make_policy(believed, greedy=[(5, 5)], sampled=[[(15, 15)]])
    res = run(pol, FakeSegmenter(), max_steps=1, k=2)
    assert res.steps[0].best.click == (15, 15, True) and res.steps[0].best.iou == 0.0


def test_no_parsable_action_stops_with_empty_mask():
    pol = make_policy(GT, greedy=[])
    res = run(pol, FakeSegmenter(), max_steps=3, k=1)
    assert res.stopped_by == "no_action" and res.steps == [] and not res.mask.any() and res.best_step == 0


def test_record_has_schema_keys():
    pol = make_policy(GT, greedy=[(15, 15)], sampled=[[(0, 0), (5, 5)]])
    rec = result_to_record(run(pol, FakeSegmenter(), max_steps=1, k=3))
    assert rec["best_step"] == 1 and rec["search"]["k"] == 3
    st = rec["steps"][0]
    assert st["click"] == [5, 5, True] and st["chosen"] == 2 and len(st["candidates"]) == 3
    assert {"text", "click", "pred_iou", "iou", "mask_rle"} <= set(st["candidates"][0])


def test_calibration_by_hand():
    cal = calibration([0.5, 0.7, 0.9], [0.4, 0.8, 0.9])
    assert cal["n"] == 3
    assert cal["mae"] == pytest.approx(0.2 / 3)
    assert cal["pearson"] == pytest.approx(0.1 / np.sqrt(0.08 * 0.14))
    assert calibration([], [])["mae"] is None
    assert calibration([0.5, 0.5], [0.1, 0.9])["pearson"] is None


def test_identical_candidates_are_segmented_once():
    pol = make_policy(GT, greedy=[(5, 5)], sampled=[[(5, 5), (0, 0)]])
    seg = FakeSegmenter()
    res = run(pol, seg, max_steps=1, k=3)
    assert seg.segmented[:2] == [(5, 5), (0, 0)]  # (5, 5) twice, segmented once; (0, 0) once
    assert pol.calls[-1] == (2, 1, False)  # and the two distinct next states scored once each
    assert [c.pred_iou for c in res.steps[0].candidates] == pytest.approx([0.25, 0.25, 0.09])
    assert res.steps[0].chosen == 0
