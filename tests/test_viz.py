"""seglib.viz: figures build headless and land under <run_dir>/figures/."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dataclasses import dataclass  # noqa: E402
from seglib.masks import mask_to_polygons, representative_points  # noqa: E402
from seglib.viz import click_markers, gallery, save_figure, show_sample, trajectory_strip  # noqa: E402



@dataclass
class Click:  # same fields as seglib.clicker.Click
    x: int
    y: int
    positive: bool


IMAGE = np.full((32, 48, 3), 90, np.uint8)
MASK = np.zeros((32, 48), bool)
MASK[8:20, 10:30] = True


def test_show_sample_draws_box_at_inclusive_pixel_edges():
    fig, ax = plt.subplots()
    show_sample(ax, IMAGE, [MASK], boxes=[(10, 8, 29, 19)], points=representative_points(MASK),
                polygons=mask_to_polygons(MASK, 0.001), title="q")
    (rect,) = ax.patches[:1]
    assert rect.get_xy() == (9.5, 7.5) and rect.get_width() == 20 and rect.get_height() == 12
    shown = ax.images[0].get_array()
    assert tuple(shown[10, 15]) == (50, 164, 50)  # 0.55*90 = 49.5 -> 50; 49.5 + 0.45*255 = 164.25 -> 164
    assert tuple(shown[0, 0]) == (90, 90, 90)
    plt.close(fig)


def test_click_markers_colours():
    fig, ax = plt.subplots()
    click_markers(ax, [Click(3, 4, True), (5, 6, False)])
    click_markers(ax, [{"x": 1, "y": 1, "positive": True}], hollow=True)
    faces = [c.get_facecolors() for c in ax.collections]
    assert faces[0][0][1] > 0.7 and faces[1][0][0] > 0.8  # green, then red
    assert len(faces[2]) == 0 or faces[2][0][3] == 0  # hollow
    plt.close(fig)


def test_gallery_trajectory_and_save(tmp_path):
    fig = gallery([{"image": IMAGE, "masks": MASK, "title": "a"}, {"image": IMAGE, "masks": [], "clicks": [(1, 2, True)]}], ncols=3)
    path = save_figure(fig, tmp_path, "01_gallery", close=True)
    assert path == tmp_path / "figures" / "01_gallery.png" and path.stat().st_size > 0
    strip = trajectory_strip(IMAGE, [MASK, MASK], [Click(15, 12, True), Click(2, 2, False)], [0.5, 0.9])
    assert len(strip.axes) == 2
    plt.close(strip)
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path, "../escape")
