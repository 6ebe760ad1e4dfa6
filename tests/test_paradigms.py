"""seglib.paradigms: parsers never raise, targets round-trip, malformed cases by hand, decoding."""
import json
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seglib import frames, paradigms
from seglib.masks import mask_iou
from seglib.paradigms import boxpoints, clicks, polygon


@dataclass
class FakeClick:
    x: int
    y: int
    positive: bool


@dataclass
class FakePrediction:
    mask: np.ndarray
    score: float
    logits: np.ndarray


class BoxFakeSegmenter:
    """Cheap stand-in: a box prompt gives the box's pixels, points alone give 3×3 squares; records calls."""

    def __init__(self):
        self.calls = []
        self.shape = None

    def set_image(self, image):
        self.shape = image.shape[:2]
        self.calls.append("set_image")

    def _one(self, points_xy, labels, box_xyxy=None, mask_logits=None):
        h, w = self.shape
        m = np.zeros((h, w), bool)
        if box_xyxy is not None:
            x0, y0, x1, y1 = (int(v) for v in box_xyxy)
            m[y0:y1 + 1, x0:x1 + 1] = True
        else:
            for (x, y), lab in zip(points_xy, labels):
                m[max(int(y) - 1, 0):int(y) + 2, max(int(x) - 1, 0):int(x) + 2] = bool(lab)
        return FakePrediction(m, 1.0, m.astype(np.float32))

    def predict(self, points_xy, labels, box_xyxy=None, mask_logits=None):
        self.calls.append(("predict", list(points_xy), list(labels), mask_logits is not None))
        return self._one(points_xy, labels, box_xyxy, mask_logits)

    def predict_many(self, prompts):
        self.calls.append(("predict_many", len(prompts)))
        return [self._one(p.points_xy, p.labels, p.box_xyxy, p.mask_logits) for p in prompts]


# ------------------------------------------------------------------ registry
def test_get_returns_each_paradigm_and_rejects_unknown():
    assert paradigms.PARADIGMS[:3] == ("boxpoints", "polygon", "clicks")
    assert paradigms.PARADIGMS == tuple(paradigms.REGISTRY)
    for name in paradigms.PARADIGMS:
        p = paradigms.get(name)
        assert isinstance(p, paradigms.Paradigm) and p.name == name and type(p) is paradigms.paradigm_class(name)
        for attr in ("observe", "target_text", "parse", "decode"):
            assert callable(getattr(p, attr))
    for mod in (boxpoints, polygon, clicks):  # the answer formats stay importable as modules
        for attr in ("prompt", "target_text", "parse", "decode"):
            assert callable(getattr(mod, attr))
    with pytest.raises(ValueError, match="unknown paradigm"):
        paradigms.get("masks")


# ------------------------------------------------------------------ never raise
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["bbox", "points_1", "points_2", "bbox_2d", "point_2d", "label", "x"]), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_parsers_never_raise_on_arbitrary_text(text):
    for mod in (boxpoints, polygon, clicks):
        mod.parse(text)
        mod.parse("<think>x</think><answer>" + text + "</answer>")


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_parsers_never_raise_on_arbitrary_json(value):
    text = json.dumps(value)
    for mod in (boxpoints, polygon, clicks):
        mod.parse(text)
        mod.parse(f"<answer>{text}</answer>")
        mod.parse(text[: len(text) // 2])


def test_parsers_never_raise_on_non_strings_and_huge_inputs():
    for bad in (None, 3, b"<answer>[]</answer>", ["a"], "[" * 100_000, "[" * 5000 + "]" * 5000, "9" * 10_000,
                "<answer>" + "[" * 3000 + "]" * 3000 + "</answer>"):
        for mod in (boxpoints, polygon, clicks):
            assert mod.parse(bad) is None


# ------------------------------------------------------------------ boxpoints
boxes = st.tuples(st.integers(0, 299), st.integers(0, 299), st.integers(0, 299), st.integers(0, 299)).map(
    lambda b: (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])))
points = st.tuples(st.integers(0, 299), st.integers(0, 299))


@settings(max_examples=100, deadline=None)
@given(box=boxes, pts=st.lists(points, min_size=2, max_size=2), resize=st.sampled_from([None, 840, 112]),
       compact=st.booleans(), think=st.booleans())
def test_boxpoints_segzero_target_round_trips(box, pts, resize, compact, think):
    obj = boxpoints.BoxPoints(box=box, points=tuple(pts))
    text = boxpoints.target_text([obj], 300, 300, style="segzero", resize=resize, compact=compact, think=think)
    ans = boxpoints.parse(text)
    assert ans is not None and ans.style == "segzero" and len(ans.objects) == 1
    assert list(ans.objects[0].box) == frames.to_resized(list(box), 300, 300, resize)
    assert [list(p) for p in ans.objects[0].points] == [frames.to_resized(list(p), 300, 300, resize) for p in pts]
    assert paradigms.has_think_format(text) == think


@settings(max_examples=100, deadline=None)
@given(objs=st.lists(st.tuples(boxes, points, st.sampled_from([None, "red square", "it's"])), max_size=4))
def test_boxpoints_list_target_round_trips(objs):
    objects = [boxpoints.BoxPoints(box=b, points=(p,), label=lab) for b, p, lab in objs]
    ans = boxpoints.parse(boxpoints.target_text(objects, 300, 300, style="list"))
    assert ans is not None and ans.style == "list"
    assert [(o.box, o.points, o.label) for o in ans.objects] == [
        (tuple(float(v) for v in b), (tuple(float(v) for v in p),), lab) for b, p, lab in objs]


def test_boxpoints_target_text_exact_strings():
    obj = boxpoints.BoxPoints(box=(10, 20, 30, 40), points=((15, 25), (20, 30)), label="dot")
    assert boxpoints.target_text([obj], 100, 100, style="segzero") == (
        '<think>1 matching object.</think><answer>{"bbox": [10, 20, 30, 40], "points_1": [15, 25], '
        '"points_2": [20, 30]}</answer>')
    assert boxpoints.target_text([obj], 100, 100, style="list", compact=True, think=False) == (
        '<answer>[{"bbox_2d":[10,20,30,40],"point_2d":[15,25],"label":"dot"}]</answer>')
    assert boxpoints.target_text([], 100, 100, style="list") == "<think>0 matching objects.</think><answer>[]</answer>"
    with pytest.raises(ValueError, match="style='list'"):
        boxpoints.target_text([], 100, 100, style="segzero")
    # Seg-Zero frame: W=H=200, S=840 → ×4.2, int(v + .5)
    assert '"bbox": [42, 84, 126, 168]' in boxpoints.target_text([obj], 200, 200, resize=840)


@pytest.mark.parametrize("text", [
    '<think>a</think><answer>{"bbox": [10, 20, 30, 40], "points_1": [15, 25], "points_2": [20',  # truncated
    '<think>a</think><answer>{"bbox": [10, 20, 30, 40], "points_1": [15, 25]',  # unclosed answer tag
    '<answer>{"bbox": [10, 20, 30, NaN]}</answer>',
    '<answer>{"bbox": [10, 20, 30, Infinity]}</answer>',
    '<answer>{"bbox": [10, 20, 30, 1e999]}</answer>',
    '<answer>{"bbox": [10, 20, 30, 1e9]}</answer>',  # huge
    '<answer>{"bbox": [10, 20, 30]}</answer>',
    '<answer>{"bbox": [10, 20, 30, "40"]}</answer>',
    '<answer>{"bbox": [10, 20, 30, true]}</answer>',
    '<answer>{"bbox": [30, 20, 10, 40]}</answer>',  # inverted corners
    '<answer>{"bbox": [10, 20, 30, 40], "points_1": [1, 2, 3]}</answer>',
    '<answer>[{"bbox_2d": [1, 2, 3, 4]}, {"point_2d": [1, 2]}]</answer>',  # one bad object spoils all
    '<answer>[{"bbox_2d": [1, 2, 3, 4], "label": 7}]</answer>',
    '<answer>"bbox"</answer>',
    "no answer at all",
])
def test_boxpoints_malformed_gives_none(text):
    assert boxpoints.parse(text) is None


def test_boxpoints_lenient_cases():
    # single quotes
    a = boxpoints.parse("<think>t</think><answer>{'bbox': [1, 2, 3, 4], 'points_1': [2, 3], 'points_2': [3, 4]}</answer>")
    assert a.objects[0].box == (1, 2, 3, 4) and a.objects[0].points == ((2, 3), (3, 4))
    # extra keys ignored; floats kept
    a = boxpoints.parse('<answer>[{"bbox_2d": [1.5, 2, 3, 4], "point_2d": [2, 3], "score": 0.9}]</answer>')
    assert a.objects[0].box == (1.5, 2, 3, 4) and a.objects[0].label is None
    # empty list = nothing matches
    assert boxpoints.parse("<think>none</think><answer>[]</answer>").objects == ()
    # coordinates outside the image are kept by parse ...
    a = boxpoints.parse('<answer>{"bbox": [-5, 2, 500, 4], "points_1": [600, -3]}</answer>')
    assert a.objects[0].box == (-5, 2, 500, 4)
    # ... and clipped by to_image_frame / decode
    objs = boxpoints.to_image_frame(a, height=10, width=20)
    assert objs[0].box == (0, 2, 19, 4) and objs[0].points == ((19, 0),)
    # last complete answer wins
    assert boxpoints.parse('<answer>[]</answer> <answer>[{"bbox_2d": [1, 1, 2, 2]}]</answer>').objects[0].box == (1, 1, 2, 2)


def test_boxpoints_prompt_templates():
    assert "red disc" in boxpoints.prompt("red disc")
    assert boxpoints.prompt("red disc", template="compact") == "red disc"
    with pytest.raises(ValueError):
        boxpoints.prompt("x", style="nope")


def test_boxpoints_decode_one_predict_many_and_union():
    pytest.importorskip("seglib.segmenters")
    seg = BoxFakeSegmenter()
    image = np.zeros((20, 30, 3), np.uint8)
    ans = boxpoints.parse('<answer>[{"bbox_2d": [1, 1, 3, 2], "point_2d": [2, 2]}, '
                          '{"bbox_2d": [10, 5, 40, 5], "point_2d": [11, 5]}]</answer>')
    mask = boxpoints.decode(ans, 20, 30, seg, image)
    expected = np.zeros((20, 30), bool)
    expected[1:3, 1:4] = True
    expected[5, 10:30] = True  # clipped to the image
    assert (mask == expected).all()
    assert seg.calls == ["set_image", ("predict_many", 2)]
    # Seg-Zero frame: box written in the 840 frame of a 30×20 image
    ans = boxpoints.parse('<answer>{"bbox": [0, 0, 420, 420]}</answer>')
    mask = boxpoints.decode(ans, 20, 30, seg, image, resize=840)
    assert mask[:11, :16].all() and not mask[11:, :].any() and not mask[:, 16:].any()
    assert not boxpoints.decode(None, 20, 30, seg).any()
    assert not boxpoints.decode(boxpoints.parse("<answer>[]</answer>"), 20, 30).any()


def test_boxpoints_targets_from_masks():
    m = np.zeros((40, 50), bool)
    m[10:21, 5:26] = True  # box (5, 10, 25, 20)
    objs = boxpoints.objects_from_masks([m, np.zeros_like(m)], n_points=2)
    assert len(objs) == 1 and objs[0].box == (5, 10, 25, 20)
    assert all(m[int(y), int(x)] for x, y in objs[0].points)


# ------------------------------------------------------------------ polygon
unit_polys = st.lists(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=3, max_size=12), max_size=4)


@settings(max_examples=100, deadline=None)
@given(polys=unit_polys, flat=st.booleans(), compact=st.booleans(), tags=st.booleans())
def test_polygon_text_round_trips(polys, flat, compact, tags):
    arrays = [np.round(np.array(p, float), 3) for p in polys]
    text = polygon.format_polygons(arrays, flat=flat, compact=compact)
    if tags:
        text = f"<answer>{text}</answer>"
    back = polygon.parse(text)
    assert back is not None and len(back) == len(arrays)
    for a, b in zip(arrays, back):
        np.testing.assert_allclose(a, b, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(4, 30), st.integers(4, 30))
def test_polygon_target_from_mask_round_trips_to_mask(x0, y0, w, h):
    m = np.zeros((64, 80), bool)
    m[y0:y0 + h, x0:x0 + w] = True
    text = polygon.target_text([m], 80, 64, epsilon_ratio=0.005)
    assert mask_iou(polygon.decode(polygon.parse(text), 64, 80, outline=True), m) >= 0.9
    # default (pycocotools): the corners are pixel centres x0, x0 + w - 1 (off by < 0.05 px after
    # 3 decimals); pixel x is sampled at x + 1/2, so columns x0 .. x0 + w - 2 and rows y0 .. y0 + h - 2
    # (3-decimal rounding can move an edge across a pixel centre, so: inside the mask, and holding that core)
    decoded = polygon.decode(polygon.parse(text), 64, 80)
    y1, x1 = min(y0 + h, 64) - 1, min(x0 + w, 80) - 1  # the last row / column of the mask (the image clips it)
    core = np.zeros((64, 80), bool)
    core[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = True
    assert not (decoded & ~m).any() and (decoded | ~core).all()


def test_polygon_exact_target_text():
    m = np.zeros((10, 20), bool)
    m[2:5, 4:10] = True  # corners (4, 2) (9, 2) (9, 4) (4, 4) clockwise from top-left
    assert polygon.target_text([m], 20, 10) == "[[[0.200,0.200],[0.450,0.200],[0.450,0.400],[0.200,0.400]]]"
    assert polygon.target_text([m], 20, 10, flat=True) == "[[0.200,0.200,0.450,0.200,0.450,0.400,0.200,0.400]]"
    assert polygon.target_text([], 20, 10) == "[]"
    assert polygon.target_text([np.zeros((10, 20), bool)], 20, 10) == "[]"
    answer = polygon.parse(polygon.target_text([m], 20, 10))
    assert (polygon.decode(answer, 10, 20, outline=True) == m).all()
    # pycocotools alone: the square [4, 9] x [2, 4] holds the samples x + 1/2 for x 4..8, y + 1/2 for y 2..3
    expected = np.zeros((10, 20), bool)
    expected[2:4, 4:9] = True
    assert (polygon.decode(answer, 10, 20) == expected).all()


def test_polygon_orientation_option():
    m = np.zeros((10, 20), bool)
    m[2:5, 4:10] = True  # corners (4, 2) (9, 2) (9, 4) (4, 4)
    # ccw on screen from the same top-most, left-most vertex: down the left edge first
    ccw = "[[[0.200,0.200],[0.200,0.400],[0.450,0.400],[0.450,0.200]]]"
    assert polygon.target_text([m], 20, 10, orientation="ccw") == ccw
    # shoelace with y down: ccw gives -(0.25 * 0.2) = -0.05, cw +0.05
    from seglib.masks import polygon_signed_area

    assert polygon_signed_area(polygon.parse(ccw)[0]) == pytest.approx(-0.05)
    cw = polygon.parse(polygon.target_text([m], 20, 10))[0]
    assert polygon_signed_area(cw) == pytest.approx(0.05)
    # decoding does not depend on the order
    assert (polygon.decode(polygon.parse(ccw), 10, 20) == polygon.decode([cw], 10, 20)).all()
    with pytest.raises(ValueError, match="orientation"):
        polygon.target_text([m], 20, 10, orientation="clockwise")


@pytest.mark.parametrize("text", [
    "[[[0.1,0.1],[0.5,0.1],[0.5,",  # truncated
    "[[[0.1,0.1],[0.5,0.1]]]",  # 2 points
    "[[0.1,0.1,0.5,0.1]]",  # 2 points, flat
    "[[0.1,0.1,0.5,0.1,0.3]]",  # odd flat length
    "[[[0.1,0.1],[0.5,0.1],[0.5,NaN]]]",
    "[[[0.1,0.1],[0.5,0.1],[0.5,1e999]]]",
    "[[[0.1,0.1],[0.5,0.1],[0.5,1e9]]]",
    "[[[0.1,0.1],[0.5,0.1],[0.5,\"0.3\"]]]",
    "[[[0.1,0.1,0.2],[0.5,0.1],[0.5,0.3]]]",
    "{\"polygon\": [[0.1,0.1],[0.5,0.1],[0.5,0.3]]}",
    "[[[0.1,0.1],[0.5,0.1],[0.5,0.3]], [[0.1,0.1]]]",  # one bad polygon spoils all
])
def test_polygon_malformed_gives_none(text):
    assert polygon.parse(text) is None


def test_polygon_lenient_and_documented_cases():
    # single quotes, answer tags, bare list of pairs = one polygon
    assert len(polygon.parse("<answer>[[[0.1,0.1],[0.5,0.1],[0.5,0.3]]]</answer>")) == 1
    assert len(polygon.parse("[[0.1,0.1],[0.5,0.1],[0.5,0.3]]")) == 1
    assert polygon.parse("[]") == []
    # coordinates outside [0, 1] are clipped to the image border
    p = polygon.parse("[[[-0.5,0.1],[1.5,0.1],[0.5,2]]]")[0]
    assert p.tolist() == [[0.0, 0.1], [1.0, 0.1], [0.5, 1.0]]
    # self-intersecting (a bow tie): kept by default, rejected on request
    bowtie = "[[[0.1,0.1],[0.9,0.9],[0.9,0.1],[0.1,0.9]]]"
    assert polygon.parse(bowtie) is not None
    assert polygon.parse(bowtie, reject_self_intersecting=True) is None
    square = "[[[0.1,0.1],[0.9,0.1],[0.9,0.9],[0.1,0.9]]]"
    assert polygon.parse(square, reject_self_intersecting=True) is not None
    # vertex cap
    many = "[[" + ",".join(f"[{(i % 997) / 997:.3f},{(i % 991) / 991:.3f}]" for i in range(10_000)) + "]]"
    assert polygon.parse(many) is None


def test_is_simple_hand_cases():
    assert polygon.is_simple(np.array([[0, 0], [1, 0], [1, 1], [0, 1]]))
    assert not polygon.is_simple(np.array([[0, 0], [1, 1], [1, 0], [0, 1]]))
    assert not polygon.is_simple(np.array([[0, 0], [1, 0], [2, 0]]))  # degenerate triangle
    # a C shape whose arms touch at a vertex is not simple
    assert not polygon.is_simple(np.array([[0, 0], [4, 0], [2, 2], [4, 4], [0, 4], [2, 2]]))


def test_polygon_decode_multi_part_union():
    a = np.zeros((30, 30), bool)
    a[2:8, 2:8] = True
    b = np.zeros((30, 30), bool)
    b[15:25, 12:28] = True
    text = polygon.target_text([a, b], 30, 30)
    assert len(polygon.parse(text)) == 2
    assert (polygon.decode(polygon.parse(text), 30, 30, outline=True) == (a | b)).all()
    # default: each part without its right column and bottom row
    expected = np.zeros((30, 30), bool)
    expected[2:7, 2:7] = True
    expected[15:24, 12:27] = True
    assert (polygon.decode(polygon.parse(text), 30, 30) == expected).all()


# ------------------------------------------------------------------ clicks
@settings(max_examples=100, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 1000), st.data(), st.booleans(), st.booleans(), st.floats(0, 1))
def test_clicks_target_round_trips_to_the_same_pixel(width, height, data, positive, prm, iou):
    x = data.draw(st.integers(0, width - 1))
    y = data.draw(st.integers(0, height - 1))
    text = clicks.target_text(FakeClick(x, y, positive), width, height, iou=iou, prm=prm)
    a = clicks.parse(text)
    assert a is not None and a.positive == positive
    assert frames.from_grid(a.x, a.y, width, height) == (x, y)
    if prm:
        assert a.iou == pytest.approx(round(100 * iou, 1) / 100)
    else:
        assert a.iou is None


def test_clicks_exact_texts():
    c = FakeClick(41, 37, True)  # W=H=100 → (415, 375)
    assert clicks.target_text(c, 100, 100) == "Positive point: (415, 375)"
    assert clicks.target_text(FakeClick(0, 99, False), 100, 100, iou=0.852, prm=True) == (
        "Current IoU: 85.2, Negative point: (5, 995)")
    with pytest.raises(ValueError, match="IoU"):
        clicks.target_text(c, 100, 100, prm=True)


@pytest.mark.parametrize("text", [
    "Positive point: (412, ", "Positive point: (-4, 20)", "Positive point: (NaN, 20)", "point: (1, 2)",
    "Neutral point: (1, 2)", "Positive point: (12345678, 2)", "", "Positive point: (1e3, 2)",
])
def test_clicks_malformed_gives_none(text):
    assert clicks.parse(text) is None


def test_clicks_lenient_cases():
    a = clicks.parse("  positive point:(12,34) and more text")
    assert a == clicks.ClickAction(True, 12.0, 34.0, None)
    a = clicks.parse("Current IoU: 185.0, Negative point: (1500, 20.5)")  # clipped to grid and 100 %
    assert a == clicks.ClickAction(False, 1000.0, 20.5, 1.0)
    assert clicks.parse("Current IoU: 50, Positive point: (1, 2)").iou == 0.5


def test_clicks_apply_action_and_decode():
    pytest.importorskip("seglib.clicker")
    seg = BoxFakeSegmenter()
    image = np.zeros((50, 100, 3), np.uint8)
    seg.set_image(image)
    a = clicks.parse("Positive point: (505, 510)")  # → pixel (50, 25)
    pred, cl = clicks.apply_action(a, [], seg, None, 50, 100)
    assert (cl[0].x, cl[0].y, cl[0].positive) == (50, 25, True)
    assert pred.mask[24:27, 49:52].all() and pred.mask.sum() == 9
    pred2, cl2 = clicks.apply_action(FakeClick(10, 10, False), cl, seg, pred.logits, 50, 100)
    assert len(cl2) == 2 and seg.calls[-1] == ("predict", [(50.0, 25.0), (10.0, 10.0)], [1, 0], True)
    m = clicks.decode(a, 50, 100, seg, image)
    assert m.sum() == 9
    prev = np.ones((50, 100), bool)
    assert clicks.decode(None, 50, 100, seg, prev_mask=prev).all()


def test_clicks_state_image_is_green_overlay():
    image = np.full((4, 5, 3), 100, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    s = clicks.state_image(image, mask)
    assert s[1, 2].tolist() == [50, 178, 50] and s[0, 0].tolist() == [100, 100, 100]
    assert (clicks.state_image(image, None) == image).all()
    assert "red disc" in clicks.prompt("red disc") and "IoU" in clicks.prompt("red disc", prm=True)


def test_size_and_nesting_guards():
    item = '{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}'
    ok = "<answer>[" + ", ".join([item] * 100) + "]</answer>"  # 100 objects fit under the cap
    assert len(boxpoints.parse(ok).objects) == 100
    too_long = "<answer>[" + ", ".join([item] * 400) + "]</answer>"  # ~18,000 characters
    assert boxpoints.parse(too_long) is None
    assert paradigms.loads_json("[[[[[[[1]]]]]]]") == [[[[[[[1]]]]]]]  # 7 levels: still JSON
    assert paradigms.loads_json("[[[[[[[[1]]]]]]]]") is None  # 8 consecutive openers: runaway nesting
    assert paradigms.loads_json("[NaN]") is None and paradigms.loads_json("[1e999]") == [float("inf")]


def test_decode_with_the_classic_segmenter():
    """The real default backend accepts the prompts boxpoints and clicks build."""
    from seglib.segmenters import build_segmenter

    seg = build_segmenter("classic")
    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:40] = (200, 30, 30)
    ans = boxpoints.parse('<answer>[{"bbox_2d": [18, 8, 41, 31], "point_2d": [30, 20]}]</answer>')
    mask = boxpoints.decode(ans, 48, 64, seg, image)
    assert mask.shape == (48, 64) and mask[20, 30]
    pred, cl = clicks.apply_action(clicks.parse("Positive point: (469, 427)"), [], seg, None, 48, 64)
    assert (cl[0].x, cl[0].y) == (30, 20) and pred.mask[20, 30]  # 469·64/1000 − .5 = 29.5 → 30


def test_snapped_click_target_is_written_on_the_1000_grid_and_parses():
    text = clicks.target_text(FakeClick(13, 50, True), 112, 112, snap=28)
    gx, gy = frames.to_grid(13.5, 49.5, 112, 112)  # centres of cells 3 and 12
    assert text == f"Positive point: ({gx}, {gy})"
    act = clicks.parse(text)
    assert act is not None and act.positive
    px, py = frames.from_grid(act.x, act.y, 112, 112)
    assert abs(px - 13) <= 2 and abs(py - 50) <= 2
    assert clicks.target_text(FakeClick(13, 50, True), 112, 112) != text  # snap off: the exact pixel


def test_snapped_polygon_vertices_lie_on_the_lattice_and_keep_the_shape():
    mask = np.zeros((112, 112), bool)
    mask[21:70, 33:90] = True
    text = polygon.target_text([mask], 112, 112, snap=28)
    polys = polygon.parse(text)
    assert polys is not None and len(polys) == 1 and len(polys[0]) >= 3
    assert np.allclose(polys[0] * 28, np.round(polys[0] * 28), atol=0.02)  # 3 decimals of k/28
    assert mask_iou(polygon.decode(polys, 112, 112), mask) > 0.85


def test_snap_keeps_a_tiny_polygon_that_would_collapse():
    mask = np.zeros((112, 112), bool)
    mask[50:52, 50:52] = True  # 2 x 2 px: every vertex snaps to the same lattice point
    polys = polygon.parse(polygon.target_text([mask], 112, 112, snap=28))
    assert polys is not None and len(polys) == 1 and len(polys[0]) >= 3


def test_polygon_think_box_states_the_box_then_answers_the_same_polygons():
    from types import SimpleNamespace

    m = np.zeros((10, 20), bool)
    m[2:5, 4:10] = True  # box (4, 2, 9, 4) inclusive; in a 10 x 10 frame: x * 10 / 20 rounded half up -> (2, 2, 5, 4)
    sample = SimpleNamespace(width=20, height=10, target_masks=lambda: [m])
    text = polygon.target_for_sample(sample, think_box=10)
    think, answer = text.split("</think>")
    located = json.loads(think.removeprefix("<think>"))
    assert located[0]["bbox_2d"] == [2, 2, 5, 4]
    x, y = located[0]["point_2d"]
    assert 2 <= x <= 5 and 2 <= y <= 4
    assert answer == "<answer>" + polygon.target_text([m], 20, 10) + "</answer>"
    assert [p.tolist() for p in polygon.parse(text)] == [p.tolist() for p in polygon.parse(polygon.target_text([m], 20, 10))]
    empty = SimpleNamespace(width=20, height=10, target_masks=lambda: [])
    assert polygon.target_for_sample(empty, think_box=10) == "<think>[]</think><answer>[]</answer>"
    assert polygon.parse("<think>[]</think><answer>[]</answer>") == []
