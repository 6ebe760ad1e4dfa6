"""Hand-worked cases for F_sim's clicked-pixel rule and SimpleSeg's polygon decoding / orientation, and the
options that switch them, threaded through trajectories, inference, SFT options and the reward."""
import json

import numpy as np
import pytest

from seglib.masks import mask_to_polygons, polygon_signed_area, polygons_to_mask
from seglib.paradigms import polygon
from seglib.paradigms.polygon.reward import simpleseg_score
from seglib.segmenters import Prediction
from seglib.trajectories import simulate


# ----------------------------------------------------------------- F_sim through trajectories
class _Sample:
    sample_id = "ones34"
    height, width = 3, 4

    def union_mask(self):
        return np.ones((3, 4), bool)

    def image(self):
        return np.zeros((3, 4, 3), np.uint8)


class _Ignores:
    """A segmenter that ignores every click: the mask stays empty."""

    name = "ignores"

    def set_image(self, image):
        pass

    def predict(self, points_xy, labels, box_xyxy=None, mask_logits=None):
        return Prediction(np.zeros((3, 4), bool), 0.0, np.zeros((2, 2)))


@pytest.mark.parametrize("rule, second", [("after_transform", [2, 1, True]), ("before_transform", [0, 0, True])])
def test_trajectory_second_click_follows_the_clicked_rule(rule, second):
    # gt = ones(3, 4), padded depths row 1: 1 2 2 1 -> first click (1, 1) under both rules.
    # The segmenter ignores it (IoU stays 0, gain 0 is kept with tau_diff 0). Second click:
    # after_transform: (1, 1) -> 0, (2, 1) keeps depth 2; before_transform: all depths 1 -> (0, 0).
    traj = simulate(_Sample(), _Ignores(), max_clicks=2, tau_diff=0.0, clicked_rule=rule)
    assert [s.click for s in traj.steps] == [[1, 1, True], second]
    assert traj.settings["clicked_rule"] == rule
    assert traj.stop_reason == "max_clicks"


# ----------------------------------------------------------------- polygon decoding
SQUARE = [(0, 0), (2, 0), (2, 2), (0, 2)]


def test_square_decodes_to_4_px_as_pycocotools():
    # pycocotools samples pixel (x, y) at (x + 1/2, y + 1/2); inside [0, 2] x [0, 2] are
    # x + 1/2, y + 1/2 in {0.5, 1.5}: the 4 pixels with x, y in {0, 1}.
    expected = np.array([[1, 1, 0, 0],
                         [1, 1, 0, 0],
                         [0, 0, 0, 0],
                         [0, 0, 0, 0]], bool)
    assert np.array_equal(polygons_to_mask([SQUARE], 4, 4), expected)
    # with the outline option the edges through the pixel centres 0 and 2 add the rest of the 3 x 3 block
    with_outline = np.array([[1, 1, 1, 0],
                             [1, 1, 1, 0],
                             [1, 1, 1, 0],
                             [0, 0, 0, 0]], bool)
    assert np.array_equal(polygons_to_mask([SQUARE], 4, 4, outline=True), with_outline)
    assert polygons_to_mask([SQUARE[::-1]], 4, 4).sum() == 4  # vertex order does not matter


def test_rectangle_decodes_half_open():
    # (1, 1)-(4, 1)-(4, 3)-(1, 3): samples x + 1/2 in {1.5, 2.5, 3.5}, y + 1/2 in {1.5, 2.5}: 3 x 2 = 6 px
    expected = np.zeros((5, 6), bool)
    expected[1:3, 1:4] = True
    assert np.array_equal(polygons_to_mask([[(1, 1), (4, 1), (4, 3), (1, 3)]], 5, 6), expected)


def test_polygon_decode_takes_the_outline_option():
    # unit square answer of a 4 x 4 image: [0, 0.5] maps to pixel centres 0 .. 2 (x = u * W)
    answer = [np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]])]
    assert polygon.decode(answer, 4, 4).sum() == 4
    assert polygon.decode(answer, 4, 4, outline=True).sum() == 9


# ----------------------------------------------------------------- orientation
def test_mask_to_polygons_orientation_by_hand():
    m = np.zeros((5, 6), bool)
    m[1:4, 1:5] = True  # x 1..4, y 1..3: corners (1, 1) (4, 1) (4, 3) (1, 3)
    (cw,) = mask_to_polygons(m, 0.001)
    (ccw,) = mask_to_polygons(m, 0.001, orientation="ccw")
    # clockwise on screen (y down): right along the top, down, left along the bottom
    assert cw.tolist() == [[1, 1], [4, 1], [4, 3], [1, 3]]
    # counter-clockwise on screen: down the left edge first, from the same top-left vertex
    assert ccw.tolist() == [[1, 1], [1, 3], [4, 3], [4, 1]]
    # shoelace with y down: cw = 0.5 * (1*1 - 4*1 + 4*3 - 4*1 + 4*3 - 1*3 + 1*1 - 1*3) = +6; ccw = -6
    assert polygon_signed_area(cw) == 6.0 and polygon_signed_area(ccw) == -6.0
    with pytest.raises(ValueError, match="orientation"):
        mask_to_polygons(m, orientation="up")


def test_sft_options_carry_orientation_into_the_target():
    from seglib.paradigms import get
    from seglib.paradigms.base import State

    class S:
        query, width, height, sample_id = "the box", 20, 10, "s"

        def target_masks(self):
            m = np.zeros((10, 20), bool)
            m[2:5, 4:10] = True
            return [m]

    paradigm = get("polygon", {"orientation": "ccw", "outline": True})
    state = State(sample=S(), image=np.zeros((10, 20, 3), np.uint8))
    text = paradigm.target_text(state, paradigm.oracle_answer(state))
    assert text == "[[[0.200,0.200],[0.200,0.400],[0.450,0.400],[0.450,0.200]]]"


# ----------------------------------------------------------------- the SimpleSeg reward
def test_simpleseg_reward_default_and_outline_by_hand():
    h, w = 30, 40  # diagonal 50
    gt = np.zeros((h, w), bool)
    gt[0:10, 0:10] = True  # x, y 0..9: 100 px, centroid (4.5, 4.5)
    text = polygon.target_text([gt], w, h)  # corners (0, 0) (9, 0) (9, 9) (0, 9)
    # default: pycocotools gives x, y 0..8: 81 px inside gt -> IoU 81 / 100; centroid (4, 4),
    # sqrt(0.5) px from gt's: 1 - sqrt(0.5) / 50
    s = simpleseg_score(text, [gt], (h, w))
    assert s == pytest.approx({"iou": 0.81, "centroid": 1 - np.sqrt(0.5) / 50, "format": 1.0})
    assert simpleseg_score(text, [gt], (h, w), outline=True) == {"iou": 1.0, "centroid": 1.0, "format": 1.0}


def test_grpo_scorer_passes_the_outline_option():
    from seglib.masks import encode_rle
    from seglib.paradigms import get

    gt = np.zeros((30, 40), bool)
    gt[0:10, 0:10] = True
    text = polygon.target_text([gt], 40, 30)
    row = {"target_rles": json.dumps([encode_rle(gt)]), "height": 30, "width": 40}
    for outline, iou in ((False, 0.81), (True, 1.0)):
        score = get("polygon", outline=outline).score_group
        assert score([text], row)[0]["simpleseg_iou"] == pytest.approx(iou)


# ----------------------------------------------------------------- inference and task files
def test_outline_option_reaches_decode_and_the_task_file(tmp_path):
    from seglib.inference.task import load_task, save_task
    from seglib.paradigms import get
    from seglib.paradigms.base import State

    text = "[[[0.0,0.0],[0.5,0.0],[0.5,0.5],[0.0,0.5]]]"  # the 3 x 3 square of a 4 x 4 image
    state = State(sample=None, image=np.zeros((4, 4, 3), np.uint8))
    assert get("polygon").decode_text(state, text)[0].union(4, 4).sum() == 4
    paradigm = get("polygon", outline=True)
    assert paradigm.options.outline is True
    assert paradigm.decode_text(state, text)[0].union(4, 4).sum() == 9
    save_task(tmp_path, paradigm)
    assert load_task(tmp_path).options.outline is True
    save_task(tmp_path, get("polygon"))
    assert load_task(tmp_path).options.outline is False

