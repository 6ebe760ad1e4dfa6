"""Evaluation from hand-made prediction files: every figure below is worked out by hand."""
import json

import numpy as np
import pytest

from seglib.evaluation import (
    METRICS_SCHEMA_VERSION,
    evaluate_records,
    evaluate_run,
    paired_delta,
    verdict,
)
from seglib.inference import SCHEMA_VERSION, append_record, prediction_path
from seglib.masks import encode_rle


def mask(shape, cells=(), rows=None, first=None):
    m = np.zeros(shape, bool)
    for y, x in cells:
        m[y, x] = True
    if rows is not None:
        m[rows] = True
    if first is not None:  # the first `first` pixels in raster order
        m.reshape(-1)[:first] = True
    return m


def record(sid, gt, pred, *, kind="referring", split="val", paradigm="boxpoints", checkpoint="sft-boxpoints",
           strategy="greedy", gt_boxes=None, boxes=(), steps=None, **extra):
    h, w = gt.shape
    rec = {
        "schema": SCHEMA_VERSION, "sample_id": sid, "split": split, "kind": kind, "paradigm": paradigm,
        "checkpoint": checkpoint, "strategy": strategy, "height": h, "width": w,
        "gt_rle": encode_rle(gt), "gt_boxes": [] if gt_boxes is None else gt_boxes,
        "texts": ["..."], "answers": [None if pred is None else {}], "parsed": pred is not None,
        "mask_rle": None if pred is None else encode_rle(pred),
        "object_rles": [] if pred is None else [encode_rle(pred)], "boxes": [list(b) for b in boxes],
    }
    if steps is not None:
        rec["steps"] = steps
    rec.update(extra)
    return rec


S = (5, 5)


def boxpoints_records(checkpoint="sft-boxpoints", strategy="greedy"):
    kw = dict(checkpoint=checkpoint, strategy=strategy)
    gt1 = mask(S, [(0, 0), (0, 1), (1, 0), (1, 1)])
    p1 = mask(S, [(y, x) for y in (0, 1) for x in (0, 1, 2)])  # I 4, U 6
    gt2 = mask(S, [(y, x) for y in (2, 3, 4) for x in (2, 3, 4)])  # 9 px, unparsable → I 0, U 9
    gt3 = mask(S)  # empty query, empty answer → IoU 1, adds 0/0
    gt4 = mask(S, rows=0)  # 5 px
    p4 = mask(S, [(0, 0), (0, 1), (0, 2), (0, 3), (4, 4)])  # I 4, U 6
    return [
        record("s1", gt1, p1, gt_boxes=[[0, 0, 1, 1]], boxes=[[0, 0, 2, 1]], **kw),  # box IoU 4/6: hit
        record("s2", gt2, None, gt_boxes=[[2, 2, 4, 4]], **kw),  # no box: miss
        record("s3", gt3, mask(S), kind="empty", **kw),  # no target: not in Acc@0.5
        record("s4", gt4, p4, kind="reasoning", gt_boxes=[[0, 0, 4, 0]], boxes=[[0, 0, 1, 0]], **kw),  # 2/5: miss
    ]


def test_giou_ciou_acc_by_hand():
    e = evaluate_records(boxpoints_records(), "sft-boxpoints-greedy")
    val = e["splits"]["val"]
    assert val["giou"] == pytest.approx((2 / 3 + 0 + 1 + 2 / 3) / 4)
    assert val["ciou"] == pytest.approx(8 / 21)
    assert val["n"] == 4 and val["parse_rate"] == pytest.approx(0.75)
    assert val["kinds"]["referring"]["giou"] == pytest.approx(1 / 3)
    assert val["kinds"]["referring"]["ciou"] == pytest.approx(4 / 15)
    assert val["kinds"]["empty"]["giou"] == 1.0
    assert val["kinds"]["reasoning"]["ciou"] == pytest.approx(4 / 6)
    assert e["acc_at_05"]["val"] == {"value": pytest.approx(1 / 3), "n": 3}
    assert e["stage"] == "sft" and e["paradigm"] == "boxpoints" and e["clicks"] == {} and e["search"] == {}


G = (10, 10)
GT50 = mask(G, first=50)


def step(pix, pred_iou=None):
    return {"step": 0, "text": "", "click": [0, 0, True], "pred_iou": pred_iou,
            "iou": None, "mask_rle": encode_rle(mask(G, first=pix))}


def clicks_records():
    # s1: IoU .5, .9, 1.0 after clicks 1..3; s2: .86 after one click, then stopped
    kw = dict(paradigm="clicks", checkpoint="sft-clicks", kind="referring")
    return [
        record("c1", GT50, mask(G, first=50), steps=[step(25), step(45), step(50)], **kw),
        record("c2", GT50, mask(G, first=43), steps=[step(43)], **kw),
    ]


def prm_records():
    kw = dict(paradigm="clicks", checkpoint="sft-clicks", kind="referring", strategy="prm_search_k1")
    s1 = [step(25, 0.4), step(45, 0.8), step(50, 0.7)]
    for s, iou in zip(s1, (0.5, 0.9, 1.0)):
        s["iou"] = iou
    s2 = [step(43, 0.9)]
    s2[0]["iou"] = 0.86
    return [
        record("c1", GT50, mask(G, first=45), steps=s1, best_step=2, search={"k": 1, "t": 3}, **kw),
        record("c2", GT50, mask(G, first=43), steps=s2, best_step=1, search={"k": 1, "t": 3}, **kw),
    ]


def test_noc_and_iou_vs_clicks_by_hand():
    e = evaluate_records(clicks_records(), "sft-clicks-greedy")
    c = e["clicks"]["val"]
    assert c["noc85"] == pytest.approx((2 + 1) / 2)
    assert c["noc90"] == pytest.approx((2 + 20) / 2)  # .86 carried forward never reaches .9: capped at 20
    assert c["iou_vs_clicks"] == pytest.approx([(0.5 + 0.86) / 2, (0.9 + 0.86) / 2, (1.0 + 0.86) / 2])
    assert e["splits"]["val"]["giou"] == pytest.approx((1.0 + 0.86) / 2)


def test_search_curve_and_calibration_by_hand():
    e = evaluate_records(prm_records(), "sft-clicks-prm_search_k1")
    s = e["search"]
    assert s["k"] == 1 and s["t_max"] == 3
    # best predicted step among the first t: t=1 → (.5, .86); t=2 → (.9, .86); t=3 → step 2 still best
    assert s["iou_vs_t"]["val"]["giou"] == pytest.approx([0.68, 0.88, 0.88])
    assert s["calibration"]["n"] == 4
    assert s["calibration"]["mae"] == pytest.approx((0.1 + 0.1 + 0.3 + 0.04) / 4)
    assert s["mean_best_step"] == pytest.approx(1.5)


def test_paired_delta_and_verdict_words():
    d = paired_delta(clicks_records(), prm_records(), "val")
    assert d["n"] == 2
    assert d["delta_giou"] == pytest.approx(100 * ((0.9 + 0.86) / 2 - (1.0 + 0.86) / 2))
    assert d["delta_ciou"] == pytest.approx(100 * ((45 + 43) / 100 - (50 + 43) / 100))
    lo, hi = d["ci95_giou"]
    assert lo == pytest.approx(-10) and hi == pytest.approx(0)
    assert verdict(None, None) == "not measured"
    assert verdict(2.0, [0.5, 3.0]).startswith("reproduced")
    assert verdict(2.0, [-0.5, 3.0]).startswith("same direction, within noise")
    assert verdict(-2.0, [-3.0, -1.0]).startswith("not reproduced: opposite direction (95% CI below 0)")


def write_run(tmp_path, groups):
    for recs in groups:
        path = prediction_path(tmp_path, recs[0]["checkpoint"], recs[0]["strategy"])
        path.parent.mkdir(parents=True, exist_ok=True)
        for r in recs:
            append_record(path, r)
    return tmp_path


def test_metrics_json_schema_tables_figures_and_claims(tmp_path):
    grpo = boxpoints_records("grpo-boxpoints")
    grpo[1] = record("s2", mask(S, [(y, x) for y in (2, 3, 4) for x in (2, 3, 4)]),
                     mask(S, [(y, x) for y in (2, 3, 4) for x in (2, 3, 4)]), checkpoint="grpo-boxpoints",
                     gt_boxes=[[2, 2, 4, 4]], boxes=[[2, 2, 4, 4]])
    run = write_run(tmp_path, [boxpoints_records(), grpo, clicks_records(), prm_records()])
    m = evaluate_run(run)
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    assert set(m) == {"schema_version", "conventions", "predictions", "comparisons", "claims"}
    assert m["schema_version"] == METRICS_SCHEMA_VERSION
    assert set(m["predictions"]) == {"sft-boxpoints-greedy", "grpo-boxpoints-greedy", "sft-clicks-greedy",
                                     "sft-clicks-prm_search_k1"}
    entry_keys = {"checkpoint", "stage", "paradigm", "strategy", "file", "n", "parse_rate", "overall", "splits",
                  "acc_at_05", "clicks", "vote_curve", "search"}
    for e in m["predictions"].values():
        assert set(e) == entry_keys
        assert set(e["overall"]) == {"giou", "ciou", "n"}
    assert {"both_empty", "unparsable"} <= set(m["conventions"])
    claim_keys = {"paper", "claim", "published", "measured", "split", "seed", "kinds", "a", "b", "n", "delta_giou",
                  "delta_ciou", "ci95_giou", "verdict", "budget"}
    assert all(set(c) == claim_keys for c in m["claims"])
    by = {(c["paper"], c["claim"][:20], c["split"]): c for c in m["claims"]}
    segzero = next(c for c in m["claims"] if c["paper"] == "Seg-Zero")
    # grpo fixes s2 (0 → 1): ΔgIoU = +25 points; cIoU 8/21 → 17/21
    assert segzero["delta_giou"] == pytest.approx(25.0)
    assert segzero["delta_ciou"] == pytest.approx(100 * 9 / 21)
    assert "published" in segzero["published"] and "47.6" in segzero["published"]
    k1 = next(c for c in m["claims"] if c["paper"] == "SegAgent" and "K = 1" in c["claim"])
    assert k1["delta_giou"] == pytest.approx(-5.0) and k1["verdict"].startswith("not reproduced")
    simpleseg = next(c for c in m["claims"] if c["paper"] == "SimpleSeg")
    assert simpleseg["verdict"] == "not measured" and simpleseg["measured"].startswith("not measured")
    assert len(by) == len(m["claims"])
    for name in ("results.md", "claims.md", "comparisons.md", "curves.md"):
        assert (run / "tables" / name).stat().st_size > 0
    assert "not measured" in (run / "tables" / "claims.md").read_text()
    for name in ("07_giou_bars.png", "07_iou_vs_t.png", "07_iou_vs_clicks.png", "07_calibration.png"):
        assert (run / "figures" / name).stat().st_size > 0
    results = (run / "tables" / "results.md").read_text()
    assert "| boxpoints | sft | greedy | val | 4 | 58.3 | 38.1 | 75% | 33.3 |" in results


def test_claim_with_no_parsable_answer_on_either_side_is_not_measured(tmp_path):
    gt = mask(S, rows=0)
    run = write_run(tmp_path, [[record("s1", gt, None, checkpoint="sft-polygon", paradigm="polygon")],
                               [record("s1", gt, None, checkpoint="grpo-polygon", paradigm="polygon")]])
    m = evaluate_run(run, figures=False)
    row = next(c for c in m["claims"] if c["paper"] == "SimpleSeg")
    assert row["verdict"] == "not measured" and row["delta_giou"] is None and "parsable" in row["measured"]


def test_k_claim_compares_k1_with_the_largest_k(tmp_path):
    k1 = prm_records()
    k2 = prm_records()
    for r in k2:
        r["strategy"], r["search"] = "prm_search_k2", {"k": 2, "t": 3}
    k2[0]["mask_rle"] = encode_rle(mask(G, first=50))  # c1: .9 → 1.0
    run = write_run(tmp_path, [clicks_records(), k1, k2])
    m = evaluate_run(run, figures=False)
    row = next(c for c in m["claims"] if c["paper"] == "SegAgent" and "K > 1" in c["claim"])
    assert "prm_search_k2" in row["measured"] and row["delta_giou"] == pytest.approx(5.0)


def test_unparsable_answer_to_an_empty_query_scores_zero_as_in_metrics():
    """One IoU rule: garbage earns nothing, even where the target is empty (StAR's credit is for a real empty answer)."""
    from seglib.evaluation import intersection_union
    from seglib.metrics import IoUMeter

    empty = np.zeros((6, 6), bool)
    assert intersection_union(None, empty) == (0, 0, 0.0)
    assert intersection_union(np.zeros((6, 6), bool), empty) == (0, 0, 1.0)  # a well-formed empty answer
    gt = empty.copy()
    gt[1:3, 1:4] = True
    assert intersection_union(None, gt) == (0, 6, 0.0)
    for pred, target in ((None, empty), (empty, empty), (None, gt), (gt, gt)):
        assert intersection_union(pred, target)[2] == IoUMeter().update(pred, target)


def test_curves_report_a_prm_that_always_writes_the_same_iou():
    """A PRM whose estimates are constant has no Pearson correlation: the report says so instead of failing."""
    from seglib.evaluation import curves_markdown

    entry = {"vote_curve": {}, "clicks": {},
             "search": {"k": 1, "iou_vs_t": {}, "calibration": {"mae": 0.25, "pearson": None, "n": 12}}}
    text = curves_markdown({"predictions": {"sft-clicks-prm_search_k1": entry}})
    assert "MAE 25.0 IoU points" in text and "Pearson n/a" in text and "(n = 12)" in text
    entry["search"]["calibration"]["pearson"] = 0.5
    assert "Pearson 0.50" in curves_markdown({"predictions": {"x": entry}})


def test_every_later_stage_is_compared_with_sft_and_base_is_not(tmp_path):
    """Stage comparisons follow the files present, for any paradigm: here a StAR-stage boxpoints checkpoint."""
    groups = [boxpoints_records(ck) for ck in ("sft-boxpoints", "grpo-boxpoints", "grpo-boxpoints-rlonly",
                                                "star-boxpoints", "tiny-base")]
    run = write_run(tmp_path, groups)
    m = evaluate_run(run, figures=False)
    names = [c["name"] for c in m["comparisons"]]
    assert names == ["grpo vs sft (boxpoints, greedy)", "grpo-rlonly vs sft (boxpoints, greedy)",
                     "star vs sft (boxpoints, greedy)"]
    assert all(c["a"] == "sft-boxpoints-greedy" and c["delta_giou"] == 0.0 for c in m["comparisons"])


def test_extra_keys_of_every_paradigm_are_in_every_entry():
    """Every entry carries Acc@0.5 and the click metrics, {} where its own paradigm has none."""
    poly = [dict(r, paradigm="polygon", checkpoint="sft-polygon") for r in boxpoints_records()]
    e = evaluate_records(poly, "sft-polygon-greedy")
    assert list(e)[9:] == ["acc_at_05", "clicks", "vote_curve", "search"]
    assert e["acc_at_05"] == {} and e["clicks"] == {}


def test_claims_come_from_the_paradigms_in_the_published_order():
    from seglib.evaluation import all_claims

    assert [c.paper for _, c in all_claims()] == ["Seg-Zero", "Seg-Zero", "VisionReasoner", "StAR", "StAR",
                                                  "SegAgent", "SegAgent", "SegAgent", "SimpleSeg"]
    assert {p for p, _ in all_claims()} == {"boxpoints", "clicks", "polygon"}
