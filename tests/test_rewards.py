"""Reward scorers (seglib.paradigms.*): hand-computed cases per METHODS.md rule, hostile input; the trl adapter."""
import json
import math
import random
from dataclasses import dataclass

import numpy as np
import pytest

from seglib import paradigms, rewards
from seglib.masks import encode_rle
from seglib.paradigms import polygon
from seglib.paradigms.boxpoints.segzero import segzero_score
from seglib.paradigms.boxpoints.star import STAR_RANGES, star_group_scores, star_tier
from seglib.paradigms.boxpoints.visionreasoner import sentences, visionreasoner_score
from seglib.paradigms.clicks.reward import ClickState, clicks_group_scores
from seglib.paradigms.polygon.reward import simpleseg_score

#: Documented range of every component, per scorer (inclusive bounds), from the registered paradigms.
RANGES = {scorer: ranges for name in paradigms.PARADIGMS
          for scorer, ranges in paradigms.paradigm_class(name).reward_ranges.items()}


@dataclass
class FakePrediction:
    mask: np.ndarray
    score: float
    logits: np.ndarray


class FakeSegmenter:
    """Cheap stand-in: a box prompt fills the (clipped) box; points alone fill 3×3 squares. Counts calls."""

    def __init__(self):
        self.set_image_calls = 0
        self.predict_many_calls = 0
        self.predict_calls = 0
        self.shape = None

    def set_image(self, image):
        self.set_image_calls += 1
        self.shape = np.asarray(image).shape[:2]

    def _one(self, points_xy, labels, box_xyxy=None):
        h, w = self.shape
        m = np.zeros((h, w), bool)
        if box_xyxy is not None:
            x0, y0, x1, y1 = (int(v) for v in box_xyxy)
            m[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
        else:
            for (x, y), lab in zip(points_xy, labels):
                m[max(int(y) - 1, 0):int(y) + 2, max(int(x) - 1, 0):int(x) + 2] = bool(lab)
        return FakePrediction(m, 1.0, m.astype(np.float32))

    def predict(self, points_xy=(), labels=(), box_xyxy=None, mask_logits=None):
        self.predict_calls += 1
        return self._one(points_xy, labels, box_xyxy)

    def predict_many(self, prompts):
        self.predict_many_calls += 1
        self.prompts_seen = getattr(self, "prompts_seen", 0) + len(prompts)
        return [self._one(p.points_xy, p.labels, p.box_xyxy) for p in prompts]


def segzero_text(box, p1, p2, think="<think>ok</think>"):
    return f'{think}<answer>{json.dumps({"bbox": box, "points_1": p1, "points_2": p2})}</answer>'


def rect(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


# =========================================================================== Seg-Zero
GT_BOX = [0, 0, 9, 9]  # inclusive: 10 × 10 = 100 px
GT_PTS = [[2, 2], [7, 7]]


def test_segzero_perfect_answer_scores_five():
    s = segzero_score(segzero_text(GT_BOX, [2, 2], [7, 7]), GT_BOX, GT_PTS)
    assert s == {"think_format": 1.0, "answer_format": 1.0, "bbox_iou": 1.0, "bbox_l1": 1.0, "points": 1.0}


def test_segzero_box_iou_threshold_is_strict_and_inclusive():
    # [0,0,9,4]: 10×5 = 50 px inside the 100-px target → IoU exactly 0.5 → not > 0.5 → 0
    assert segzero_score(segzero_text([0, 0, 9, 4], [2, 2], [7, 3]), GT_BOX, GT_PTS)["bbox_iou"] == 0.0
    # [0,0,9,5]: 60 / 100 = 0.6 → 1
    assert segzero_score(segzero_text([0, 0, 9, 5], [2, 2], [7, 3]), GT_BOX, GT_PTS)["bbox_iou"] == 1.0
    # one-row boxes have area under the inclusive rule: [0,0,1,0] vs [0,0,2,0] → 2/3 → 1 (exclusive: 0/0)
    s = segzero_score(segzero_text([0, 0, 1, 0], [0, 0], [1, 0]), [0, 0, 2, 0], [[0, 0], [2, 0]])
    assert s["bbox_iou"] == 1.0
    # soft accuracy: the IoU itself
    s = segzero_score(segzero_text([0, 0, 9, 5], [2, 2], [7, 3]), GT_BOX, GT_PTS, soft_accuracy=True,
                              image_hw=(100, 200))
    assert s["bbox_iou"] == pytest.approx(0.6)


def test_segzero_l1_threshold_9_9_vs_10_1():
    gt = [0, 0, 100, 100]
    near = [9.9, 9.9, 109.9, 109.9]  # mean |Δ| = 9.9
    far = [10.1, 10.1, 110.1, 110.1]  # mean |Δ| = 10.1
    pts = [[50, 50], [60, 60]]
    assert segzero_score(segzero_text(near, *pts), gt, pts)["bbox_l1"] == 1.0
    assert segzero_score(segzero_text(far, *pts), gt, pts)["bbox_l1"] == 0.0
    # soft: 1 − L1 / max side = 1 − 10.1 / 200
    s = segzero_score(segzero_text(far, *pts), gt, pts, soft_accuracy=True, image_hw=(150, 200))
    assert s["bbox_l1"] == pytest.approx(1 - 10.1 / 200)


def test_segzero_points_pairing_swap_inside_box_and_100px():
    box = [0, 0, 500, 500]
    gt_pts = [[10, 10], [20, 10]]
    # swapped order: distance 0 under the better pairing
    assert segzero_score(segzero_text(box, [20, 10], [10, 10]), box, gt_pts)["points"] == 1.0
    # straight pairing mean (199 + 0) / 2 = 99.5 < 100; swapped is worse (≈104.6)
    assert segzero_score(segzero_text(box, [10, 209], [20, 10]), box, gt_pts)["points"] == 1.0
    # straight (203 + 0) / 2 = 101.5, swapped ≈ (203.2 + 10) / 2 → both ≥ 100 → 0
    assert segzero_score(segzero_text(box, [10, 213], [20, 10]), box, gt_pts)["points"] == 0.0
    # a point outside the predicted box → 0 even though it is on the target point
    assert segzero_score(segzero_text([0, 0, 15, 15], [10, 10], [20, 10]), box, gt_pts)["points"] == 0.0


def test_segzero_formats_strict_and_soft():
    good = segzero_text(GT_BOX, [2, 2], [7, 7])
    assert segzero_score("<think>a</think>\n <answer>{}</answer>", GT_BOX, GT_PTS)["think_format"] == 1.0
    assert segzero_score(good.replace("<think>ok</think>", ""), GT_BOX, GT_PTS)["think_format"] == 0.0
    assert segzero_score(good + " trailing", GT_BOX, GT_PTS)["think_format"] == 0.0
    extra = '<think>a</think><answer>{"bbox": [0,0,9,9], "points_1": [2,2], "points_2": [7,7], "why": 1}</answer>'
    assert segzero_score(extra, GT_BOX, GT_PTS)["answer_format"] == 0.0
    assert segzero_score(extra, GT_BOX, GT_PTS, strict=False)["answer_format"] == 1.0
    soft = '<think>a</think><answer>{"bbox_2d": [0,0,9,9], "point_a": [2,2], "point_b": [7,7]}</answer>'
    s = segzero_score(soft, GT_BOX, GT_PTS, strict=False)
    assert s == {"think_format": 1.0, "answer_format": 1.0, "bbox_iou": 1.0, "bbox_l1": 1.0, "points": 1.0}
    s = segzero_score(soft, GT_BOX, GT_PTS, strict=True)
    assert s["answer_format"] == 0.0 and s["bbox_iou"] == 0.0
    one_point = '<think>a</think><answer>{"bbox": [0,0,9,9], "points_1": [2,2]}</answer>'
    s = segzero_score(one_point, GT_BOX, GT_PTS)
    assert s["answer_format"] == 0.0 and s["bbox_iou"] == 1.0 and s["points"] == 0.0
    bare = json.dumps({"bbox": GT_BOX, "points_1": [2, 2], "points_2": [7, 7]})
    s = segzero_score(bare, GT_BOX, GT_PTS)
    assert s == {"think_format": 0.0, "answer_format": 0.0, "bbox_iou": 1.0, "bbox_l1": 1.0, "points": 1.0}
    inverted = segzero_text([9, 9, 0, 0], [2, 2], [7, 7])
    s = segzero_score(inverted, GT_BOX, GT_PTS)
    assert s["answer_format"] == 1.0 and s["bbox_iou"] == s["bbox_l1"] == s["points"] == 0.0


def test_segzero_resize_frame_compares_in_the_model_frame():
    # 420×210 image (W×H) shown at 840: gt box (10, 10, 100, 50) → (20, 40, 200, 200) in the model frame
    gt_box, gt_pts = [10, 10, 100, 50], [[20, 20], [80, 40]]
    text = segzero_text([20, 40, 200, 200], [40, 80], [160, 160])
    s = segzero_score(text, gt_box, gt_pts, image_hw=(210, 420), resize=840)
    assert s["bbox_iou"] == s["bbox_l1"] == s["points"] == 1.0
    with pytest.raises(ValueError, match="image_hw"):
        segzero_score(text, gt_box, gt_pts, resize=840)


# =========================================================================== VisionReasoner
def vr_text(items, think="<think>ok</think>"):
    return f"{think}<answer>{json.dumps(items)}</answer>"


def test_visionreasoner_hungarian_by_hand():
    gt_boxes = [[0, 0, 9, 9], [100, 100, 149, 149]]
    gt_points = [[5, 5], [120, 120]]
    items = [
        {"bbox_2d": [100, 100, 149, 149], "point_2d": [121, 121]},  # vs B: IoU, L1, point → 3
        {"bbox_2d": [0, 0, 9, 4], "point_2d": [5, 5]},  # vs A: IoU = 0.5 (no), L1 = 1.25 (yes), point outside own box (no) → 1
        {"bbox_2d": [200, 200, 210, 210], "point_2d": [205, 205]},  # nothing
    ]
    s = visionreasoner_score(vr_text(items), gt_boxes, gt_points)
    assert s["accuracy"] == pytest.approx((3 + 1) / 3)  # M = 3, N = 2
    assert s["format"] == 3.0 and s["non_repeat"] == 1.0
    # the matching is optimal, not greedy: p0 fits A and B fully, p1 only A fully.
    gt_boxes = [[0, 0, 9, 9], [0, 0, 9, 19]]  # 100 px, 200 px
    gt_points = [[5, 5], [5, 15]]
    items = [{"bbox_2d": [0, 0, 9, 13], "point_2d": [5, 5]},  # A: IoU .71, L1 1, pt 0 → 3; B: .70, 1.5, 10 px → 3
             {"bbox_2d": [0, 0, 9, 9], "point_2d": [5, 5]}]  # A: 3; B: IoU .5 (no), L1 2.5, pt 10 px → 2
    # greedy (p0→A, p1→B) would give 3 + 2; Hungarian gives p0→B, p1→A = 3 + 3
    s = visionreasoner_score(vr_text(items), gt_boxes, gt_points)
    assert s["accuracy"] == pytest.approx((3 + 3) / 2)


def test_visionreasoner_empty_and_format_cases():
    assert visionreasoner_score(vr_text([]), [], [])["accuracy"] == 3.0
    assert visionreasoner_score(vr_text([]), [], [])["format"] == 3.0
    assert visionreasoner_score(vr_text([]), [[0, 0, 5, 5]], [[2, 2]])["accuracy"] == 0.0
    one = [{"bbox_2d": [0, 0, 5, 5], "point_2d": [2, 2]}]
    assert visionreasoner_score(vr_text(one), [], [])["accuracy"] == 0.0
    half = [{"bbox_2d": [0, 0, 5, 5], "point_2d": [2, 2]}, {"bbox_2d": [0, 0, 5, 5]}]
    s = visionreasoner_score(vr_text(half), [[0, 0, 5, 5]], [[2, 2]])
    assert s["format"] == pytest.approx(1 + (2 + 1) / 2)
    assert s["accuracy"] == pytest.approx(3 / 2)  # the point-less item cannot match
    assert visionreasoner_score(vr_text(one, think=""), [[0, 0, 5, 5]], [[2, 2]])["format"] == 2.0
    bare = json.dumps(one)  # parsable without tags: accuracy counts, format does not
    assert visionreasoner_score(bare, [[0, 0, 5, 5]], [[2, 2]]) == {"format": 0.0, "accuracy": 3.0,
                                                                           "non_repeat": 1.0}


def test_visionreasoner_non_repeat():
    base = vr_text([])
    # "Go. A. B. A.": sentences "<think>Go", "A", "B", "A" -> one repeat; the default (public code) allows one
    assert visionreasoner_score("<think>Go. A. B. A.</think>" + base[17:], [], [])["non_repeat"] == 1.0
    s = visionreasoner_score("<think>Go. A. B. A.</think>" + base[17:], [], [], allowed_repeats=0)
    assert s["non_repeat"] == 0.0
    # "A. A. A.": the 2nd and 3rd "A" are two repeats -> 0 under the default
    s = visionreasoner_score("<think>Go. A. A. A.</think>" + base[17:], [], [])
    assert s["non_repeat"] == 0.0


# =========================================================================== StAR
def test_star_tiers():
    cases = {0.0: 0, 0.3: 0, 0.3001: 1, 0.5: 1, 0.51: 2, 0.7: 2, 0.71: 3, 0.8: 3, 0.81: 4, 0.9: 4, 0.9001: 5, 1.0: 5}
    for iou, tier in cases.items():
        assert star_tier(iou) == tier, iou


def test_star_group_hungarian_count_bonus_and_one_segmenter_call():
    h, w = 40, 60
    image = np.zeros((h, w, 3), np.uint8)
    gt = [rect(h, w, 0, 0, 9, 9), rect(h, w, 30, 10, 49, 29)]
    seg = FakeSegmenter()
    texts = [
        # exact B (tier 5) and A at 10×8 = 80 / 100 = 0.8 (tier 3) → (5 + 3) / 2, count bonus
        vr_text([{"bbox_2d": [30, 10, 49, 29], "point_2d": [40, 20], "label": "b"},
                 {"bbox_2d": [0, 0, 9, 7], "point_2d": [4, 4], "label": "a"}]),
        # one exact object for two targets: 5 / 2, no bonus
        vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4], "label": "a"}]),
        "garbage",
        vr_text([]),
    ]
    out = star_group_scores(texts, gt, seg, image)
    assert seg.set_image_calls == 1 and seg.predict_many_calls == 1
    assert out[0] == {"format": 4.0, "accuracy": 4.0, "count": 1.0}
    assert out[1] == {"format": 4.0, "accuracy": 2.5, "count": 0.0}
    assert out[2] == {"format": 0.0, "accuracy": 0.0, "count": 0.0}
    assert out[3] == {"format": 4.0, "accuracy": 0.0, "count": 0.0}
    # empty target, empty answer: full accuracy and the count bonus
    assert star_group_scores([vr_text([])], [], seg, image)[0] == {"format": 4.0, "accuracy": 5.0, "count": 1.0}
    # label only affects format
    nolabel = vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4]}, {"bbox_2d": [30, 10, 49, 29], "point_2d": [40, 20]}])
    assert star_group_scores([nolabel], gt, seg, image)[0] == {"format": 3.0, "accuracy": 5.0, "count": 1.0}


# =========================================================================== SimpleSeg
def test_simpleseg_iou_centroid_format_by_hand():
    h, w = 30, 40  # diagonal 50
    gt = rect(h, w, 0, 0, 9, 9)  # centroid (4.5, 4.5)
    # outline=True: a traced contour decodes back onto the whole rectangle (default decoding:
    # tests/test_fidelity_clicker_polygon.py)
    exact = polygon.target_text([gt], w, h)
    assert simpleseg_score(exact, [gt], (h, w), outline=True) == {"iou": 1.0, "centroid": 1.0, "format": 1.0}
    shifted = polygon.target_text([rect(h, w, 30, 0, 39, 9)], w, h)  # centroid (34.5, 4.5): 30 px away
    s = simpleseg_score(shifted, [gt], (h, w), outline=True)
    assert s == pytest.approx({"iou": 0.0, "centroid": 1 - 30 / 50, "format": 1.0})
    half = polygon.target_text([rect(h, w, 0, 0, 9, 4)], w, h)  # 50 / 100 px
    assert simpleseg_score(half, [gt], (h, w), outline=True)["iou"] == pytest.approx(0.5)
    assert simpleseg_score("[]", [], (h, w)) == {"iou": 1.0, "centroid": 1.0, "format": 1.0}
    assert simpleseg_score("[]", [gt], (h, w)) == {"iou": 0.0, "centroid": 0.0, "format": 1.0}
    assert simpleseg_score("[[[0.1,0.1]", [gt], (h, w)) == {"iou": 0.0, "centroid": 0.0, "format": 0.0}


# =========================================================================== clicks
def test_clicks_gain_and_prm_by_hand():
    pytest.importorskip("seglib.clicker")
    h, w = 50, 100
    image = np.zeros((h, w, 3), np.uint8)
    gt = rect(h, w, 49, 24, 51, 26)  # the fake segmenter's 3×3 square around pixel (50, 25)
    state = ClickState(image=image, gt_mask=gt)
    seg = FakeSegmenter()
    texts = ["Positive point: (505, 510)", "nonsense", "Negative point: (505, 510)",
             "Current IoU: 40.0, Positive point: (505, 510)"]
    out = clicks_group_scores(texts, state, seg)
    assert seg.set_image_calls == 1 and seg.predict_many_calls == 1
    assert seg.prompts_seen == 2  # three parsable answers, two distinct clicks: each segmented once
    assert [o["iou_gain"] for o in out] == [1.0, 0.0, 0.0, 1.0]
    assert [o["format"] for o in out] == [1.0, 0.0, 1.0, 1.0]
    out = clicks_group_scores(texts, state, seg, prm=True)
    assert [o["prm"] for o in out] == pytest.approx([0.0, 0.0, 0.0, 0.6])  # IoU(M_t) = 0, estimate 0.40
    assert [o["format"] for o in out] == [0.0, 0.0, 0.0, 1.0]
    # from a perfect mask, a wrong click loses IoU
    state = ClickState(image=image, gt_mask=gt, current_mask=gt)
    assert clicks_group_scores(["Positive point: (105, 110)"], state, seg)[0]["iou_gain"] == pytest.approx(-1.0)


# =========================================================================== hostile input
def hostile_completions(n, seed=0):
    rng = random.Random(seed)
    valid = [
        segzero_text([10, 20, 30, 40], [15, 25], [20, 30]),
        vr_text([{"bbox_2d": [1, 2, 30, 40], "point_2d": [5, 6], "label": "x"}, {"bbox_2d": [5, 5, 9, 9], "point_2d": [6, 6]}]),
        "[[[0.100,0.100],[0.500,0.100],[0.500,0.400]]]",
        "Current IoU: 55.5, Positive point: (412, 377)",
    ]
    big_poly = "[[" + ",".join(f"[{rng.random():.3f},{rng.random():.3f}]" for _ in range(10_000)) + "]]"
    short_big_poly = "[[" + ",".join(f"[{rng.randrange(2)},{rng.randrange(2)}]" for _ in range(10_000)) + "]]"
    mid_poly = "[[" + ",".join(f"[{rng.random():.3f},{rng.random():.3f}]" for _ in range(1_500)) + "]]"
    nums = ["1e308", "-1e308", "1e999", "-99999999", "NaN", "Infinity", "-Infinity", "nan", "1" * 400, "-0", "0.0",
            "true", "null", '"12"', "[]", "{}", "-5", "100000", "3.5e5"]
    out = []
    for i in range(n):
        k = i % 12
        if k == 0:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(200))).decode("latin-1"))
        elif k == 1:
            t = rng.choice(valid)
            out.append(t[: rng.randrange(len(t) + 1)])
        elif k == 2:
            t = rng.choice(valid)
            out.append(" ".join(rng.choice(nums) if tok.strip("[]{},:()").isdigit() else tok
                                for tok in t.replace(",", " , ").split(" ")))
        elif k == 3:
            d = rng.randrange(1, 4000)
            out.append("<think>x</think><answer>" + "[" * d + "]" * rng.choice([d, 0, d // 2]) + "</answer>")
        elif k == 4:
            # 10,000-vertex polygons (over the text cap, and under it with short numbers), 1,500-vertex ones
            out.append(rng.choice([big_poly, short_big_poly, "<answer>" + short_big_poly + "</answer>",
                                   mid_poly, mid_poly[:5000], mid_poly[:300], big_poly[:2000]]))
        elif k == 5:
            items = [{"bbox_2d": [rng.choice(nums) for _ in range(rng.randrange(6))],
                      "point_2d": [rng.uniform(-1e6, 1e6) for _ in range(rng.randrange(4))],
                      "label": rng.choice(["a", 3, None, ["x"]])} for _ in range(rng.randrange(5))]
            out.append("<think>t</think><answer>" + json.dumps(items).replace('"NaN"', "NaN") + "</answer>")
        elif k == 6:
            out.append(f"Current IoU: {rng.choice(nums)}, {rng.choice(['Positive', 'Negative', 'Neg'])} point: "
                       f"({rng.choice(nums)}, {rng.randrange(-5000, 5000)})")
        elif k == 7:
            out.append("".join(rng.choice("<>/[]{}(),.:'\" 0123456789-eE+thinkanswerbox_pointsNaN") for _ in range(rng.randrange(300))))
        elif k == 8:
            out.append(segzero_text([rng.uniform(-1e9, 1e9) for _ in range(4)], [1e300, -1e300], [0, 0]))
        elif k == 9:
            out.append([{"role": "assistant", "content": rng.choice(valid)}])  # conversational (adapter form)
        elif k == 10:
            out.append(rng.choice(valid).replace('"', "'"))
        else:
            items = [{"bbox_2d": [rng.randrange(-50, 100) for _ in range(4)], "point_2d": [rng.randrange(-50, 100)] * 2}
                     for _ in range(rng.choice([0, 1, 3, 150]))]
            out.append(vr_text(items) + ("." * rng.randrange(3)))
    return out


def assert_in_range(scores, scorer):
    ranges = RANGES[scorer]
    for s in scores:
        for key, v in s.items():
            lo, hi = ranges[key]
            assert isinstance(v, float) and math.isfinite(v) and lo <= v <= hi, (scorer, key, v)


HOSTILE = hostile_completions(10_000)
TEXTS = [rewards.completion_text(c) for c in HOSTILE]  # 10,000 per scorer: marked slow (tens of seconds in all)


@pytest.mark.slow
def test_hostile_segzero():
    scores = [segzero_score(t, [10, 20, 30, 40], [[15, 25], [20, 30]]) for t in TEXTS]
    assert_in_range(scores, "segzero")
    assert max(s["bbox_iou"] for s in scores) > 0  # the valid texts inside still score
    scores = [segzero_score(t, [10, 20, 30, 40], [[15, 25], [20, 30]], strict=False, soft_accuracy=True,
                                    image_hw=(64, 64)) for t in TEXTS[:2000]]
    assert_in_range(scores, "segzero")
    assert max(s["bbox_iou"] for s in scores) > 0  # the valid texts inside still score


@pytest.mark.slow
def test_hostile_visionreasoner():
    scores = [visionreasoner_score(t, [[1, 2, 30, 40], [5, 5, 9, 9]], [[5, 6], [6, 6]]) for t in TEXTS]
    assert_in_range(scores, "visionreasoner")
    assert max(s["accuracy"] for s in scores) == 3.0


@pytest.mark.slow
def test_hostile_star():
    h = w = 48
    image = np.zeros((h, w, 3), np.uint8)
    gt = [rect(h, w, 1, 2, 30, 40)]
    seg = FakeSegmenter()
    scores = []
    for i in range(0, len(TEXTS), 8):
        scores += star_group_scores(TEXTS[i:i + 8], gt, seg, image)
    assert len(scores) == len(TEXTS)
    assert_in_range(scores, "star")
    assert seg.predict_many_calls <= len(TEXTS) // 8
    assert max(s["accuracy"] for s in scores) > 0


@pytest.mark.slow
def test_hostile_simpleseg():
    gt = [rect(32, 32, 3, 3, 16, 12)]
    scores = [simpleseg_score(t, gt, (32, 32)) for t in TEXTS]
    assert_in_range(scores, "simpleseg")
    assert max(s["iou"] for s in scores) > 0


@pytest.mark.slow
def test_hostile_clicks():
    pytest.importorskip("seglib.clicker")
    h, w = 40, 40
    state = ClickState(image=np.zeros((h, w, 3), np.uint8), gt_mask=rect(h, w, 10, 10, 20, 20))
    seg = FakeSegmenter()
    scores = []
    for i in range(0, len(TEXTS), 8):
        scores += clicks_group_scores(TEXTS[i:i + 8], state, seg, prm=True)
    assert_in_range(scores, "clicks")
    assert max(s["iou_gain"] for s in scores) > 0 or max(s["format"] for s in scores) == 1.0


# =========================================================================== trl adapters
def test_completion_text_forms():
    assert rewards.completion_text("abc") == "abc"
    assert rewards.completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    assert rewards.completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"},
                                                                       {"type": "text", "text": "b"}]}]) == "ab"
    assert rewards.completion_text(None) == ""


def _image_file(tmp_path, image):
    from PIL import Image

    path = tmp_path / "im.png"
    Image.fromarray(image).save(path)
    return str(path)


def test_trl_adapters_one_function_per_component_named_and_shared():
    paradigm = paradigms.get("boxpoints")
    adapter = rewards.reward_functions(paradigm, rewards=["segzero"])
    funcs = adapter.functions()
    assert [f.__name__ for f in funcs] == ["segzero_think_format", "segzero_answer_format", "segzero_bbox_iou",
                                          "segzero_bbox_l1", "segzero_points"]
    completions = [[{"role": "assistant", "content": segzero_text(GT_BOX, [2, 2], [7, 7])}], "junk"]
    cols = {"style": ["segzero"] * 2, "gt_box": [GT_BOX, GT_BOX], "gt_points": [GT_PTS, GT_PTS]}
    assert [f(prompts=["p", "p"], completions=completions, **cols) for f in funcs] == [[1.0, 0.0]] * 5
    assert len(adapter.timings) == 1  # the five components share one scoring of the batch
    # weights are trl's reward_weights now; a component the row's scorer does not write is None (left out)
    lst = rewards.reward_functions(paradigm, rewards=["segzero", "visionreasoner"]).functions()
    assert lst[-1](["p"], ["junk"], style=["list"], gt_boxes=[json.dumps([GT_BOX])], gt_points=[json.dumps([[2, 2]])]) \
        == [1.0]  # visionreasoner_non_repeat
    assert lst[0](["p"], ["junk"], style=["list"], gt_boxes=[json.dumps([GT_BOX])], gt_points=[json.dumps([[2, 2]])]) \
        == [None]  # segzero_think_format: a list row is not scored by Seg-Zero


def test_trl_star_adapter_groups_rows_and_calls_segmenter_once_per_group(tmp_path):
    h, w = 40, 60
    image = np.zeros((h, w, 3), np.uint8)
    gt = rect(h, w, 0, 0, 9, 9)
    seg = FakeSegmenter()
    funcs = rewards.reward_functions(paradigms.get("boxpoints"), seg, rewards=["star"]).functions()
    assert [f.__name__ for f in funcs] == ["star_format", "star_accuracy", "star_count"]
    good = vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4], "label": "a"}])
    completions = [good, "junk", good, good]  # two prompts, G = 2
    cols = {"sample_id": ["s1", "s1", "s2", "s2"], "image": [image] * 4, "style": ["list"] * 4,
            "image_path": [_image_file(tmp_path, image)] * 4,
            "target_rles": [json.dumps([encode_rle(gt)])] * 2 + [json.dumps([])] * 2}
    results = [f(["p"] * 4, completions, **cols) for f in funcs]
    assert results == [[4.0, 0.0, 4.0, 4.0], [5.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    assert seg.predict_many_calls == 2  # one per prompt group, shared by the three components


def test_trl_clicks_adapter_replays_history(tmp_path):
    pytest.importorskip("seglib.clicker")
    h, w = 50, 100
    image = np.zeros((h, w, 3), np.uint8)
    gt = rect(h, w, 49, 24, 51, 26) | rect(h, w, 9, 9, 11, 11)
    seg = FakeSegmenter()
    funcs = rewards.reward_functions(paradigms.get("clicks"), seg).functions()
    assert [f.__name__ for f in funcs] == ["clicks_format", "clicks_iou_gain"]
    cols = {"sample_id": ["s@1"] * 2, "image": [image] * 2, "image_path": [_image_file(tmp_path, image)] * 2,
            "target_rles": [json.dumps([encode_rle(gt)])] * 2, "clicks": [json.dumps([[50, 25, True]])] * 2}
    gains = funcs[1](["p", "p"], ["Positive point: (105, 210)", "x"], **cols)
    assert gains == pytest.approx([0.5, 0.0])  # IoU 9/18 → 18/18
    assert seg.predict_calls == 1  # the one-click history, replayed once for the group


def test_hostile_smoke_all_scorers_fast():
    """Every 10th hostile completion through every scorer: the unmarked, seconds-long version of the above."""
    pytest.importorskip("seglib.clicker")
    texts = TEXTS[::10]
    h = w = 48
    image = np.zeros((h, w, 3), np.uint8)
    gt = rect(h, w, 1, 2, 30, 40)
    seg = FakeSegmenter()
    assert_in_range([segzero_score(t, [1, 2, 30, 40], [[5, 6], [6, 6]]) for t in texts], "segzero")
    assert_in_range([visionreasoner_score(t, [[1, 2, 30, 40]], [[5, 6]]) for t in texts], "visionreasoner")
    assert_in_range(star_group_scores(texts, [gt], seg, image), "star")
    assert_in_range([simpleseg_score(t, [gt], (h, w)) for t in texts], "simpleseg")
    state = ClickState(image=image, gt_mask=gt)
    assert_in_range(clicks_group_scores(texts, state, seg, prm=True), "clicks")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["", "<think>a</think><answer>", "<answer>[{\"bbox_2d\": "]))
def test_rewards_in_range_on_arbitrary_text(text, prefix):
    t = prefix + text
    assert_in_range([segzero_score(t, GT_BOX, GT_PTS, strict=False)], "segzero")
    assert_in_range([visionreasoner_score(t, [GT_BOX], [[2, 2]])], "visionreasoner")
    assert_in_range([simpleseg_score(t, [rect(16, 16, 1, 1, 5, 5)], (16, 16))], "simpleseg")


# =========================================================================== rules matched to the public code
def test_segzero_format_needs_valid_json():
    # single-quoted pseudo-JSON: coordinates still read (box = GT, points on the GT points), no format credit
    single = "<think>a</think><answer>{'bbox': [0, 0, 9, 9], 'points_1': [2, 2], 'points_2': [7, 7]}</answer>"
    s = segzero_score(single, GT_BOX, GT_PTS)
    assert s == {"think_format": 1.0, "answer_format": 0.0, "bbox_iou": 1.0, "bbox_l1": 1.0, "points": 1.0}
    assert segzero_score(single, GT_BOX, GT_PTS, strict=False)["answer_format"] == 0.0
    assert segzero_score(single, GT_BOX, GT_PTS, allow_extra_keys=True)["answer_format"] == 0.0
    # the same answer in double quotes: full credit
    assert segzero_score(single.replace("'", '"'), GT_BOX, GT_PTS)["answer_format"] == 1.0


def test_segzero_strict_keys_exact_or_present():
    label = '<think>a</think><answer>{"bbox": [0,0,9,9], "points_1": [2,2], "points_2": [7,7], "label": "cat"}</answer>'
    assert segzero_score(label, GT_BOX, GT_PTS)["answer_format"] == 0.0  # paper: exactly the three keys
    assert segzero_score(label, GT_BOX, GT_PTS, allow_extra_keys=True)["answer_format"] == 1.0
    missing = '<think>a</think><answer>{"bbox": [0,0,9,9], "points_1": [2,2], "label": "cat"}</answer>'
    assert segzero_score(missing, GT_BOX, GT_PTS, allow_extra_keys=True)["answer_format"] == 0.0
    text_pt = '<think>a</think><answer>{"bbox": [0,0,9,9], "points_1": [2,2], "points_2": ["7",7]}</answer>'
    assert segzero_score(text_pt, GT_BOX, GT_PTS, allow_extra_keys=True)["answer_format"] == 0.0


def test_non_repeat_reads_prose_only():
    # the answer's decimals are not sentences: split at every "." the JSON below would give
    # "[10", "5,10", "5,10", "5,10", "5]…" -> "5,10" twice repeated -> 0; the prose "<think>One object" has none
    t = '<think>One object.</think><answer>[{"bbox_2d":[10.5,10.5,10.5,10.5],"point_2d":[10.5,10.5]}]</answer>'
    assert visionreasoner_score(t, [], [])["non_repeat"] == 1.0
    assert visionreasoner_score(t, [], [], allowed_repeats=0)["non_repeat"] == 1.0
    issue = '<think>ok</think><answer>[{"bbox_2d":[10.5,10.5,20.5,20.5],"point_2d":[15,15]}]</answer>'
    assert visionreasoner_score(issue, [], [], allowed_repeats=0)["non_repeat"] == 1.0
    # decimals inside prose do not end sentences: "At 1.5 and 2.5", "At 3.5 and 4.5" differ (split at every
    # "." they would give "5" three times)
    t = '<think>Go. At 1.5 and 2.5. At 3.5 and 4.5.</think><answer>[]</answer>'
    assert sentences(t) == ["<think>Go", "At 1.5 and 2.5", "At 3.5 and 4.5", "</think>"]
    assert visionreasoner_score(t, [], [], allowed_repeats=0)["non_repeat"] == 1.0
    # an unclosed (truncated) answer is removed to the end; a bare JSON answer after </think> too
    assert sentences('<think>A.</think><answer>[{"bbox_2d":[1.5,1.5') == ["<think>A", "</think>"]
    assert sentences('<think>A. B.</think>[{"bbox_2d": [1.5, 2.5, 3, 4]}]') == ["<think>A", "B", "</think>"]
    # prose repeats still count: "X" three times after "<think>X" -> "X", "X" are 2 repeats
    t = '<think>X. X. X.</think><answer>[]</answer>'
    assert sentences(t) == ["<think>X", "X", "X", "</think>"]
    assert visionreasoner_score(t, [], [])["non_repeat"] == 1.0  # one repeat ("X" again): allowed
    t = '<think>X. X. X. X.</think><answer>[]</answer>'  # "X" ×3 after "<think>X": 2 repeats
    assert visionreasoner_score(t, [], [])["non_repeat"] == 0.0


def test_star_non_string_and_blank_labels_only_cost_format():
    h, w = 40, 60
    image = np.zeros((h, w, 3), np.uint8)
    gt = [rect(h, w, 0, 0, 9, 9)]
    seg = FakeSegmenter()
    # label 3: think 1 + box 1 + point 1 + label 0 = 3; the box is exact (fake segmenter fills it) -> tier 5; M = N
    three = vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4], "label": 3}])
    assert star_group_scores([three], gt, seg, image)[0] == {"format": 3.0, "accuracy": 5.0, "count": 1.0}
    blank = vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4], "label": "  \n"}])
    assert star_group_scores([blank], gt, seg, image)[0] == {"format": 3.0, "accuracy": 5.0, "count": 1.0}
    # single-quoted JSON: think 1 only for format, accuracy still read
    single = vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4], "label": "a"}]).replace('"', "'")
    assert star_group_scores([single], gt, seg, image)[0] == {"format": 1.0, "accuracy": 5.0, "count": 1.0}


def test_star_public_formulas_by_hand():
    h, w = 40, 60
    image = np.zeros((h, w, 3), np.uint8)
    gt = [rect(h, w, 0, 0, 9, 9), rect(h, w, 30, 10, 49, 29)]  # A, B
    # target boxes from the masks: A (0,0,9,9), B (30,10,49,29); target points (padded rule, k=1):
    # A: depth min(x+1, 10-x, y+1, 10-y) = 5 first at (4, 4); B: min(x-29, 50-x, y-9, 30-y) = 10 first at (39, 19)
    seg = FakeSegmenter()
    texts = [
        vr_text([{"bbox_2d": [30, 10, 49, 29], "point_2d": [40, 20], "label": "b"},
                 {"bbox_2d": [0, 0, 9, 7], "point_2d": [4, 4], "label": "a"}]),
        vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [4, 4], "label": "a"}]),
        vr_text([]),
    ]
    s1 = star_group_scores(texts, gt, seg, image, formula="code_stage1")
    # text 0: b-B tier 5 + IoU 1 + L1 0 + point (40,20) inside, √2 from (39,19) -> 8;
    #         a-A mask IoU 80/100 = 0.8 -> tier 3, box IoU 0.8 -> 1, L1 (0+0+0+2)/4 = 0.5 -> 1, point 0 px -> 1: 6;
    #         cross pairs 0 (IoU 0, L1 ≥ 25, points far) -> (8 + 6) / 2 = 7, count 1 (total 8)
    assert s1[0] == {"format": 4.0, "accuracy": 7.0, "count": 1.0}
    assert s1[1] == {"format": 4.0, "accuracy": 4.0, "count": 0.0}  # 8 / max(1, 2)
    assert s1[2] == {"format": 4.0, "accuracy": 0.0, "count": 0.0}
    s2 = star_group_scores(texts, gt, seg, image, formula="code_stage2")
    assert s2[0] == {"format": 4.0, "accuracy": 8.0, "count": 0.0}  # 2 × (5 + 3) / 2
    assert s2[1] == {"format": 4.0, "accuracy": 5.0, "count": 0.0}  # 2 × 5 / 2
    # empty answer, empty target: the top of each range
    assert star_group_scores([vr_text([])], [], seg, image, formula="code_stage1")[0] == {
        "format": 4.0, "accuracy": 8.0, "count": 1.0}
    assert star_group_scores([vr_text([])], [], seg, image, formula="code_stage2")[0] == {
        "format": 4.0, "accuracy": 10.0, "count": 0.0}
    # a point outside its own box loses the point term only: 5 + 1 + 1 + 0 = 7
    out = vr_text([{"bbox_2d": [0, 0, 9, 9], "point_2d": [20, 20], "label": "a"}])
    assert star_group_scores([out], gt[:1], seg, image, formula="code_stage1")[0]["accuracy"] == 7.0
    # no point at all: segmented by the box; 5 + 1 + 1 + 0 = 7
    nopt = vr_text([{"bbox_2d": [0, 0, 9, 9], "label": "a"}])
    assert star_group_scores([nopt], gt[:1], seg, image, formula="code_stage1")[0]["accuracy"] == 7.0
    with pytest.raises(ValueError):
        star_group_scores([nopt], gt, seg, image, formula="stage3")[0]


def test_star_formulas_stay_in_range_on_hostile_text():
    h = w = 48
    image = np.zeros((h, w, 3), np.uint8)
    gt = [rect(h, w, 1, 2, 30, 40), rect(h, w, 35, 35, 47, 47)]
    seg = FakeSegmenter()
    for formula, ranges in STAR_RANGES.items():
        scores = star_group_scores(TEXTS[::10], gt, seg, image, formula=formula)
        for sc in scores:
            for key, v in sc.items():
                lo, hi = ranges[key]
                assert isinstance(v, float) and math.isfinite(v) and lo <= v <= hi, (formula, key, v)
        assert max(sc["accuracy"] for sc in scores) > 0


def test_points_rule_reaches_boxpoints_targets_and_rows():
    from seglib.paradigms import boxpoints

    m = np.zeros((7, 7), bool)
    m[:, 0:4] = True  # see tests/test_masks.py: padded (1,1),(1,4); Seg-Zero's code (0,0),(0,4)
    (obj,) = boxpoints.objects_from_masks([m])
    assert obj.box == (0.0, 0.0, 3.0, 6.0) and obj.points == ((1.0, 1.0), (1.0, 4.0))
    (obj,) = boxpoints.objects_from_masks([m], points_rule="segzero_code")
    assert obj.points == ((0.0, 0.0), (0.0, 4.0))
    text = boxpoints.target_text([obj], 7, 7)
    assert '"points_1": [0, 0], "points_2": [0, 4]' in text


def test_parser_can_drop_a_non_string_label():
    from seglib.paradigms import boxpoints

    data = [{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3], "label": 7}]
    assert boxpoints.parse_json_value(data) is None  # the parser's default: malformed
    ans = boxpoints.parse_json_value(data, strict_label=False)
    assert ans.objects[0].box == (1, 2, 3, 4) and ans.objects[0].points == ((2, 3),) and ans.objects[0].label is None


def test_points_rule_reaches_grpo_rows_and_sft_targets(tmp_path):
    from PIL import Image

    from seglib.data import Sample

    m = np.zeros((7, 7), bool)
    m[:, 0:4] = True  # padded (1,1),(1,4); Seg-Zero's code (0,0),(0,4)
    Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(tmp_path / "im.png")
    s = Sample(sample_id="s0", image_path=str(tmp_path / "im.png"), query="the block", kind="referring",
               split="train", height=7, width=7, target_rles=[encode_rle(m)])
    assert paradigms.get("boxpoints").rl_rows([s])[0]["gt_points"] == [[1.0, 1.0], [1.0, 4.0]]
    coded = paradigms.get("boxpoints", points_rule="segzero_code")
    (row,) = coded.rl_rows([s])
    assert row["gt_box"] == [0.0, 0.0, 3.0, 6.0] and row["gt_points"] == [[0.0, 0.0], [0.0, 4.0]]
    (example,) = coded.sft_examples([s])
    assert '"points_1": [0, 0], "points_2": [0, 4]' in example.target
