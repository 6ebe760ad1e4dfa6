"""Segmenters: the SAM2 backend's real code with random hiera-t weights (shapes, coordinate
transform, cache, batching) and the weightless classic backend on hand-drawn scenes."""
import warnings

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seglib.masks import mask_iou
from seglib.segmenters import Prompt, build_segmenter, image_key

H, W = 48, 80  # non-square on purpose: an x/y swap or a wrong scale would show


def scene(h=H, w=W, seed=0):
    """Grey gradient background with a red square (rows 10..25, cols 20..39) and a blue disc."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = 120 + 30 * np.linspace(0, 1, w)[None, :, None] + rng.normal(0, 1.5, (h, w, 3))
    square = np.zeros((h, w), bool)
    square[10:26, 20:40] = True
    img[square] = (215, 40, 40)
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (60, 30), 8, 1, -1)
    img[disc.astype(bool)] = (40, 80, 215)
    return np.clip(img, 0, 255).astype(np.uint8), square, disc.astype(bool)


# ------------------------------------------------------------------------------------- SAM2
S = 128  # model input side: small, so the random-weight hiera-t encodes in a fraction of a second


@pytest.fixture(scope="module")
def sam2_seg():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine is shared; oversubscribed threads crawl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = build_segmenter("sam2", sam2_config="configs/sam2.1/sam2.1_hiera_t.yaml", image_size=S,
                              decode_batch_size=0)  # 0: every prompt of a structure in one decoder call
    yield seg
    torch.set_num_threads(threads)


def test_sam2_output_shapes_and_logits_feed_back(sam2_seg):
    img, square, _ = scene()
    sam2_seg.set_image(img)
    pred = sam2_seg.predict([(30, 18), (5, 5)], [1, 0], box_xyxy=(20, 10, 39, 25))
    assert pred.mask.shape == (H, W) and pred.mask.dtype == bool
    assert isinstance(pred.score, float)
    assert pred.logits.shape == (1, S // 4, S // 4)
    again = sam2_seg.predict([(30, 18)], [1], mask_logits=pred.logits)
    assert again.mask.shape == (H, W)
    with pytest.raises(ValueError, match="mask_logits"):
        sam2_seg.predict([(30, 18)], [1], mask_logits=np.zeros((H, W)))


def test_sam2_prompt_lands_in_model_frame(sam2_seg):
    """The prompt encoder must receive x * S / W and y * S / H: captured with a hook."""
    img, _, _ = scene()
    sam2_seg.set_image(img)
    seen = {}

    def hook(module, args, kwargs):
        seen["points"] = kwargs["points"]

    handle = sam2_seg.predictor.model.sam_prompt_encoder.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        sam2_seg.predict([(30, 18)], [1], box_xyxy=(20, 10, 39, 25))
    finally:
        handle.remove()
    coords, labels = seen["points"]
    s = S
    expected = np.array([[20 * s / W, 10 * s / H], [39 * s / W, 25 * s / H], [30 * s / W, 18 * s / H]])
    np.testing.assert_allclose(coords[0].numpy(), expected, rtol=1e-6)
    assert labels[0].tolist() == [2, 3, 1]  # box corners (top-left, bottom-right), then the positive click


def test_sam2_encodes_each_image_once(sam2_seg, monkeypatch):
    calls = []
    real = sam2_seg.predictor.set_image
    monkeypatch.setattr(sam2_seg.predictor, "set_image", lambda im: (calls.append(1), real(im)))
    a, _, _ = scene(seed=1)
    b, _, _ = scene(seed=2)
    assert sam2_seg.set_image(a) is True
    assert sam2_seg.set_image(a) is False
    assert sam2_seg.set_image(a.copy()) is False  # same content, new array
    for _ in range(3):
        sam2_seg.predict([(30, 18)], [1])
    assert len(calls) == 1
    assert sam2_seg.set_image(b) is True and len(calls) == 2
    edited = b.copy()
    edited[0, 0, 0] ^= 1  # one bit differs: a different image
    assert sam2_seg.set_image(edited) is True and len(calls) == 3


def test_sam2_batched_equals_one_by_one(sam2_seg):
    img, _, _ = scene(seed=3)
    sam2_seg.set_image(img)
    first = sam2_seg.predict([(30, 18)], [1])
    prompts = [Prompt([(25 + i, 15), (50, 40)], [1, 0], (18 + i, 8, 42, 27)) for i in range(5)]
    prompts += [Prompt([(30, 18)], [1], None, first.logits), Prompt([(61, 30)], [1], None, first.logits)]
    prompts += [Prompt([], [], (10, 5, 70, 40))]
    calls = []
    handle = sam2_seg.predictor.model.sam_mask_decoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        batched = sam2_seg.predict_many(prompts)
    finally:
        handle.remove()
    assert len(calls) == 3  # one decoder call per structure: box+2 points (x5), 1 point+logits (x2), box alone
    single = [sam2_seg.predict_many([p])[0] for p in prompts]
    assert len(batched) == len(prompts)
    for b, s in zip(batched, single):
        np.testing.assert_array_equal(b.mask, s.mask)
        assert b.score == pytest.approx(s.score, abs=1e-5)
        np.testing.assert_allclose(b.logits, s.logits, atol=1e-4)


# ------------------------------------------------------------------------------------ common
def test_sam2_cpu_default_decodes_one_prompt_per_call():
    """On CPU the decoder is memory-bound, so by default prompts go one per call; on GPU all in one."""
    from seglib.segmenters.sam2 import default_decode_batch_size

    assert default_decode_batch_size("cpu") == 1
    assert default_decode_batch_size("cuda") == default_decode_batch_size("cuda:1") == 0


def test_image_key_and_prompt_checks():
    img, _, _ = scene()
    assert image_key(img) == image_key(img.copy())
    seg = build_segmenter("classic")
    with pytest.raises(RuntimeError, match="set_image"):
        seg.predict([(1, 1)], [1])
    with pytest.raises(ValueError, match="uint8 RGB"):
        seg.set_image(img.astype(np.float32))
    seg.set_image(img)
    with pytest.raises(ValueError, match="labels"):
        seg.predict([(1, 1), (2, 2)], [1])
    with pytest.raises(ValueError, match="labels must be"):
        seg.predict([(1, 1)], [2])
    with pytest.raises(ValueError, match="unknown segmenter"):
        build_segmenter("grabcut")


# ----------------------------------------------------------------------------------- classic
def test_classic_one_click_gives_the_exact_object():
    img, square, disc = scene()
    seg = build_segmenter("classic")
    seg.set_image(img)
    pred = seg.predict([(30, 18)], [1])
    np.testing.assert_array_equal(pred.mask, square)
    assert pred.logits.shape == (H, W) and 0.5 < pred.score < 1.0
    np.testing.assert_array_equal(seg.predict([(60, 30)], [1]).mask, disc)


def test_classic_box_and_points_and_union_of_clicks():
    img, square, disc = scene()
    seg = build_segmenter("classic")
    seg.set_image(img)
    np.testing.assert_array_equal(seg.predict([(25, 12), (35, 22)], [1, 1], box_xyxy=(20, 10, 39, 25)).mask, square)
    # a box alone seeds its centre
    np.testing.assert_array_equal(seg.predict([], [], box_xyxy=(52, 22, 68, 38)).mask, disc)
    # two positive clicks on two objects → both; a negative click on one removes it
    both = seg.predict([(30, 18), (60, 30)], [1, 1]).mask
    np.testing.assert_array_equal(both, square | disc)
    # off-image points are clipped, not an error
    assert seg.predict([(-5, 500)], [1]).mask.shape == (H, W)


def test_classic_negative_click_splits_a_same_coloured_region():
    img, _, _ = scene()
    img[30:40, 5:15] = (215, 40, 40)  # a second red square touching nothing
    img[26:30, 25:30] = (215, 40, 40)  # and a red bridge joining the first square to nothing else
    seg = build_segmenter("classic")
    seg.set_image(img)
    with_bridge = seg.predict([(30, 18)], [1]).mask
    assert with_bridge[27, 27] and not with_bridge[35, 10]
    cut = seg.predict([(30, 18), (27, 29)], [1, 0]).mask
    assert not cut[29, 27] and cut[18, 30]


def test_classic_ring_hole_stays_background():
    img = np.full((60, 60, 3), 130, np.uint8)
    ring = np.zeros((60, 60), np.uint8)
    cv2.circle(ring, (30, 30), 20, 1, -1)
    cv2.circle(ring, (30, 30), 10, 0, -1)
    ring = ring.astype(bool)
    img[ring] = (240, 135, 30)
    seg = build_segmenter("classic")
    seg.set_image(img)
    np.testing.assert_array_equal(seg.predict([(30, 14)], [1]).mask, ring)
    np.testing.assert_array_equal(seg.predict([(30, 14), (30, 45)], [1, 1], box_xyxy=(10, 10, 50, 50)).mask, ring)


def test_classic_predict_many_matches_predict_and_caches():
    img, square, _ = scene()
    seg = build_segmenter("classic")
    seg.set_image(img)
    seg.set_image(img.copy())
    assert seg.encode_count == 1
    prompts = [Prompt([(30, 18)], [1]), Prompt([(60, 30)], [1], (50, 20, 70, 40)), Prompt([], [], None, None)]
    many = seg.predict_many(prompts)
    for p, m in zip(prompts, many):
        np.testing.assert_array_equal(m.mask, seg.predict(p.points_xy, p.labels, p.box_xyxy).mask)
    assert not many[2].mask.any()
    prev = seg.predict([(30, 18)], [1])
    np.testing.assert_array_equal(seg.predict([], [], mask_logits=prev.logits).mask, square)


_coord = st.floats(-50, 150, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_coord, _coord, st.integers(0, 1)), max_size=4),
       st.none() | st.tuples(_coord, _coord, _coord, _coord))
def test_classic_takes_any_prompt_in_or_off_the_image(points, box):
    """Policy output is hostile: off-image points, inverted or degenerate boxes never break a call."""
    img, _, _ = scene()
    seg = _CLASSIC
    seg.set_image(img)
    pred = seg.predict([(x, y) for x, y, _ in points], [lab for _, _, lab in points], box_xyxy=box)
    assert pred.mask.shape == (H, W) and pred.mask.dtype == bool and 0.0 <= pred.score < 1.0
    if box is not None and not any(lab == 1 for _, _, lab in points):  # no clicked object: nothing outside the box
        x0, x1 = sorted(np.clip([box[0], box[2]], 0, W - 1))
        y0, y1 = sorted(np.clip([box[1], box[3]], 0, H - 1))
        ys, xs = np.nonzero(pred.mask)
        assert (xs >= np.rint(x0)).all() and (xs <= np.rint(x1)).all()
        assert (ys >= np.rint(y0)).all() and (ys <= np.rint(y1)).all()


_CLASSIC = build_segmenter("classic")


def test_classic_box_that_clips_the_clicked_object_still_gives_the_whole_object():
    """A predicted box is rarely exact: cutting through the clicked object must not cut the mask (SAM-like)."""
    img, square, disc = scene()
    seg = _CLASSIC
    seg.set_image(img)
    clipped = seg.predict([(25, 15)], [1], box_xyxy=(22, 12, 33, 21)).mask  # inside the square on all sides
    assert mask_iou(clipped, square) > 0.95 and not (clipped & disc).any()
    tight = seg.predict([(25, 15)], [1], box_xyxy=(20, 10, 39, 25)).mask  # the exact box: unchanged
    assert mask_iou(tight, square) > 0.95
    loose = seg.predict([], [], box_xyxy=(22, 12, 33, 21)).mask  # no click: the box stays a wall
    ys, xs = np.nonzero(loose)
    assert xs.min() >= 22 and xs.max() <= 33 and ys.min() >= 12 and ys.max() <= 21


def test_sam2_missing_checkpoint_names_the_parameter(tmp_path):
    from seglib.segmenters import build_segmenter

    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    with pytest.raises(FileNotFoundError) as err:
        build_segmenter("sam2", sam2_config="configs/sam2.1/sam2.1_hiera_t.yaml", sam2_checkpoint=str(missing))
    assert "sam2_checkpoint" in str(err.value) and str(missing) in str(err.value)
