"""The claims table over the variant stages of ``grpo_variants``, from hand-built prediction records.

Masks: the target is row 0 of a 5 × 10 image (10 px). ``pred(k)`` covers its first k pixels (I = k, U = 10,
IoU k/10); ``wide()`` covers the row and 10 more pixels (I = 10, U = 20, IoU 0.5). Deltas are b − a in points.
"""
import numpy as np
import pytest

from seglib.evaluation import claims_table, comparisons, evaluate_records
from seglib.inference import SCHEMA_VERSION
from seglib.masks import encode_rle

H, W = 5, 10
GT = np.zeros((H, W), bool)
GT[0] = True


def pred(k):
    m = np.zeros((H, W), bool)
    m[0, :k] = True
    return m


def wide():
    m = GT.copy()
    m[1] = True
    return m


def rec(sid, mask, checkpoint, split="test", kind="referring", strategy="greedy", paradigm="boxpoints"):
    return {"schema": SCHEMA_VERSION, "sample_id": sid, "split": split, "kind": kind, "paradigm": paradigm,
            "checkpoint": checkpoint, "strategy": strategy, "height": H, "width": W, "gt_rle": encode_rle(GT),
            "gt_boxes": [[0, 0, 9, 0]], "texts": ["..."], "answers": [{}], "parsed": True,
            "mask_rle": encode_rle(mask), "object_rles": [encode_rle(mask)], "boxes": []}


def table(*files):
    records = {f"{recs[0]['checkpoint']}-{recs[0]['strategy']}": recs for recs in files}
    entries = {name: evaluate_records(recs, name) for name, recs in records.items()}
    return claims_table(entries, records, "test"), entries, records


def rows_of(rows, paper, words):
    return [r for r in rows if r["paper"] == paper and words in r["claim"]]


def ood_files(rlonly="grpo-boxpoints-rlonly"):
    sft = [rec("r1", pred(2), "sft-boxpoints", "test_reasoning", "reasoning"),
           rec("r2", pred(5), "sft-boxpoints", "test_reasoning", "reasoning"),
           rec("r3", pred(10), "sft-boxpoints", "test_reasoning", "reasoning"),
           rec("t1", pred(5), "sft-boxpoints"), rec("t2", pred(5), "sft-boxpoints")]
    rl = [rec("r1", pred(6), rlonly, "test_reasoning", "reasoning"),
          rec("r2", wide(), rlonly, "test_reasoning", "reasoning"),
          rec("r3", pred(7), rlonly, "test_reasoning", "reasoning"),
          rec("t1", pred(3), rlonly), rec("t2", pred(3), rlonly)]
    return sft, rl


def test_rl_alone_against_sft_one_row_per_split():
    rows, _, _ = table(*ood_files())
    ood = rows_of(rows, "Seg-Zero", "RL alone")
    assert [r["split"] for r in ood] == ["test_reasoning", "test"] and all(r["seed"] is None for r in ood)
    reasoning, test = ood
    # per sample +0.4, 0, −0.3 → +0.1 / 3 = +3.33 points; cIoU sft 17/30, RL-only (6 + 10 + 7) / 40 = 23/40
    assert reasoning["n"] == 3 and reasoning["delta_giou"] == pytest.approx(100 / 30)
    assert reasoning["delta_ciou"] == pytest.approx(100 * (23 / 40 - 17 / 30))
    assert "grpo-boxpoints-rlonly-greedy vs sft-boxpoints-greedy on test_reasoning (n = 3)" in reasoning["measured"]
    assert (reasoning["a"], reasoning["b"]) == ("sft-boxpoints-greedy", "grpo-boxpoints-rlonly-greedy")
    # test: 0.5, 0.5 → 0.3, 0.3: −20 points both ways, CI [−20, −20] below 0
    assert test["n"] == 2 and test["delta_giou"] == pytest.approx(-20) and test["delta_ciou"] == pytest.approx(-20)
    assert test["verdict"].startswith("not reproduced: opposite direction (95% CI below 0)")
    # the RL-after-SFT row is still there, not measured without grpo-boxpoints
    after, = rows_of(rows, "Seg-Zero", "box + points beats")
    assert after["verdict"] == "not measured" and "grpo-boxpoints" in after["measured"]
    assert after["b"] is None  # the side the run lacks


def test_rl_alone_rows_name_the_parameter_when_missing():
    rows, _, _ = table(ood_files()[0])
    ood = rows_of(rows, "Seg-Zero", "RL alone")
    assert len(ood) == 2 and all("grpo_rl_from_base: true" in r["measured"] for r in ood)
    assert [r["measured"][:35] for r in ood] == ["not measured on test_reasoning: the", "not measured on test: the run lacks"]


def test_seed_rows_appear_only_for_the_seed_variants_the_run_has():
    sft, rl = ood_files()
    rows, _, _ = table(sft, rl)
    assert all(r["seed"] is None for r in rows)
    _, seed3 = ood_files("grpo-boxpoints-rlonly-seed3")
    seed2 = [rec("t1", pred(10), "grpo-boxpoints-seed2"), rec("t2", pred(4), "grpo-boxpoints-seed2")]
    rows, _, _ = table(sft, rl, seed3, seed2)
    seeded = [r for r in rows if r["seed"] is not None]
    assert sorted((r["paper"], r["seed"], r["split"]) for r in seeded) == [
        ("Seg-Zero", 2, "test"), ("Seg-Zero", 3, "test"), ("Seg-Zero", 3, "test_reasoning")]
    after2, = [r for r in seeded if r["seed"] == 2]
    # RL after SFT, seed 2, on test (no test_reasoning records): 0.5, 0.5 → 1.0, 0.4: (+0.5 − 0.1) / 2 = +20
    assert "seed 2: stage grpo-seed2" in after2["claim"] and after2["delta_giou"] == pytest.approx(20)
    ood3 = [r for r in seeded if r["seed"] == 3]
    assert [r["delta_giou"] for r in ood3] == pytest.approx([100 / 30, -20])  # the same records as the main run
    assert all("grpo-rlonly-seed3" in r["claim"] for r in ood3)
    # no seed rows for claims without per_seed (VisionReasoner, StAR, SegAgent) and none for polygon's (no files)
    assert {r["paper"] for r in seeded} == {"Seg-Zero"}


def test_visionreasoner_compares_the_reward_variants_on_multi_target_samples_only():
    single = [rec("m1", pred(2), "grpo-boxpoints-single", kind="multi"),
              rec("m2", pred(4), "grpo-boxpoints-single", kind="multi"),
              rec("s1", pred(10), "grpo-boxpoints-single")]
    multi = [rec("m1", pred(6), "grpo-boxpoints-multi", kind="multi"),
             rec("m2", pred(4), "grpo-boxpoints-multi", kind="multi"),
             rec("m3", pred(10), "grpo-boxpoints-multi", kind="multi"),  # unpaired: left out
             rec("s1", pred(0), "grpo-boxpoints-multi")]
    rows, _, _ = table(single, multi)
    vr, = rows_of(rows, "VisionReasoner", "multi-object")
    # multi samples m1, m2: +0.4, 0 → +20 points; cIoU 6/20 → 10/20: +20 (all kinds would give (0.4 − 1) / 3 = −20)
    assert (vr["n"], vr["kinds"], vr["split"]) == (2, ["multi"], "test")
    assert vr["delta_giou"] == pytest.approx(20) and vr["delta_ciou"] == pytest.approx(20)
    assert "on test, multi samples (n = 2)" in vr["measured"]
    rows, _, _ = table([dict(r, kind="referring") for r in single], multi)
    vr, = rows_of(rows, "VisionReasoner", "multi-object")
    assert vr["verdict"] == "not measured" and "share no samples of kind multi on test" in vr["measured"]
    rows, _, _ = table(multi)
    vr, = rows_of(rows, "VisionReasoner", "multi-object")
    assert "single_object: true" in vr["measured"] and "name: multi" in vr["measured"]


def test_rest_against_plain_grpo_and_the_comparisons_table():
    grpo = [rec("t1", pred(5), "grpo-boxpoints"), rec("t2", pred(5), "grpo-boxpoints"),
            rec("t3", pred(5), "grpo-boxpoints")]
    rest = [rec("t1", pred(8), "grpo-boxpoints-rest"), rec("t2", pred(5), "grpo-boxpoints-rest"),
            rec("t3", pred(2), "grpo-boxpoints-rest")]
    rows, entries, records = table(grpo, rest)
    row, = rows_of(rows, "StAR", "REST")
    assert row["n"] == 3 and row["delta_giou"] == pytest.approx(0.0) and row["verdict"] == "not reproduced: no change"
    names = [c["name"] for c in comparisons(entries, records, "test")]
    assert "grpo-rest vs grpo (boxpoints, greedy)" in names
    rows, _, _ = table(grpo)
    row, = rows_of(rows, "StAR", "REST")
    assert "name: rest, paradigm: boxpoints, rest_keep: m" in row["measured"]


def test_a_variant_with_vote_predictions_is_not_the_latest_stage():
    sft = [rec("t1", pred(5), "sft-boxpoints")]
    seed_greedy = [rec("t1", pred(5), "grpo-boxpoints-seed1")]
    seed_vote = [rec("t1", pred(10), "grpo-boxpoints-seed1", strategy="vote")]
    rows, _, _ = table(sft, seed_greedy, seed_vote)
    vote, = rows_of(rows, "StAR", "voting")
    assert vote["verdict"] == "not measured"


def test_every_row_keeps_the_rendered_fields():
    rows, _, _ = table(*ood_files())
    keys = {"paper", "claim", "published", "split", "seed", "kinds", "a", "b", "n", "delta_giou", "delta_ciou",
            "ci95_giou", "measured", "verdict", "budget"}
    assert all(set(r) == keys for r in rows)
    # without seed variants: Seg-Zero 1 + 2 (one per split), VisionReasoner 1, StAR 2, SegAgent 3, SimpleSeg 1
    assert len(rows) == 10


def test_variant_stages_sort_beside_their_main_stage():
    from seglib.evaluation.report import ordered_names, stage_rank
    from seglib.evaluation.scoring import stage_of

    stages = {c: stage_of(c) for c in ["grpo-boxpoints-rlonly-seed1", "grpo-boxpoints-seed1", "star-boxpoints",
                                       "grpo-boxpoints", "sft-boxpoints", "grpo-boxpoints-rlonly", "policy-base"]}
    assert stages["grpo-boxpoints-rlonly-seed1"] == "grpo-rlonly-seed1" and stages["policy-base"] == "base"
    # rlonly-seed1 ranks with grpo-rlonly (the longer head), seed1 with grpo; an unknown stage goes last
    assert stage_rank("grpo-rlonly-seed1") == stage_rank("grpo-rlonly") < stage_rank("grpo-seed1") == stage_rank("grpo")
    assert stage_rank("distil") > stage_rank("star")
    entries = {f"{c}-greedy": {"paradigm": "boxpoints", "stage": s, "strategy": "greedy"} for c, s in stages.items()}
    assert ordered_names(entries) == [f"{c}-greedy" for c in [
        "policy-base", "sft-boxpoints", "grpo-boxpoints-rlonly", "grpo-boxpoints-rlonly-seed1", "grpo-boxpoints",
        "grpo-boxpoints-seed1", "star-boxpoints"]]


def test_grpo_runs_beside_sft_and_their_main_run():
    from seglib.evaluation.comparisons import grpo_runs

    sft = [rec("t1", pred(5), "sft-boxpoints"), rec("t2", pred(5), "sft-boxpoints"),
           rec("r1", pred(2), "sft-boxpoints", "test_reasoning", "reasoning")]
    grpo = [rec("t1", pred(10), "grpo-boxpoints"), rec("t2", pred(4), "grpo-boxpoints"),
            rec("r1", pred(6), "grpo-boxpoints", "test_reasoning", "reasoning")]
    lr = [rec("t1", pred(7), "grpo-boxpoints-lr1e-4"), rec("t2", pred(3), "grpo-boxpoints-lr1e-4")]
    rlonly = [rec("t1", pred(3), "grpo-boxpoints-rlonly"), rec("t2", pred(3), "grpo-boxpoints-rlonly")]
    vote = [rec("t1", pred(10), "grpo-boxpoints", strategy="vote")]  # not greedy: no row
    star = [rec("t1", pred(10), "star-boxpoints")]                    # not GRPO: no row
    _, entries, records = table(sft, grpo, lr, rlonly, vote, star)
    rows = grpo_runs(entries, records, ["test", "test_reasoning"])
    assert [r["stage"] for r in rows] == ["grpo", "grpo-rlonly", "grpo-lr1e-4"]  # main runs first
    main, rl, var = rows
    assert main["sft"] == "sft-boxpoints-greedy" and main["main"] is None
    # test: IoU 1.0, 0.4 → gIoU 70; against SFT's 0.5, 0.5: +0.5, −0.1 → +20 points
    t = main["splits"]["test"]
    assert t["n"] == 2 and t["giou"] == pytest.approx(70) and t["vs_main"] is None
    assert t["vs_sft"]["delta"] == pytest.approx(20) and -10 - 1e-9 <= t["vs_sft"]["ci95"][0] <= 20 <= t["vs_sft"]["ci95"][1] <= 50 + 1e-9
    # test_reasoning, one sample: 0.2 → 0.6, +40 with a zero-width interval
    r = main["splits"]["test_reasoning"]
    assert r["vs_sft"] == {"n": 1, "delta": pytest.approx(40), "ci95": pytest.approx([40, 40])}
    assert rl["splits"]["test"]["vs_sft"]["delta"] == pytest.approx(-20) and rl["main"] is None
    # the variant: 0.7, 0.3 → +0 against SFT, (−0.3 − 0.1) / 2 = −20 against its main run; no test_reasoning files
    assert var["main"] == "grpo-boxpoints-greedy" and set(var["splits"]) == {"test"}
    assert var["splits"]["test"]["vs_sft"]["delta"] == pytest.approx(0, abs=1e-9)
    assert var["splits"]["test"]["vs_main"]["delta"] == pytest.approx(-20)
    # without SFT predictions the Δ against SFT is None, not an error
    _, entries, records = table(grpo)
    only, = grpo_runs(entries, records, ["test"])
    assert only["sft"] is None and only["splits"]["test"]["vs_sft"] is None
