"""seglib.metrics: hand-computed gIoU / cIoU, Acc@0.5, NoC."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglib.metrics import IoUMeter, acc_at_05, calibration, hungarian_sum, noc


def m(rows):
    return np.array([[c == "#" for c in r] for r in rows])


GT_A = m(["####", "####", "....", "...."])  # 8 px
PRED_A = m(["##..", "##..", "##..", "...."])  # 6 px; I = 4, U = 10
GT_B = m(["#...", "....", "....", "...."])  # 1 px
EMPTY = np.zeros((4, 4), bool)


def test_giou_ciou_by_hand():
    meter = IoUMeter()
    assert meter.update(PRED_A, GT_A) == pytest.approx(0.4)  # 4 / 10
    assert meter.update(GT_B, GT_B) == 1.0  # 1 / 1
    assert meter.update(None, GT_A) == 0.0  # unparsable: I = 0, U = 8
    assert meter.update(EMPTY, EMPTY) == 1.0  # StAR's rule; adds nothing to ΣI, ΣU
    assert meter.count == 4
    assert meter.per_sample == pytest.approx([0.4, 1.0, 0.0, 1.0])
    assert meter.giou == pytest.approx(2.4 / 4)
    assert meter.ciou == pytest.approx((4 + 1 + 0 + 0) / (10 + 1 + 8 + 0))


def test_prediction_on_empty_query_scores_zero():
    meter = IoUMeter()
    assert meter.update(GT_B, EMPTY) == 0.0
    assert meter.ciou == 0.0
    assert meter.update(EMPTY, EMPTY) == 1.0  # an empty answer to an empty query
    assert meter.update(None, EMPTY) == 0.0  # garbage earns nothing, even when nothing is there
    assert meter.giou == pytest.approx(1 / 3)


def test_meter_before_updates_and_bad_shapes():
    meter = IoUMeter()
    assert (meter.giou, meter.ciou, meter.count) == (0.0, 0.0, 0)
    with pytest.raises(ValueError, match="differs"):
        meter.update(np.zeros((3, 3), bool), GT_A)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(arrays(bool, (6, 6)), arrays(bool, (6, 6)), st.booleans()), min_size=1, max_size=8))
def test_meter_fractions_in_unit_interval(samples):
    meter = IoUMeter()
    for pred, gt, unparsable in samples:
        meter.update(None if unparsable else pred, gt)
    assert 0.0 <= meter.giou <= 1.0 and 0.0 <= meter.ciou <= 1.0
    assert all(0.0 <= v <= 1.0 for v in meter.per_sample)


def test_acc_at_05_by_hand():
    gt = [(0, 0, 9, 9), (0, 0, 9, 9), (0, 0, 9, 9), (0, 0, 3, 1)]
    pred = [
        (0, 0, 9, 9),  # IoU 1 → hit
        (5, 5, 14, 14),  # 25 / 175 → miss
        None,  # unparsable → miss
        (0, 0, 2, 1),  # 6 / 8 = 0.75 → hit
    ]
    assert acc_at_05(pred, gt) == 0.5
    # exactly 0.5 counts: 10x10 against 10x5 inside it → 50 / 100
    assert acc_at_05([(0, 0, 9, 4)], [(0, 0, 9, 9)]) == 1.0
    assert acc_at_05([], []) == 0.0
    with pytest.raises(ValueError):
        acc_at_05([None], [])


def test_noc_index_zero_is_after_first_click():
    ious = [0.5, 0.84, 0.86, 0.91]
    assert noc(ious, 0.85) == 3
    assert noc(ious, 0.90) == 4
    assert noc(ious, 0.50) == 1
    assert noc(ious, 0.95) == 20  # never reached → capped
    assert noc(ious, 0.95, max_clicks=5) == 5
    assert noc([0.1] * 25 + [0.99], 0.9) == 20  # beyond the cap does not count
    assert noc([], 0.85) == 20


def test_hungarian_sum_by_hand():
    # greedy would take 0.9 (row 0 → col 0) and then 0.1; the best matching is 0.8 + 0.7
    gain = np.array([[0.9, 0.8], [0.7, 0.1]])
    total, matches = hungarian_sum(gain)
    assert total == pytest.approx(1.5) and matches == 2
    assert hungarian_sum(np.zeros((0, 3))) == (0.0, 0)
    assert hungarian_sum(np.array([[0.2, 0.6, 0.1]])) == (pytest.approx(0.6), 1)


def test_calibration_by_hand():
    cal = calibration([0.5, 0.7, 0.9], [0.4, 0.8, 0.9])
    assert cal["n"] == 3 and cal["mae"] == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert cal["pearson"] == pytest.approx(np.corrcoef([0.5, 0.7, 0.9], [0.4, 0.8, 0.9])[0, 1])
    assert calibration([], []) == {"mae": None, "pearson": None, "n": 0}
    assert calibration([0.5, 0.5], [0.1, 0.9])["pearson"] is None  # a constant side
    with pytest.raises(ValueError, match="calibration"):
        calibration([0.5], [0.5, 0.6])
