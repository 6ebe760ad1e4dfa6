"""F_sim (seglib.clicker.next_click): hand-worked cases of the RITM rule, plus properties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seglib.clicker import Click, error_depth, next_click


def square(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def test_obvious_deepest_pixel_is_the_centre_of_a_missed_square():
    gt = square(7, 7, 1, 5, 1, 5)  # 5x5 block: centre (3, 3) is 3 px from the nearest background pixel
    click = next_click(gt, np.zeros_like(gt))
    assert click == Click(3, 3, True)
    assert error_depth(gt)[3, 3] == 3.0


def test_thicker_false_positive_wins_over_thinner_false_negative():
    gt = square(12, 12, 1, 3, 1, 3)  # 3x3 missed block: depth 2
    pred = square(12, 12, 5, 9, 5, 9)  # 5x5 block outside gt: depth 3
    assert next_click(gt, pred) == Click(7, 7, False)
    # and the other way round
    gt2 = square(12, 12, 5, 9, 5, 9)
    pred2 = square(12, 12, 1, 3, 1, 3)
    assert next_click(gt2, pred2) == Click(7, 7, True)


def test_tie_goes_negative():
    gt = square(12, 12, 1, 3, 1, 3)  # FN 3x3, depth 2 at (2, 2)
    pred = square(12, 12, 6, 8, 6, 8)  # FP 3x3, depth 2 at (7, 7)
    assert next_click(gt, pred) == Click(7, 7, False)


def test_image_border_counts_as_region_edge():
    # gt fills columns 0..4 of a 9x12 image, touching the top, bottom and left borders.
    # With the 1 px zero padding the deepest depth is 3 (columns 2, rows 2..6); the
    # first of those in raster order is (x=2, y=2). Without padding it would be column 0.
    gt = np.zeros((9, 12), bool)
    gt[:, :5] = True
    depth = error_depth(gt)
    assert depth.max() == 3.0
    assert depth[0, 0] == 1.0  # a corner pixel is 1 px from the border
    assert next_click(gt, None) == Click(2, 2, True)


def test_full_image_error_is_deepest_in_the_middle():
    gt = np.ones((5, 5), bool)
    assert next_click(gt, np.zeros_like(gt)) == Click(2, 2, True)


def test_already_clicked_pixel_is_skipped():
    gt = square(7, 7, 1, 5, 1, 5)
    # 5x5 block: centre (3, 3) depth 3, the ring around it depth 2, the outer ring 1.
    # RITM (default): (3, 3) is set to 0 after the transform; the ring keeps depth 2 and
    # its first pixel in raster order is (2, 2).
    click = next_click(gt, None, clicked=[Click(3, 3, True)])
    assert click == Click(2, 2, True)
    assert error_depth(gt, [(3, 3)])[2, 2] == 2.0
    assert error_depth(gt, [(3, 3)])[3, 3] == 0.0
    assert next_click(gt, None, clicked=[(3, 3)]) == click  # plain (x, y) tuples work too
    # before_transform: (3, 3) becomes an edge, the ring has depth min(2, dist to (3, 3)):
    # sqrt(2) at the diagonal neighbours, 1 at the side ones; first maximum (2, 2).
    assert np.isclose(error_depth(gt, [(3, 3)], "before_transform")[2, 2], np.sqrt(2))
    assert error_depth(gt, [(3, 3)], "before_transform")[3, 2] == 1.0
    assert next_click(gt, None, [(3, 3)], clicked_rule="before_transform") == Click(2, 2, True)


def test_clicked_rule_ones_3x4():
    # gt = ones(3, 4), empty prediction, earlier click (x=1, y=1) ignored by the segmenter.
    # Padded by 1 px of zeros, depths are row 0: 1 1 1 1, row 1: 1 2 2 1, row 2: 1 1 1 1.
    # after_transform: (1, 1) -> 0, the maximum 2 is left at (2, 1).
    # before_transform: (1, 1) is an edge, so (2, 1) is 1 px from it; every pixel has depth 1
    # and the first in raster order is (0, 0).
    gt = np.ones((3, 4), bool)
    assert next_click(gt, None, [(1, 1)]) == Click(2, 1, True)
    assert next_click(gt, None, [(1, 1)], clicked_rule="before_transform") == Click(0, 0, True)
    expected_after = np.array([[1, 1, 1, 1], [1, 0, 2, 1], [1, 1, 1, 1]], np.float32)
    assert np.array_equal(error_depth(gt, [(1, 1)]), expected_after)
    assert np.array_equal(error_depth(gt, [(1, 1)], "before_transform"),
                          np.array([[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 1]], np.float32))


def test_clicked_rule_flips_the_sign():
    # 3 x 9 image. gt = columns 0..3 (FN, as ones(3, 4) above: depth 2 at (1, 1) and (2, 1)).
    # pred = a plus centred at (7, 1): (7, 0), (6, 1), (7, 1), (8, 1), (7, 2) (all FP).
    # Its centre's 4-neighbours are FP but (6, 0) is not: depth sqrt(2); the arms have depth 1.
    # Earlier positive click (1, 1), ignored.
    # after_transform: max d_fn = 2 (at (2, 1)) > sqrt(2): positive click at (2, 1).
    # before_transform: max d_fn = 1 < sqrt(2): negative click at the plus centre (7, 1).
    gt = np.zeros((3, 9), bool)
    gt[:, :4] = True
    pred = np.zeros((3, 9), bool)
    for x, y in [(7, 0), (6, 1), (7, 1), (8, 1), (7, 2)]:
        pred[y, x] = True
    assert next_click(gt, pred, [Click(1, 1, True)]) == Click(2, 1, True)
    assert next_click(gt, pred, [Click(1, 1, True)], clicked_rule="before_transform") == Click(7, 1, False)


def test_clicked_rule_unknown_is_refused():
    with pytest.raises(ValueError, match="clicked_rule"):
        next_click(np.ones((2, 2), bool), None, clicked_rule="sometimes")


def test_all_clicked_error_gives_none_under_both_rules():
    # error = two pixels (0, 0) and (1, 0) of a 2 x 3 gt row, both already clicked
    gt = np.zeros((2, 3), bool)
    gt[0, :2] = True
    for rule in ("after_transform", "before_transform"):
        assert next_click(gt, None, [(0, 0), (1, 0)], clicked_rule=rule) is None
        assert next_click(gt, None, [(0, 0)], clicked_rule=rule) == Click(1, 0, True)


def test_everything_clicked_gives_none():
    gt = np.zeros((4, 4), bool)
    gt[1, 2] = True
    assert next_click(gt, None) == Click(2, 1, True)
    assert next_click(gt, None, clicked=[Click(2, 1, True)]) is None


def test_perfect_mask_gives_none():
    gt = square(6, 6, 1, 3, 2, 4)
    assert next_click(gt, gt.copy()) is None
    assert next_click(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["after_transform", "before_transform"]))
def test_click_lands_on_an_unclicked_error_pixel_of_its_sign(seed, rule):
    rng = np.random.default_rng(seed)
    gt = rng.random((9, 11)) < 0.5
    pred = rng.random((9, 11)) < 0.5
    clicked = [(int(rng.integers(0, 11)), int(rng.integers(0, 9))) for _ in range(3)]
    click = next_click(gt, pred, clicked, clicked_rule=rule)
    if click is None:
        err = gt ^ pred
        for x, y in clicked:
            err[y, x] = False
        assert not err.any()
        return
    assert (click.x, click.y) not in clicked
    if click.positive:
        assert gt[click.y, click.x] and not pred[click.y, click.x]
    else:
        assert pred[click.y, click.x] and not gt[click.y, click.x]
