"""seglib.voting: StAR's mask majority vote, hand-built cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglib.masks import mask_iou
from seglib.voting import majority_vote, pairwise_iou, vote

H, W = 20, 30


def rect(x0, y0, x1, y1):
    m = np.zeros((H, W), bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


A = rect(0, 0, 9, 9)  # 100 px
A_COL = rect(0, 0, 10, 9)  # A plus one column: IoU 100/110 ≈ 0.909 with A
A_ROW = rect(0, 0, 9, 10)  # A plus one row
B = rect(15, 0, 24, 9)  # disjoint from A
C = rect(0, 12, 9, 19)
EMPTY = np.zeros((H, W), bool)


def same(a, b):
    return np.array_equal(a, b)


def test_unanimous():
    res = vote([[A], [A_COL], [A], [A_ROW]], [[0.5], [0.6], [0.7], [0.4]])
    assert res.k_hat == 1 and len(res.clusters) == 1
    assert res.clusters[0].votes == 4
    assert len(res.masks) == 1 and same(res.masks[0], A)  # best score 0.7 is sample 2's A
    assert same(res.union, A)


def test_two_versus_one_votes_beat_scores():
    masks = majority_vote([[A], [B], [A]], [[0.1], [0.99], [0.2]])
    assert len(masks) == 1 and same(masks[0], A)


def test_equal_votes_ranked_by_mean_score():
    masks = majority_vote([[A], [B], [A], [B]], [[0.3], [0.9], [0.4], [0.5]])
    assert same(masks[0], B)  # both 2 votes; mean 0.7 > 0.35


def test_empty_majority():
    # exactly half empty → empty answer
    res = vote([[A], [], [A], []], None)
    assert res.masks == [] and res.empty_majority and res.k_hat == 0
    assert res.union is not None and not res.union.any()
    # a zero-pixel mask is still an object the answer named (StAR's code): counts 1, 1, 0 -> 1 empty of 3 -> A
    masks = majority_vote([[A], [EMPTY], []], None)
    assert len(masks) == 1 and same(masks[0], A)
    # dropping zero-pixel masks first: counts 1, 0, 0 -> 2 empty of 3 -> empty answer
    assert majority_vote([[A], [EMPTY], []], None, count_empty_masks=False) == []
    # fewer than half empty → A
    masks = majority_vote([[A], [], [A]], None)
    assert len(masks) == 1 and same(masks[0], A)
    assert majority_vote([], None) == []


def test_multi_object_k_hat_two():
    samples = [[A, B], [B, A], [A], [A, B, C], [A, B]]
    res = vote(samples, None)
    assert res.k_hat == 2  # counts 2, 2, 1, 3, 2
    assert [c.votes for c in res.clusters] == [5, 4, 1]  # A, B, C in formation order
    assert len(res.masks) == 2
    assert same(res.masks[0], A) and same(res.masks[1], B)  # A: 5 votes, B: 4
    assert same(res.union, A | B)
    assert res.cluster_of(3, 2) == 2 and res.cluster_of(1, 0) == res.cluster_of(0, 1)
    assert res.assignment[(2, 0)] == 0 and len(res.assignment) == 10


def test_k_hat_tie_goes_to_smaller_count():
    res = vote([[A], [A, B], [A], [A, B]], None)
    assert res.k_hat == 1
    assert len(res.masks) == 1 and same(res.masks[0], A)


def test_ratio_filter_drops_rare_clusters():
    # 10 samples: all find A; 8 also find a different stray box (1 vote each, ratio 0.1 < 0.2)
    samples = [[A, rect(12 + 2 * i, 12, 12 + 2 * i, 12)] for i in range(8)] + [[A], [A]]
    res = vote(samples, None)
    assert res.k_hat == 2 and not res.fallback
    assert len(res.masks) == 1 and same(res.masks[0], A)  # K̂ = 2 but only A passes


def test_ratio_fallback_keeps_all_clusters():
    # 6 samples, 6 different answers: each has 1/6 < 0.2 of the votes
    boxes = [rect(5 * i, 0, 5 * i + 3, 3) for i in range(6)]
    scores = [0.2, 0.3, 0.9, 0.1, 0.5, 0.4]
    res = vote([[b] for b in boxes], [[s] for s in scores])
    assert res.fallback and len(res.kept) == 6
    assert len(res.masks) == 1 and same(res.masks[0], boxes[2])  # best mean score


def test_consensus_versus_best():
    samples, scores = [[A], [A_COL], [A_ROW]], [[0.5], [0.9], [0.6]]
    best = majority_vote(samples, scores, aggregate="best")
    assert same(best[0], A_COL)  # highest score 0.9
    # pixel votes: A's pixels 2.0/2.0; extra column 0.9/2.0 = 0.45; extra row 0.6/2.0 = 0.3
    cons = majority_vote(samples, scores, aggregate="consensus")
    assert same(cons[0], A)
    # with A_COL dominating the weights its column passes 0.5: 0.9/1.2 = 0.75
    cons2 = majority_vote(samples, [[0.1], [0.9], [0.2]], aggregate="consensus")
    assert same(cons2[0], A_COL)


def test_greedy_compares_with_first_member_only():
    a2 = rect(0, 0, 10, 9)  # IoU(A, a2) = 100/110 ≥ 0.85
    a3 = rect(0, 0, 11, 9)  # IoU(a2, a3) = 110/120 ≥ 0.85 but IoU(A, a3) = 100/120 < 0.85
    res = vote([[A], [a2], [a3]], None)
    assert len(res.clusters) == 2
    assert res.cluster_of(0, 0) == res.cluster_of(1, 0) == 0
    assert res.cluster_of(2, 0) == 1


def test_votes_count_distinct_samples():
    res = vote([[A, A_COL], [B], [B]], None)  # sample 0 names A twice
    (a_cluster,) = [c for c in res.clusters if c.members[0] == (0, 0)]
    assert len(a_cluster.members) == 2 and a_cluster.votes == 1
    assert same(res.masks[0], B)


def test_scalar_scores_and_union():
    assert same(vote([[A, B], [A, B]], [0.4, 0.8]).union, A | B)
    assert vote([[], []], None).union is None


def test_bad_input_names_sample():
    with pytest.raises(ValueError, match="sample 1"):
        vote([[A], [np.zeros((3, 3), bool)]], None)
    with pytest.raises(ValueError, match="sample 0 has 1 masks but 2 scores"):
        vote([[A]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="aggregate"):
        vote([[A]], None, aggregate="mean")


@settings(max_examples=40, deadline=None)
@given(st.lists(arrays(bool, (7, 9)), min_size=1, max_size=6))
def test_pairwise_iou_matches_mask_iou(masks):
    iou = pairwise_iou(masks)
    for i, a in enumerate(masks):
        for j, b in enumerate(masks):
            assert iou[i, j] == pytest.approx(mask_iou(a, b), abs=1e-12)


@pytest.mark.parametrize("m", [9, 20, 40, 64, 70])  # 2-, 4- and 8-byte pattern keys; > 64 = plain matmul
def test_pairwise_iou_many_masks(m):
    rng = np.random.default_rng(m)
    base = rng.random((12, 16)) < 0.5
    masks = [base ^ (rng.random((12, 16)) < 0.1) for _ in range(m)] + [np.zeros((12, 16), bool)]
    iou = pairwise_iou(masks)
    expected = np.array([[mask_iou(a, b) for b in masks] for a in masks])
    assert np.allclose(iou, expected, atol=1e-12, rtol=0)


def test_empty_masks_count_for_k_hat_but_are_not_clustered():
    samples = [[A, EMPTY], [A, EMPTY], [A, B]]
    # counts 2, 2, 2 -> K̂ 2; clusters A (3 votes) and B (1 vote, 1/3 ≥ 0.2); the empty masks join none
    res = vote(samples, None)
    assert res.k_hat == 2 and [c.votes for c in res.clusters] == [3, 1]
    assert len(res.masks) == 2 and same(res.masks[0], A) and same(res.masks[1], B)
    assert res.cluster_of(0, 1) is None
    # dropped first: counts 1, 1, 2 -> K̂ 1 -> A alone
    res = vote(samples, None, count_empty_masks=False)
    assert res.k_hat == 1 and len(res.masks) == 1 and same(res.masks[0], A)
    # every named object came back empty: K̂ 1 (counts 1, 1), nothing to choose, not the empty-vote rule
    res = vote([[EMPTY], [EMPTY]], None)
    assert res.k_hat == 1 and res.masks == [] and not res.empty_majority and not res.union.any()
    res = vote([[EMPTY], [EMPTY]], None, count_empty_masks=False)
    assert res.k_hat == 0 and res.empty_majority


def test_k_hat_tie_first_seen_option():
    samples = [[A, B], [A], [A, B], [A]]  # counts 2, 1, 2, 1: a tie, 2 seen first
    res = vote(samples, None)
    assert res.k_hat == 1 and len(res.masks) == 1 and same(res.masks[0], A)  # smallest
    res = vote(samples, None, k_tie="first_seen")
    assert res.k_hat == 2 and len(res.masks) == 2 and same(res.masks[0], A) and same(res.masks[1], B)
    res = vote([[A], [A, B], [A], [A, B]], None, k_tie="first_seen")
    assert res.k_hat == 1
    with pytest.raises(ValueError, match="k_tie"):
        vote(samples, None, k_tie="largest")
