"""The weightless segmenter's box rule: a box is a hint, not a wall, and growth past it stays inside the
box enlarged by ``box_margin`` × side (floor ``box_margin_px``); expected masks follow from that rule."""
import hashlib
import tempfile

import cv2
import numpy as np

from seglib.clicker import next_click
from seglib.data import load_samples, synthref
from seglib.masks import mask_iou
from seglib.segmenters import build_segmenter

N = 80
GREY, RED, BLUE = (128, 128, 128), (215, 40, 40), (40, 80, 215)


def disc_image(cx=40, cy=40, r=10):
    img = np.full((N, N, 3), GREY, np.uint8)
    disc = np.zeros((N, N), np.uint8)
    cv2.circle(disc, (cx, cy), r, 1, -1)
    disc = disc.astype(bool)
    img[disc] = RED
    return img, disc


def rect(x0, y0, x1, y1):
    out = np.zeros((N, N), bool)
    out[max(0, y0): y1 + 1, max(0, x0): x1 + 1] = True
    return out


def test_box_that_clips_a_disc_within_the_margin_returns_the_whole_disc():
    img, disc = disc_image()  # the disc spans 30..50 on both axes
    seg = build_segmenter("classic")
    seg.set_image(img)
    # box 34..46 (side 13) clips 4 px on every side; margin round(0.5 * 13) = 6 px → enlarged box 28..52 holds the disc
    pred = seg.predict([(40, 40)], [1], box_xyxy=(34, 34, 46, 46)).mask
    np.testing.assert_array_equal(pred, disc)
    two = seg.predict([(40, 40), (38, 43)], [1, 1], box_xyxy=(34, 34, 46, 46)).mask
    np.testing.assert_array_equal(two, disc)


def test_disc_larger_than_the_enlarged_box_is_clipped_to_it():
    img, disc = disc_image()
    seg = build_segmenter("classic")
    seg.set_image(img)
    # box 38..42 (side 5): margin max(3 px floor, round(2.5) = 2) = 3 → enlarged box 35..45
    pred = seg.predict([(40, 40)], [1], box_xyxy=(38, 38, 42, 42)).mask
    np.testing.assert_array_equal(pred, disc & rect(35, 35, 45, 45))
    wider = build_segmenter("classic", box_margin=1.0, box_margin_px=0)  # margin 5 px → 33..47
    wider.set_image(img)
    np.testing.assert_array_equal(wider.predict([(40, 40)], [1], box_xyxy=(38, 38, 42, 42)).mask,
                                  disc & rect(33, 33, 47, 47))


def test_positive_point_on_background_floods_at_most_the_enlarged_box():
    img = np.full((N, N, 3), GREY, np.uint8)
    img[:, :30] = (170, 170, 170)  # a lighter band x < 30: the point's colour, on part of the box's ring
    band = np.zeros((N, N), bool)
    band[:, :30] = True
    seg = build_segmenter("classic")
    seg.set_image(img)
    # box 20..50 (side 31): margin round(15.5) = 16 → enlarged box 4..66; the light band is seeded nowhere inside it
    pred = seg.predict([(25, 35)], [1], box_xyxy=(20, 20, 50, 50)).mask
    enlarged = rect(4, 4, 66, 66)
    np.testing.assert_array_equal(pred, band & enlarged)
    assert pred.sum() < band.sum()  # not the whole band of the image


def test_only_point_on_plain_background_stays_inside_the_enlarged_box():
    img, disc = disc_image()
    seg = build_segmenter("classic")
    seg.set_image(img)
    # the only positive point is on background inside the box 26..54 (side 29, margin 14 → 12..68)
    # no ring pixel is seeded (all are the point's grey), so the flood fills exactly the enlarged box
    pred = seg.predict([(29, 29)], [1], box_xyxy=(26, 26, 54, 54)).mask
    np.testing.assert_array_equal(pred, rect(12, 12, 68, 68))
    assert pred.sum() == 57 * 57 < N * N


def test_point_on_background_beside_a_point_on_the_object_seeds_nothing():
    img, disc = disc_image()
    seg = build_segmenter("classic")
    seg.set_image(img)
    # the second point lies on the grey the whole ring of the box 27..53 shows: it is dropped
    pred = seg.predict([(40, 40), (29, 29)], [1, 1], box_xyxy=(27, 27, 53, 53)).mask
    np.testing.assert_array_equal(pred, disc)


def test_box_adds_the_other_parts_of_a_two_colour_object():
    img, disc = disc_image()
    img[disc & (np.arange(N)[None, :] >= 40)] = BLUE  # right half of the disc blue
    red = disc & (np.arange(N)[None, :] < 40)
    seg = build_segmenter("classic")
    seg.set_image(img)
    # no box: a click on red grows red only (the red→blue step is larger than grey→blue)
    np.testing.assert_array_equal(seg.predict([(35, 40)], [1]).mask, red)
    # the exact box: inside it, blue differs from the grey ring, so it joins
    np.testing.assert_array_equal(seg.predict([(35, 40)], [1], box_xyxy=(30, 30, 50, 50)).mask, disc)
    off = build_segmenter("classic", box_contrast=None)
    off.set_image(img)
    np.testing.assert_array_equal(off.predict([(35, 40)], [1], box_xyxy=(30, 30, 50, 50)).mask, red)


def test_box_alone_is_still_a_wall():
    img, disc = disc_image()
    seg = build_segmenter("classic")
    seg.set_image(img)
    pred = seg.predict([], [], box_xyxy=(34, 34, 46, 46)).mask  # centre seed, no positive point
    assert pred.any() and not (pred & ~rect(34, 34, 46, 46)).any()
    assert mask_iou(seg.predict([], [], box_xyxy=(30, 30, 50, 50)).mask, disc) == 1.0


def click_masks_digest(seg, difficulty: str) -> str:
    """sha256 of the masks of up to 4 F_sim clicks (no box) on 12 generated 64 px val images."""
    h = hashlib.sha256()
    with tempfile.TemporaryDirectory() as tmp:
        synthref.generate(tmp, 12, seed=5, image_size=64, difficulty=difficulty, split_fractions={"val": 1.0})
        for s in load_samples(tmp, split="val"):
            gt = s.union_mask()
            if not gt.any():
                continue
            seg.set_image(s.image())
            clicks, mask = [], np.zeros_like(gt)
            for _ in range(4):
                c = next_click(gt, mask, clicks)
                if c is None:
                    break
                clicks.append(c)
                mask = seg.predict([(c.x, c.y) for c in clicks], [c.label for c in clicks]).mask
                h.update(np.packbits(mask).tobytes())
    return h.hexdigest()


def test_clicks_without_a_box_give_the_masks_they_gave_before_the_box_rule():
    """Digests written from the segmenter as it was before the box rule changed (no-box path untouched)."""
    seg = build_segmenter("classic")
    assert click_masks_digest(seg, "easy") == "a7209aa294ca9b618817a6622ce169a9a44785a98076b74dbd2c6ed9c4eaee4c"
    assert click_masks_digest(seg, "hard") == "e90446531236cc5b4abd682c78ca3b38bc20e6306b42da5ca39d76ae51284ef5"
