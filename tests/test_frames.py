"""seglib.frames: hand-computed conversions and round-trip properties."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seglib import frames


def test_segzero_resize_forward_is_int_v_times_s_over_w_plus_half():
    # W=640, H=480, S=840: x=10 → int(13.125 + .5) = 13; y=20 → int(35.0 + .5) = 35
    # x=30 → int(39.375 + .5) = 39; y=40 → int(70.0 + .5) = 70
    assert frames.to_resized([10, 20, 30, 40], 640, 480, 840) == [13, 35, 39, 70]
    # rounding at exactly .5: W=4, S=10 → x=1 → 2.5 + .5 = 3.0 → 3
    assert frames.to_resized([1, 1], 4, 4, 10) == [3, 3]


def test_segzero_resize_back_scales_by_w_over_s():
    assert frames.from_resized([420, 210], 1000, 500, 840) == pytest.approx([500.0, 125.0])
    assert frames.from_resized([7, 9], 50, 60, None) == [7.0, 9.0]
    assert frames.to_resized([7, 9], 50, 60, None) == [7, 9]


def test_resize_rejects_odd_length_and_bad_size():
    with pytest.raises(ValueError):
        frames.to_resized([1, 2, 3], 10, 10)
    with pytest.raises(ValueError):
        frames.from_resized([1, 2], 0, 10)


def test_grid_hand_values():
    # W=100: pixel 0 has centre 0.5 → 5; pixel 99 → 995; grid 500 → 500*100/1000 - .5 = 49.5 → rounds down to 49
    assert frames.to_grid(0, 99, 100, 100) == (5, 995)
    assert frames.from_grid(500, 500, 100, 100) == (49, 49)
    assert frames.from_grid(1000, 0, 100, 100) == (99, 0)
    assert frames.from_grid(5000, -50, 100, 100) == (99, 0)  # clipped into the image


@given(st.integers(1, 1000), st.integers(1, 1000), st.data())
def test_grid_round_trip_exact_up_to_1000_px(width, height, data):
    x = data.draw(st.integers(0, width - 1))
    y = data.draw(st.integers(0, height - 1))
    g = frames.to_grid(x, y, width, height)
    assert 0 <= g[0] <= 1000 and 0 <= g[1] <= 1000
    assert frames.from_grid(*g, width, height) == (x, y)


@given(st.integers(1, 2000), st.integers(1, 2000), st.data())
def test_resize_round_trip_within_half_a_resized_pixel(width, height, data):
    x = data.draw(st.integers(0, width - 1))
    y = data.draw(st.integers(0, height - 1))
    back = frames.from_resized(frames.to_resized([x, y], width, height, 840), width, height, 840)
    assert abs(back[0] - x) <= 0.5 * width / 840 + 1e-9
    assert abs(back[1] - y) <= 0.5 * height / 840 + 1e-9


def test_unit_square_three_decimals_and_back():
    u = frames.to_unit(np.array([[0, 0], [50, 25], [99, 199]]), 100, 200)
    assert u.tolist() == [[0.0, 0.0], [0.5, 0.125], [0.99, 0.995]]
    np.testing.assert_allclose(frames.from_unit(u, 100, 200), [[0, 0], [50, 25], [99, 199]])
    assert frames.to_unit(np.array([[1, 2]]), 3, 3).tolist() == [[0.333, 0.667]]
    assert frames.format_unit(0.5) == "0.500" and frames.format_unit(1) == "1.000"
    assert frames.format_unit(-2) == "0.000"


def test_clip_point_and_box():
    assert frames.clip_point(-3.2, 7.6, 10, 5) == (0, 4)
    assert frames.clip_point(float("nan"), 2.4, 10, 5) == (0, 2)
    assert frames.clip_box([12, -1, 3.4, 2.6], 10, 5) == (3, 0, 9, 3)
    # (width, height) order; the cases of the former masks.clip_box(box, height, width)
    assert frames.clip_box((-3, 2.4, 12, 7.6), 10, 6) == (0, 2, 9, 5)
    assert frames.clip_box((5, 5, 1, 1), 10, 10) == (1, 1, 5, 5)


def test_snap_to_cell_gives_the_cell_centre_by_hand():
    # 112 px in 28 cells of 4 px: pixel 13 lies in cell 3 (12..15), centre 13.5
    assert frames.snap_to_cell(13, 0, 112, 112, 28) == (13.5, 1.5)
    assert frames.snap_to_cell(111, 111, 112, 112, 28) == (109.5, 109.5)
    assert frames.snap_to_cell(-5, 500, 112, 112, 28) == (1.5, 109.5)  # clamped to the border cells
    with pytest.raises(ValueError):
        frames.snap_to_cell(1, 1, 112, 112, 0)


@given(x=st.integers(0, 111), y=st.integers(0, 111))
def test_snapped_clicks_take_28_grid_values_and_stay_within_2_px(x, y):
    cx, cy = frames.snap_to_cell(x, y, 112, 112, 28)
    assert abs(cx - x) <= 2 and abs(cy - y) <= 2
    gx, _ = frames.to_grid(cx, cy, 112, 112)
    assert gx in {frames.to_grid(4 * i + 1.5, 0, 112, 112)[0] for i in range(28)}


def test_snap_unit_rounds_to_the_lattice():
    got = frames.snap_unit(np.array([[0.0, 0.02], [0.5, 0.51], [0.99, 1.0]]), 28)
    assert np.allclose(got * 28, np.round(got * 28))
    assert np.allclose(got, [[0, 1 / 28], [14 / 28, 14 / 28], [1, 1]])
