"""Claims at smaller budgets from one run's files: StAR's vote at N = 4, 8, 16 from 16 stored samples, SegAgent's
search at T = 3, 5, 7 from 7 stored steps; and sampled answers drawn in blocks, so a larger N extends a smaller one.

Masks: the target is row 0 of a 5 × 10 image (10 px); ``pred(k)`` covers its first k pixels (IoU k/10).
"""
import numpy as np
import pytest
import torch
from PIL import Image

from seglib.data import Sample
from seglib.evaluation import claims_table, evaluate_records
from seglib.evaluation.curves import at_budget, budget_kind, budget_reach
from seglib.inference import SCHEMA_VERSION, predict_split, read_predictions
from seglib.masks import decode_rle, encode_rle
from seglib.paradigms import get
from test_claims_variants import GT, H, W, pred  # the 5 × 10 image and its row-0 target


def rec(sid, mask, checkpoint, strategy="greedy", paradigm="boxpoints", split="test", **extra):
    r = {"schema": SCHEMA_VERSION, "sample_id": sid, "split": split, "kind": "referring", "paradigm": paradigm,
         "checkpoint": checkpoint, "strategy": strategy, "height": H, "width": W, "gt_rle": encode_rle(GT),
         "gt_boxes": [[0, 0, 9, 0]], "texts": ["..."], "answers": [{}], "parsed": True,
         "mask_rle": encode_rle(mask), "object_rles": [encode_rle(mask)], "boxes": []}
    r.update(extra)
    return r


def vote_rec(sid, sample_ks, chosen_k, checkpoint="grpo-boxpoints"):
    """A vote record whose stored samples each answer one object ``pred(k)``."""
    samples = [{"text": "...", "answer": {}, "parsed": True, "object_rles": [encode_rle(pred(k))], "scores": [1.0],
                "boxes": []} for k in sample_ks]
    vote = {"n": len(sample_ks), "iou_thr": 0.85, "min_vote_ratio": 0.2, "aggregate": "best"}
    return rec(sid, pred(chosen_k), checkpoint, "vote", split="test_reasoning", samples=samples, vote=vote)


def step(k, pred_iou=None):
    return {"mask_rle": encode_rle(pred(k)), "pred_iou": pred_iou, "iou": k / 10}


def table(*files):
    records = {f"{recs[0]['checkpoint']}-{recs[0]['strategy']}": recs for recs in files}
    entries = {name: evaluate_records(recs, name) for name, recs in records.items()}
    return claims_table(entries, records, "test")


def rows_of(rows, paper, words):
    return [r for r in rows if r["paper"] == paper and words in r["claim"]]


# ----------------------------------------------------------------------------- voting at N


def test_vote_at_n_is_the_majority_of_the_first_n_samples():
    # three wrong answers (IoU 0.3) first, then 13 right ones: the first 4 vote wrong, the first 8 right
    r = vote_rec("v1", [3, 3, 3] + [10] * 13, 10)
    assert budget_kind([r]) == "N" and budget_reach([r]) == 16
    at = {n: decode_rle(at_budget([r], n)[0]["mask_rle"]) for n in (1, 4, 8, 16)}
    assert (at[1] == pred(3)).all() and (at[4] == pred(3)).all()
    assert (at[8] == GT).all() and (at[16] == GT).all()
    assert r["mask_rle"] == encode_rle(pred(10))  # the record itself is left alone


def test_vote_claim_has_one_row_per_reachable_n():
    greedy = [rec("v1", pred(5), "grpo-boxpoints", split="test_reasoning")]
    rows = table(greedy, [vote_rec("v1", [3, 3, 3] + [10] * 13, 10)])
    vote = rows_of(rows, "StAR", "voting")
    assert [r["budget"] for r in vote] == [{"N": 4}, {"N": 8}, {"N": 16}]
    # greedy IoU 0.5; vote 0.3 at N = 4, 1.0 at N = 8 and 16
    assert [r["delta_giou"] for r in vote] == pytest.approx([-20, 50, 50])
    assert all(r["split"] == "test_reasoning" and r["n"] == 1 for r in vote)
    assert "N = 4" in vote[0]["measured"]
    # 8 stored samples: N = 16 is out of reach, so two rows
    rows = table(greedy, [vote_rec("v1", [3, 3, 3] + [10] * 5, 10)])
    assert [r["budget"] for r in rows_of(rows, "StAR", "voting")] == [{"N": 4}, {"N": 8}]


# ----------------------------------------------------------------------------- stepping at T


def clicks_files():
    greedy = [rec("c1", pred(10), "star-clicks", paradigm="clicks",
                  steps=[step(k) for k in (2, 4, 6, 8, 9, 7, 10)])]
    # the search stopped after 4 steps and kept its best-scoring step, the third (IoU 0.9)
    search_steps = [step(3, 0.3), step(5, 0.5), step(9, 0.8), step(6, 0.7)]
    k1 = [rec("c1", pred(9), "star-clicks", "prm_search_k1", paradigm="clicks", steps=search_steps, best_step=3,
              search={"k": 1, "t": 7})]
    return greedy, k1


def test_stepped_records_at_t():
    greedy, k1 = clicks_files()
    assert budget_kind(greedy) == "T" and budget_reach(greedy) == 7 and budget_reach(k1) == 7
    # greedy keeps its last step, the search its best-scoring one among the first t
    assert [decode_rle(at_budget(greedy, t)[0]["mask_rle"]).sum() for t in (1, 3, 5, 7)] == [2, 6, 9, 10]
    assert [decode_rle(at_budget(k1, t)[0]["mask_rle"]).sum() for t in (1, 2, 3, 5, 7)] == [3, 5, 9, 9, 9]
    # below its horizon but past its last step (it stopped after 4), a search record gives the mask it wrote
    assert at_budget(k1, 5)[0]["mask_rle"] == k1[0]["mask_rle"]


def test_search_claim_has_one_row_per_t():
    greedy, k1 = clicks_files()
    rows = rows_of(table(greedy, k1), "SegAgent", "tree search, K = 1")
    assert [r["budget"] for r in rows] == [{"T": 3}, {"T": 5}, {"T": 7}]
    # search 0.9 at every T against greedy 0.6, 0.9, 1.0
    assert [r["delta_giou"] for r in rows] == pytest.approx([30, 0, -10])
    assert rows[1]["verdict"] == "not reproduced: no change"


def test_a_claim_without_budgets_keeps_one_row():
    greedy, _ = clicks_files()
    sft = [rec("c1", pred(5), "sft-clicks", paradigm="clicks", steps=[step(5)])]
    star, = rows_of(table(sft, greedy), "SegAgent", "StaR+")
    assert star["budget"] is None and star["delta_giou"] == pytest.approx(50)


# ----------------------------------------------------------------------------- sampling in blocks


class TorchSampler:
    """Writes one random number per answer from torch's generator; records the n of each call."""

    def __init__(self):
        self.ns = []

    def reseed(self, seed):
        torch.manual_seed(seed)

    def __call__(self, images, prompts, n, do_sample):
        self.ns.append(n)
        return [[str(int(torch.randint(0, 10 ** 9, (1,)))) for _ in range(n)] for _ in prompts]


def test_a_larger_n_extends_a_smaller_one(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(path)
    samples = [Sample(sample_id=f"s{i}", image_path=str(path), query=f"q{i}", kind="referring", split="val",
                      height=24, width=24, target_rles=[encode_rle(np.ones((24, 24), bool))]) for i in range(2)]
    texts = {}
    for n in (5, 8, 16, 20):
        gen = TorchSampler()
        out = predict_split(samples, gen, None, get("polygon"), tmp_path / f"n{n}", "sft-polygon", "vote",
                            n_samples=n, progress=False)
        texts[n] = [r["texts"] for r in read_predictions(out)]
        assert gen.ns == {5: [5], 8: [8], 16: [8, 8], 20: [8, 8, 4]}[n] * 2
    for i in range(2):
        assert texts[16][i][:8] == texts[8][i] and texts[20][i][:16] == texts[16][i]
        assert texts[16][i][8:] != texts[16][i][:8]  # block 1 is drawn afresh, not block 0 again
    assert texts[8][0] != texts[8][1]  # each sample has its own seed
