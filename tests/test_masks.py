"""seglib.masks: hand-computed cases and hypothesis properties."""
import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglib.masks import (
    box_from_mask,
    box_iou,
    box_iou_matrix,
    decode_rle,
    encode_rle,
    mask_iou,
    mask_iou_matrix,
    mask_to_polygons,
    masks_union,
    overlay,
    polygon_signed_area,
    polygons_to_mask,
    representative_points,
)


def grid(rows):
    return np.array([[c == "#" for c in r] for r in rows])


PRED = grid([".....", ".###.", ".###.", ".....", "....."])  # 6 px
GT = grid([".....", ".....", "..###", "..###", "....."])  # 6 px; overlap (2,2),(3,2)


# ----------------------------------------------------------------- RLE


def test_rle_counts_is_str_and_json_ready():
    rle = encode_rle(PRED)
    assert rle["size"] == [5, 5]
    assert isinstance(rle["counts"], str)
    assert np.array_equal(decode_rle(json.loads(json.dumps(rle))), PRED)


def test_decode_uncompressed_rle():
    # column-major runs: 5 zeros (col 0), 1 zero, 2 ones, 2 zeros (col 1), ...
    m = np.zeros((5, 5), bool)
    m[1:3, 1] = True
    rle = {"size": [5, 5], "counts": [6, 2, 17]}
    assert np.array_equal(decode_rle(rle), m)


def test_decode_rle_bad_input_names_it():
    with pytest.raises(ValueError, match="size"):
        decode_rle({"counts": "abc"})


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_rle_round_trip_exact(mask):
    out = decode_rle(encode_rle(mask))
    assert out.dtype == bool and out.shape == mask.shape
    assert np.array_equal(out, mask)


# ----------------------------------------------------------------- IoU and boxes


def test_mask_iou_by_hand():
    assert mask_iou(PRED, GT) == pytest.approx(2 / 10)
    assert mask_iou(PRED, PRED) == 1.0
    assert mask_iou(PRED, np.zeros((5, 5), bool)) == 0.0
    assert mask_iou(np.zeros((5, 5), bool), np.zeros((5, 5), bool)) == 1.0


def test_mask_iou_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(PRED, np.zeros((4, 5), bool))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 0, 9, 9), (0, 0, 9, 9), 1.0),
        ((0, 0, 9, 9), (5, 5, 14, 14), 25 / 175),  # 10x10 boxes, 5x5 overlap
        ((0, 0, 4, 4), (4, 4, 8, 8), 1 / 49),  # inclusive: share one pixel
        ((0, 0, 4, 4), (5, 0, 9, 4), 0.0),  # adjacent, no shared pixel
        ((2, 2, 2, 2), (2, 2, 2, 2), 1.0),  # one-pixel boxes have area 1
        ((0, 0, 3, 1), (2, 0, 5, 1), 4 / 12),  # 4x2 boxes, 2x2 overlap
    ],
)
def test_box_iou_inclusive(a, b, expected):
    assert box_iou(a, b) == pytest.approx(expected)
    assert box_iou(b, a) == pytest.approx(expected)


def test_box_from_mask_inclusive():
    assert box_from_mask(PRED) == (1, 1, 3, 2)
    assert box_from_mask(GT) == (2, 2, 4, 3)
    one = np.zeros((5, 5), bool)
    one[4, 0] = True
    assert box_from_mask(one) == (0, 4, 0, 4)


def test_box_from_empty_mask_raises():
    with pytest.raises(ValueError, match="empty"):
        box_from_mask(np.zeros((3, 3), bool))


def _box_mask(box, height, width):
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def test_box_iou_of_masks_boxes_matches_mask_iou_of_box_masks():
    a, b = box_from_mask(PRED), box_from_mask(GT)
    assert box_iou(a, b) == pytest.approx(mask_iou(_box_mask(a, 5, 5), _box_mask(b, 5, 5)))


def test_iou_matrices_agree_with_the_pairwise_rules():
    empty = np.zeros((5, 5), bool)
    preds, gts = [PRED, GT, empty], [GT, empty]
    got = mask_iou_matrix(preds, gts)
    assert got.shape == (3, 2)
    assert got.tolist() == [[mask_iou(p, g) for g in gts] for p in preds]
    assert got[2, 1] == 1.0  # both empty: StAR's rule
    boxes_a = np.array([[0, 0, 3, 3], [2, 2, 4, 4]])
    boxes_b = np.array([[0, 0, 3, 3], [10, 10, 12, 12], [1, 1, 2, 2]])
    got = box_iou_matrix(boxes_a, boxes_b)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, [[box_iou(a, b) for b in boxes_b] for a in boxes_a])
    assert got[0, 0] == 1.0 and got[0, 2] == 4 / 16 and got[1, 1] == 0.0


def test_masks_union():
    assert np.count_nonzero(masks_union([PRED, GT])) == 10
    assert masks_union([], 3, 4).shape == (3, 4)
    with pytest.raises(ValueError):
        masks_union([])


# ----------------------------------------------------------------- representative points


def test_points_square_centre():
    m = np.zeros((21, 21), bool)
    m[5:16, 5:16] = True  # 11x11, unique inscribed-circle centre (10, 10)
    assert representative_points(m, k=1) == [(10, 10)]
    assert representative_points(m)[0] == (10, 10)


def test_points_mask_touching_border_counts_border_as_edge():
    full = np.ones((5, 5), bool)  # without border padding every pixel would tie
    assert representative_points(full, k=1) == [(2, 2)]


def test_points_two_squares_second_point_in_smaller_square():
    # big 11x11 square centred (10, 10), small 7x7 square centred (38, 13).
    # p1 is the big centre (distance 6); pixels beyond the median distance from
    # p1 are the big square's outer corners (distance transform ≤ 3) and the
    # whole small square, whose centre has distance 4.
    m = np.zeros((30, 50), bool)
    m[5:16, 5:16] = True
    m[10:17, 35:42] = True
    assert representative_points(m) == [(10, 10), (38, 13)]


def test_points_ring_both_on_ring_and_opposite():
    ring = np.zeros((41, 41), np.uint8)
    cv2.circle(ring, (20, 20), 15, 1, -1)
    cv2.circle(ring, (20, 20), 9, 0, -1)
    ring = ring.astype(bool)
    (x1, y1), (x2, y2) = representative_points(ring)
    assert ring[y1, x1] and ring[y2, x2]
    # p1 sits mid-ring (radius ≈ 12), p2 on the far side of the hole
    assert 10 <= np.hypot(x1 - 20, y1 - 20) <= 14
    assert np.hypot(x2 - x1, y2 - y1) > 18


def test_points_single_pixel_uses_fallback():
    m = np.zeros((7, 7), bool)
    m[3, 4] = True
    assert representative_points(m) == [(4, 3), (4, 3)]


def test_points_empty_and_bad_k():
    with pytest.raises(ValueError, match="empty"):
        representative_points(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="k"):
        representative_points(PRED, k=3)


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_points_always_on_mask(mask):
    if not mask.any():
        return
    for x, y in representative_points(mask):
        assert mask[y, x]


def test_points_segzero_code_rule_border_is_not_an_edge():
    m = np.zeros((7, 7), bool)
    m[:, 0:4] = True  # columns x = 0..3, all rows
    # padded: depth min(x+1, 4-x, y+1, 7-y), max 2 first at (1, 1). Squared distances from (1, 1) sorted:
    # 0, 1×4, 2×4, 4×2, 5×4, ... -> 14th and 15th of 28 are both 5: median √5. Beyond it (d² > 5), raster
    # order: (3,3) d² 8 depth 1, (0,4) d² 10 depth 1, (1,4) d² 9 depth 2 = the max -> p2 (1, 4).
    assert representative_points(m) == [(1, 1), (1, 4)]
    # no padding: depth 4 - x (the only background is x ≥ 4), max 4 first at (0, 0). Squared distances
    # from (0, 0): y² + {0, 1, 4, 9}; 14th and 15th of 28 are both 13: median √13. The first pixel of
    # column 0 beyond it is (0, 4) (d² 16), depth 4 = the max -> p2 (0, 4).
    assert representative_points(m, rule="segzero_code") == [(0, 0), (0, 4)]
    assert representative_points(m, k=1, rule="segzero_code") == [(0, 0)]


def test_points_segzero_code_rule_same_away_from_border():
    m = np.zeros((7, 7), bool)
    m[2:5, 2:5] = True  # 3×3 block inside the image: both rules see the same edges
    # p1 (3, 3): depth 2 (background 2 px away on each side); distances from it: 0, 1×4, √2×4,
    # median 1; beyond it the four corners, depth 1 each -> first (2, 2)
    assert representative_points(m) == [(3, 3), (2, 2)]
    assert representative_points(m, rule="segzero_code") == [(3, 3), (2, 2)]
    with pytest.raises(ValueError, match="rule"):
        representative_points(m, rule="edge")


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_points_segzero_code_always_on_mask(mask):
    if not mask.any():
        return
    for x, y in representative_points(mask, rule="segzero_code"):
        assert mask[y, x]


# ----------------------------------------------------------------- polygons


def test_polygon_of_rectangle_by_hand():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True  # x 3..6, y 2..4
    (poly,) = mask_to_polygons(m, 0.001)
    # clockwise on screen from the top-most, left-most vertex
    assert poly.tolist() == [[3, 2], [6, 2], [6, 4], [3, 4]]
    assert poly.dtype == np.float64
    assert polygon_signed_area(poly) == pytest.approx(3 * 2)
    # pycocotools (default) samples pixel (x, y) at (x + 1/2, y + 1/2): inside [3, 6] x [2, 4]
    # are x + 1/2 in {3.5, 4.5, 5.5} and y + 1/2 in {2.5, 3.5}: x 3..5, y 2..3, 6 px.
    expected = np.zeros((10, 10), bool)
    expected[2:4, 3:6] = True
    assert np.array_equal(polygons_to_mask([poly], 10, 10), expected)
    assert np.array_equal(polygons_to_mask([poly], 10, 10, outline=True), m)  # the edges give back x = 6, y = 4


def test_signed_area_sign_convention():
    clockwise_on_screen = [(0, 0), (1, 0), (1, 1), (0, 1)]  # right, then down
    assert polygon_signed_area(clockwise_on_screen) == 1.0
    assert polygon_signed_area(clockwise_on_screen[::-1]) == -1.0


def test_several_parts_give_several_polygons():
    m = np.zeros((20, 20), bool)
    m[2:6, 2:6] = True
    m[10:15, 8:18] = True
    polys = mask_to_polygons(m, 0.001)
    assert len(polys) == 2
    assert polys[0][0].tolist() == [2, 2] and polys[1][0].tolist() == [8, 10]
    assert np.array_equal(polygons_to_mask(polys, 20, 20, outline=True), m)
    # default: each part loses its right column and bottom row (x 2..4, y 2..4; x 8..16, y 10..13)
    expected = np.zeros((20, 20), bool)
    expected[2:5, 2:5] = True
    expected[10:14, 8:17] = True
    assert np.array_equal(polygons_to_mask(polys, 20, 20), expected)


def test_polygons_to_mask_ignores_short_and_bad():
    out = polygons_to_mask([[(1, 1), (3, 3)], [], [(0, 0), (np.nan, 1), (2, 2)]], 5, 5)
    assert not out.any() and out.shape == (5, 5)
    assert not polygons_to_mask([], 4, 6).any()
    assert not mask_to_polygons(np.zeros((4, 4), bool))


def _ellipse(h, w, cx, cy, ax, ay, angle):
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (cx, cy), (ax, ay), angle, 0, 360, 1, -1)
    return m.astype(bool)


ellipses = st.builds(
    lambda cx, cy, ax, ay, angle: _ellipse(96, 128, cx, cy, ax, ay, angle),
    st.integers(45, 83),
    st.integers(40, 56),
    st.integers(12, 40),
    st.integers(12, 38),
    st.integers(0, 179),
)


@settings(max_examples=40, deadline=None)
@given(ellipses)
def test_polygon_round_trip_iou_on_smooth_convex_shapes(mask):
    polys = mask_to_polygons(mask, 0.001)
    assert len(polys) == 1
    assert mask_iou(polygons_to_mask(polys, *mask.shape, outline=True), mask) >= 0.9
    assert mask_iou(polygons_to_mask(polys, *mask.shape), mask) >= 0.8


@settings(max_examples=40, deadline=None)
@given(ellipses, st.sampled_from([0.0, 0.001, 0.005, 0.02]))
def test_polygons_clockwise_from_top_left_vertex(mask, ratio):
    for poly in mask_to_polygons(mask, ratio):
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        assert polygon_signed_area(poly) > 0  # clockwise with y down
        top = poly[:, 1].min()
        assert poly[0, 1] == top and poly[0, 0] == poly[poly[:, 1] == top, 0].min()


def test_larger_epsilon_gives_fewer_vertices():
    m = _ellipse(96, 128, 64, 48, 40, 30, 20)
    counts = [len(mask_to_polygons(m, r)[0]) for r in (0.001, 0.005, 0.02)]
    assert counts[0] > counts[1] > counts[2] >= 3


# ----------------------------------------------------------------- overlay


def test_overlay_green_half_by_hand():
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0] = 100
    image[..., 2] = 51
    mask = np.array([[True, False], [False, True]])
    out = overlay(image, mask)
    assert out.dtype == np.uint8
    # 0.5*100 = 50; 0.5*0 + 0.5*255 = 127.5 → 128 (half-up); 0.5*51 = 25.5 → 26
    assert out[0, 0].tolist() == [50, 128, 26]
    assert out[1, 1].tolist() == [50, 128, 26]
    assert out[0, 1].tolist() == [100, 0, 51]
    assert image[0, 0].tolist() == [100, 0, 51]  # input untouched
    assert np.array_equal(overlay(image, mask, color=(255, 0, 0), alpha=1.0)[0, 0], [255, 0, 0])


def test_overlay_rejects_bad_input():
    with pytest.raises(ValueError, match="mask shape"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="uint8"):
        overlay(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), bool))
