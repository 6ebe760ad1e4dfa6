"""ClickSession: the click loop of the demo, without widgets.

A fake segmenter with an obvious rule (the union of discs of radius R around
the positive clicks minus discs around the negative ones) gives masks and
IoUs that can be worked out by hand; one test uses the real classic backend.
"""
import numpy as np
import pytest

from seglib.clicker import Click, next_click
from hypothesis import given
from hypothesis import strategies as st

from seglib.interactive import (AGENT, HUMAN, ClickSession, ModelClickPolicy, OraclePolicy, load_click_policy,
                                plain_error, render_state, session_figure, unreadable_answer)
from seglib.segmenters import Prediction

H = W = 40
R = 3


def disc(x, y, r=R, h=H, w=W):
    yy, xx = np.mgrid[:h, :w]
    return (xx - x) ** 2 + (yy - y) ** 2 <= r * r


class DiscSegmenter:
    """Mask = ∪ discs(positive) − ∪ discs(negative); records every call."""

    def __init__(self):
        self.encodes = 0
        self._key = None
        self.calls = []  # (points, labels, mask_logits)

    def set_image(self, image):
        key = image.tobytes()
        if key != self._key:
            self._key = key
            self.encodes += 1

    def predict(self, points_xy, labels, box_xyxy=None, mask_logits=None):
        self.calls.append((list(map(tuple, points_xy)), list(labels), mask_logits))
        mask = np.zeros((H, W), bool)
        for (x, y), lab in zip(points_xy, labels):
            if lab == 1:
                mask |= disc(x, y)
        for (x, y), lab in zip(points_xy, labels):
            if lab == 0:
                mask &= ~disc(x, y)
        step = len(self.calls)
        return Prediction(mask, 1.0, np.full((1, 4, 4), float(step), np.float32))

    def predict_many(self, prompts):
        return [self.predict(p.points_xy, p.labels, p.box_xyxy, p.mask_logits) for p in prompts]


@pytest.fixture
def image():
    return np.zeros((H, W, 3), np.uint8)


@pytest.fixture
def gt():
    m = np.zeros((H, W), bool)
    m[10:30, 10:30] = True  # 400 px square
    return m


def test_positive_click_inside_target_raises_iou_from_zero(image, gt):
    s = ClickSession(image, "the square", DiscSegmenter(), gt_mask=gt)
    assert s.iou == 0.0 and s.history == []
    mask = s.add_click(20, 20, True)
    # a radius-3 disc has 29 pixels, all inside the square: IoU = 29 / 400
    assert mask.sum() == 29
    assert s.iou == pytest.approx(29 / 400)
    assert s.history[0]["iou"] == pytest.approx(29 / 400) and s.history[0]["who"] == HUMAN
    assert s.history[0]["latency_s"] >= 0.0


def test_every_click_sends_all_clicks_and_previous_logits_and_encodes_once(image, gt):
    seg = DiscSegmenter()
    s = ClickSession(image, "q", seg, gt_mask=gt)
    s.add_click(15, 15, True)
    s.add_click(25, 25, True)
    s.add_click(16, 16, False)
    assert seg.encodes == 1
    assert seg.calls[2][0] == [(15, 15), (25, 25), (16, 16)] and seg.calls[2][1] == [1, 1, 0]
    assert seg.calls[0][2] is None
    np.testing.assert_array_equal(seg.calls[2][2], s.steps[1].logits)
    # negative disc at (16, 16) removes its overlap with the positive disc at (15, 15)
    assert not s.mask[16, 16] and s.mask[25, 25]


def test_undo_restores_previous_mask_exactly(image, gt):
    seg = DiscSegmenter()
    s = ClickSession(image, "q", seg, gt_mask=gt)
    first = s.add_click(20, 20, True).copy()
    first_iou = s.iou
    s.add_click(21, 20, False)
    assert not np.array_equal(s.mask, first)
    restored = s.undo()
    np.testing.assert_array_equal(restored, first)
    assert s.iou == first_iou and len(s.history) == 1
    # the next click continues from the first step's logits, not the undone one's
    s.add_click(12, 12, True)
    np.testing.assert_array_equal(seg.calls[-1][2], s.steps[0].logits)
    assert seg.calls[-1][0] == [(20, 20), (12, 12)]
    s.undo(), s.undo()
    assert not s.mask.any() and s.undo().sum() == 0  # undo on an empty session is harmless


def test_reset_clears(image, gt):
    s = ClickSession(image, "q", DiscSegmenter(), OraclePolicy(gt), gt_mask=gt)
    s.add_click(20, 20, True)
    s.suggest()
    s.reset()
    assert s.steps == [] and s.clicks == [] and s.pending is None
    assert not s.mask.any() and s.iou == 0.0


def test_suggest_with_oracle_agrees_with_next_click(image, gt):
    s = ClickSession(image, "q", DiscSegmenter(), OraclePolicy(gt), gt_mask=gt)
    first = s.suggest()
    assert first == next_click(gt, np.zeros((H, W), bool))
    # the deepest pixel of a 20x20 square at rows/cols 10..29: the first of the centre four
    assert (first.x, first.y, first.positive) == (19, 19, True)
    s.accept()
    assert s.history[-1]["who"] == AGENT and s.clicks == [first]
    second = s.suggest()
    assert second == next_click(gt, s.mask, clicked=[first])
    assert s.pending[0] == second and s.pending[1] is None


def test_accept_without_suggestion_does_nothing(image, gt):
    s = ClickSession(image, "q", DiscSegmenter(), OraclePolicy(gt), gt_mask=gt)
    assert s.accept() is None and s.steps == []


def test_auto_refine_with_oracle_adds_agent_clicks_that_raise_iou(image, gt):
    s = ClickSession(image, "q", DiscSegmenter(), OraclePolicy(gt), gt_mask=gt)
    s.add_click(20, 20, True)
    added = s.auto_refine(4)
    assert len(added) == 4 and all(st.who == AGENT for st in added)
    ious = [h["iou"] for h in s.history]
    assert ious == sorted(ious) and ious[-1] > ious[0]  # F_sim positive clicks into the square only add


def test_no_policy_means_no_suggestion(image):
    s = ClickSession(image, "q", DiscSegmenter())
    assert s.suggest() is None and s.auto_refine(3) == []
    s.add_click(5, 5, True)
    assert s.iou is None and s.history[0]["iou"] is None  # no ground truth, no IoU


def test_bad_input_is_a_clear_error(image, gt):
    s = ClickSession(image, "q", DiscSegmenter(), gt_mask=gt)
    with pytest.raises(ValueError, match="outside"):
        s.add_click(W, 0, True)
    with pytest.raises(ValueError, match="gt_mask shape"):
        ClickSession(image, "q", DiscSegmenter(), gt_mask=np.zeros((3, 3), bool))


class ScriptedGenerate:
    """A GenerateFn that answers every prompt with the given texts, in turn."""

    def __init__(self, texts):
        self.texts, self.calls = list(texts), 0

    def __call__(self, images, prompts, num_return_sequences=1, do_sample=False):
        out = []
        for _ in prompts:
            row = []
            for _ in range(num_return_sequences):
                row.append(self.texts[self.calls % len(self.texts)])
                self.calls += 1
            out.append(row)
        return out


def test_model_policy_maps_grid_click_and_prm_iou(image, gt):
    # 0-1000 grid on a 40 px image: 500 → pixel 20 (the grid's centre is the image's centre)
    policy = ModelClickPolicy(ScriptedGenerate(["Current IoU: 42.0, Positive point: (500, 500)"]), prm=True)
    s = ClickSession(image, "q", DiscSegmenter(), policy, gt_mask=gt)
    click = s.suggest()
    assert click.positive and abs(click.x - 20) <= 1 and abs(click.y - 20) <= 1
    assert s.pending[1] == pytest.approx(0.42)
    s.accept()
    assert s.steps[0].predicted_iou is None  # "Current IoU" described the empty mask, before this click
    s.suggest()
    assert s.steps[0].predicted_iou == pytest.approx(0.42)  # ... and now describes step 1's mask
    bad = ModelClickPolicy(ScriptedGenerate(["I refuse"]))
    assert ClickSession(image, "q", DiscSegmenter(), bad).suggest() is None


def test_auto_refine_prm_search_applies_best_path(image, gt):
    texts = ["Current IoU: 10.0, Positive point: (500, 500)", "Current IoU: 30.0, Positive point: (300, 300)",
             "Current IoU: 20.0, Positive point: (700, 700)"]
    policy = ModelClickPolicy(ScriptedGenerate(texts), prm=True)
    s = ClickSession(image, "q", DiscSegmenter(), policy, gt_mask=gt)
    added = s.auto_refine(3, k=2)
    assert added and all(st.who == AGENT and st.predicted_iou is not None for st in added)
    assert len(s.steps) == len(added) <= 3
    with pytest.raises(ValueError, match="Reset"):
        s.auto_refine(2, k=2)  # the search starts from an empty mask


def test_real_classic_segmenter_positive_click_raises_iou():
    from seglib.segmenters import build_segmenter

    img = np.full((64, 64, 3), 30, np.uint8)
    target = np.zeros((64, 64), bool)
    target[16:40, 20:48] = True
    img[target] = (220, 60, 60)
    seg = build_segmenter("classic")
    s = ClickSession(img, "the red box", seg, gt_mask=target)
    s.add_click(33, 27, True)
    assert s.iou > 0.5
    assert seg.encode_count == 1


def test_checkpoint_policy_loads_and_proposes_without_raising(tmp_path, image, gt):
    """The adapter end to end on an untrained tiny checkpoint: its text is noise, the session must not care."""
    from seglib.models import build_tiny_policy

    out = tmp_path / "sft-clicks"  # the folder name tells checkpoint_spec the paradigm
    small = {"image_size": 56, "vision_hidden": 32, "vision_layers": 1, "vision_heads": 2, "text_hidden": 32,
             "text_layers": 1, "text_heads": 2, "vocab_size": 300}
    build_tiny_policy(small, ["Segment the square.", "Positive point: (412, 377)", "Negative point: (88, 901)"] * 10,
                      out)
    policy = ModelClickPolicy.from_checkpoint(str(out), max_new_tokens=8)
    s = ClickSession(image, "the square", DiscSegmenter(), policy, gt_mask=gt)
    click = s.suggest()
    assert click is None or (0 <= click.x < W and 0 <= click.y < H)
    if click is None:  # an untrained policy's text is rarely a click: the session must say so
        assert s.message.startswith("no suggestion: the policy's answer")
    added = s.auto_refine(2)
    assert len(added) <= 2 and all(st.who == AGENT for st in added)
    assert s.message.startswith("Auto-refine ")


# ---- what the session says when the agent does nothing

# 80 characters; the message quotes the first 60 of them ("I refuse ... quite lon") and an ellipsis
LONG_REFUSAL = "I refuse to click on anything at all, because this answer is quite long indeed."
FIRST_60 = "I refuse to click on anything at all, because this answer is"


def test_unreadable_answer_is_quoted_on_suggest_accept_and_auto_refine(image, gt):
    assert len(FIRST_60) == 60 and LONG_REFUSAL.startswith(FIRST_60)
    reason = f"the policy's answer could not be read as a click: “{FIRST_60}…”"
    s = ClickSession(image, "q", DiscSegmenter(), ModelClickPolicy(ScriptedGenerate([LONG_REFUSAL])), gt_mask=gt)
    assert s.accept() is None and s.message == "nothing to accept: press Suggest first"
    assert s.suggest() is None and s.pending is None
    assert s.message == "no suggestion: " + reason
    assert s.accept() is None and s.message == "nothing to accept: " + reason
    assert s.auto_refine(3) == [] and s.message == "Auto-refine made no click: " + reason
    assert s.auto_refine(3, k=2) == []
    assert s.message == f"Auto-refine made no click: none of the 2 candidates could be read as a click ({reason})"
    s.add_click(5, 5, True)
    assert s.message == ""  # a click clears the note


def test_empty_and_short_answers_are_explained():
    assert unreadable_answer("") == "the policy's answer was empty, so it could not be read as a click"
    assert unreadable_answer(None) == "the policy's answer was empty, so it could not be read as a click"
    # whitespace runs (newlines from the model) collapse to single spaces; short text is quoted whole
    assert unreadable_answer("Positive\n point:  (a, b)") == (
        "the policy's answer could not be read as a click: “Positive point: (a, b)”")


@given(st.text(max_size=500))
def test_unreadable_answer_never_raises_and_stays_short(text):
    msg = unreadable_answer(text)
    # the fixed sentence is 52 characters, plus at most 60 quoted, 2 quote marks and an ellipsis
    assert isinstance(msg, str) and len(msg) <= 52 + 60 + 3


def test_oracle_with_nothing_to_add_says_so(image):
    target = disc(20, 20)  # the DiscSegmenter draws exactly this for one positive click at (20, 20)
    s = ClickSession(image, "q", DiscSegmenter(), OraclePolicy(target), gt_mask=target)
    s.add_click(20, 20, True)
    assert s.iou == 1.0
    assert s.suggest() is None and s.message.startswith("no suggestion: the F_sim oracle has nothing to add")
    assert s.auto_refine(2) == [] and s.message.startswith("Auto-refine made no click: the F_sim oracle")


def test_auto_refine_reports_how_many_clicks_it_added(image, gt):
    s = ClickSession(image, "q", DiscSegmenter(), OraclePolicy(gt), gt_mask=gt)
    s.auto_refine(2)
    assert s.message == "Auto-refine added 2 click(s)"
    s.undo(), s.undo()
    assert s.undo() is not None and s.message == "nothing to undo: there are no clicks"


def test_without_policy_the_message_names_the_parameter(image):
    s = ClickSession(image, "q", DiscSegmenter())
    s.suggest()
    assert "clicks_policy" in s.message


def test_errors_read_as_plain_sentences(image):
    s = ClickSession(image, "q", DiscSegmenter())
    with pytest.raises(ValueError) as err:
        s.add_click(W, 0, True)
    assert plain_error(err.value) == "Click (40, 0) lies outside the 40x40 image"
    assert plain_error(ZeroDivisionError()) == "the action failed unexpectedly (internal error ZeroDivisionError)"
    assert plain_error(KeyError("x")) == "Missing entry 'x'"


# ---- the fallback to manual clicking


def test_missing_checkpoint_falls_back_with_a_warning(tmp_path, gt):
    policy, warning = load_click_policy("checkpoints/sft-clicks", gt, run_dir=str(tmp_path))
    assert policy is None
    assert "clicks_policy = 'checkpoints/sft-clicks'" in warning
    assert str(tmp_path / "checkpoints" / "sft-clicks") in warning and "manual clicks only" in warning
    absolute = tmp_path / "nowhere"
    policy, warning = load_click_policy(str(absolute), gt, run_dir=str(tmp_path))
    assert policy is None and f"no checkpoint folder at '{absolute}'." in warning


def test_unloadable_checkpoint_and_oracle_without_truth_fall_back(tmp_path, gt):
    broken = tmp_path / "sft-clicks"
    broken.mkdir()  # a folder with no model in it
    policy, warning = load_click_policy(str(broken), gt)
    assert policy is None and "could not be loaded" in warning and "ValueError" not in warning
    policy, warning = load_click_policy("oracle", None)
    assert policy is None and "ground truth" in warning


def test_no_policy_asked_and_oracle_load_without_warning(gt):
    assert load_click_policy(None, gt) == (None, None)
    policy, warning = load_click_policy("oracle", gt)
    assert isinstance(policy, OraclePolicy) and warning is None


# ---- drawing: a see-through blue fill with a contour, markers on top


def test_mask_is_translucent_dodger_blue_with_white_and_navy_contour():
    img = np.full((H, W, 3), 100, np.uint8)
    m = np.zeros((H, W), bool)
    m[10:30, 10:30] = True
    out = render_state(img, m, [])
    # fill: round(0.4 * 100 + 0.6 * (30, 144, 255)) = round(58.0, 126.4, 193.0) = (58, 126, 193)
    fill, white, navy, grey = (58, 126, 193), (255, 255, 255), (0, 40, 110), (100, 100, 100)
    row = [tuple(int(v) for v in out[20, x]) for x in range(7, 15)]
    # x = 7: off the mask, unchanged; 8, 9: navy band outside; 10: the outermost mask column, white;
    # 11, 12: navy band inside; 13, 14: fill
    assert row == [grey, navy, navy, white, navy, navy, fill, fill]
    assert tuple(out[20, 20]) == fill and tuple(out[2, 2]) == grey
    assert tuple(out[29, 20]) == white  # the last mask row


def test_contour_is_drawn_at_display_resolution_and_markers_stay_on_top():
    img = np.zeros((H, W, 3), np.uint8)
    m = np.zeros((H, W), bool)
    m[10:30, 10:30] = True
    out = render_state(img, m, [Click(20, 20, True), Click(25, 12, False)], scale=4)
    assert out.shape == (4 * H, 4 * W, 3)
    # image column 10 covers display columns 40..43: only display column 40 is the contour's white core,
    # 41 and 42 the navy band inside, 43 already fill: round(0.6 * (30, 144, 255)) = (18, 86, 153) on black
    assert tuple(out[80, 40]) == (255, 255, 255) and tuple(out[80, 42]) == (0, 40, 110)
    assert tuple(out[80, 43]) == (18, 86, 153) and tuple(out[80, 50]) == (18, 86, 153)
    assert tuple(out[80, 37]) == (0, 0, 0)  # 3 px outside: untouched
    # marker centres: image pixel (x, y) → display (4x + 2, 4y + 2); fill colours are not the mask's
    assert tuple(out[82, 82]) == (0, 200, 0) and tuple(out[50, 102]) == (230, 0, 0)
    # radius max(4, round(0.016 * 160)) = 4: a white ring at distance 5 from the centre
    assert tuple(out[82, 87]) == (255, 255, 255)
    # empty mask: no fill, no contour
    assert not render_state(img, np.zeros((H, W), bool), []).any()


# ---- the static figure


def test_session_figure_shows_overlay_clicks_and_iou_curve(image, gt):
    s = ClickSession(image, "the square", DiscSegmenter(), OraclePolicy(gt), gt_mask=gt)
    s.add_click(20, 20, True)
    s.suggest()
    s.accept()
    fig = session_figure(s, scale=2, max_clicks=5)
    ax_img, ax_curve = fig.axes
    shown = ax_img.get_images()[0].get_array()
    np.testing.assert_array_equal(np.asarray(shown), render_state(s.image, s.mask, s.clicks, None, 2))
    assert ax_img.get_xlabel() == "x (px)" and ax_img.get_ylabel() == "y (px)"
    assert ax_curve.get_xlabel() == "number of clicks" and ax_curve.get_ylabel() == "IoU with the ground truth"
    xs, ys = ax_curve.get_lines()[0].get_data()
    # click 1: the disc of 29 px inside the 400 px square; starts from (0 clicks, IoU 0)
    assert list(xs) == [0, 1, 2] and ys[0] == 0.0 and ys[1] == pytest.approx(29 / 400)
    assert [t.get_text() for t in ax_curve.get_legend().get_texts()] == ["human click", "agent click"]
    assert ax_curve.get_xlim() == (0, 5)


def test_session_figure_without_ground_truth_has_a_note(image):
    s = ClickSession(image, "q", DiscSegmenter())
    fig = session_figure(s)
    assert [t.get_text() for t in fig.axes[1].texts] == ["no ground truth: no IoU"]


def test_iou_curve_has_a_y_label_above_the_ticks():
    from seglib.interactive import iou_curve_image

    img = iou_curve_image([], max_clicks=5)
    label_box = img[2:14, 2:26]  # where "IoU" is written, above the tick column and the plot frame
    assert (label_box.min(axis=2) < 128).sum() > 10
    assert (img[2:14, 60:200] == 255).all()  # nothing else is drawn in the top margin
