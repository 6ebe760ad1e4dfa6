"""Mask majority voting over N sampled answers (StAR, METHODS.md "Inference-time scaling").

Algorithm (``vote``; ``majority_vote`` returns only the chosen masks):

1. Each sample is a list of object masks (0 or more), one per object its
   answer names. A sample's object count is its number of masks, empty masks
   included (StAR's public evaluation code counts the objects the answer names,
   whatever the segmenter returned); a sample is an empty vote when it has no
   mask. If at least half of the N samples are empty votes, the answer is
   empty. ``count_empty_masks=False``: masks with no pixel are dropped first
   (so a sample of empty masks is an empty vote). Masks with no pixel are never
   clustered (they hold no pixel to vote with; the public code makes each one
   a cluster of its own, as its IoU with anything is 0 there).
2. K̂ = the most common object count among the samples with at least one
   object. Ties between counts (``k_tie``): ``"smallest"`` (default) takes the
   smallest of the tied counts; ``"first_seen"`` (StAR's public code,
   ``Counter.most_common``) the tied count that appears first in sample order.
3. Masks are clustered greedily in sample order (then object order within a
   sample): each mask joins the first existing cluster whose *first member* it
   overlaps with IoU ≥ ``iou_thr``, else starts a new cluster.
4. A cluster's votes = the number of distinct samples among its members.
5. Clusters with votes / N ≥ ``min_vote_ratio`` are kept; if none is, all are
   kept (fallback).
6. Kept clusters are ranked by (votes, mean member score), both descending;
   ties keep the order in which the clusters were formed. The top K̂ are chosen.
7. Each chosen cluster gives one mask: its best-scoring member
   (``aggregate="best"``, first member on ties) or the score-weighted pixel
   vote Σ sᵢ·mᵢ / Σ sᵢ ≥ 0.5 (``aggregate="consensus"``; negative scores count
   as 0, and equal weights are used if they sum to 0). The answer is these masks; ``VoteResult.union`` is their
   union (StAR's final mask).

Pairwise IoUs are vectorised: one matrix product over the flattened masks,
cropped to the bounding box of everything predicted, with pixels grouped by
which masks hold them (see ``pairwise_iou``; ``bench/voting.py`` times it).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Cluster:
    """One group of near-identical masks. ``members`` are (sample index, object index)."""

    members: list[tuple[int, int]]
    votes: int
    mean_score: float
    mask: np.ndarray  # the aggregated mask (best member or consensus)


@dataclass
class VoteResult:
    masks: list[np.ndarray]  # the chosen masks, best-ranked first; [] for an empty answer
    union: np.ndarray | None  # union of ``masks`` (all False if empty); None if no shape was known
    k_hat: int  # K̂, 0 when the answer is empty
    clusters: list[Cluster] = field(default_factory=list)  # all clusters, in formation order
    chosen: list[int] = field(default_factory=list)  # indices into ``clusters``, ranked
    kept: list[int] = field(default_factory=list)  # clusters that passed the ratio filter (or all: fallback)
    empty_majority: bool = False  # step 1 decided "empty"
    fallback: bool = False  # no cluster reached min_vote_ratio
    n_samples: int = 0

    @property
    def assignment(self) -> dict[tuple[int, int], int]:
        """{(sample index, object index): cluster index} for every clustered mask."""
        return {member: ci for ci, cluster in enumerate(self.clusters) for member in cluster.members}

    def cluster_of(self, sample: int, obj: int) -> int | None:
        """Index of the cluster holding object ``obj`` of sample ``sample`` (None if dropped)."""
        return self.assignment.get((sample, obj))


def _intersections_matmul(flat: np.ndarray) -> np.ndarray:
    """(M, M) pixel-count intersections of (M, P) bool rows by one matrix product.

    float32 counts are exact while P < 2²⁴; larger inputs use float64.
    """
    dtype = np.float32 if flat.shape[1] < 2**24 else np.float64
    f = flat.astype(dtype)
    return (f @ f.T).astype(np.float64)


def _intersections_by_pattern(crops: Sequence[np.ndarray]) -> np.ndarray:
    """Same as ``_intersections_matmul`` for M ≤ 64 masks, grouping pixels by membership pattern.

    Each pixel gets an M-bit key saying which masks hold it. N samples of one
    answer mostly agree, so there are few distinct keys; with U distinct keys
    and their pixel counts c, intersections = Patternsᵀ · diag(c) · Patterns,
    a (M × U)·(U × M) product instead of (M × P)·(P × M).
    """
    m = len(crops)
    n_bytes = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 6: 8, 7: 8, 8: 8}[(m + 7) // 8]
    key_bytes = np.zeros((n_bytes,) + crops[0].shape, np.uint8)
    for i, crop in enumerate(crops):
        key_bytes[i // 8] |= crop.view(np.uint8) << np.uint8(i % 8)
    keys = np.ascontiguousarray(key_bytes.reshape(n_bytes, -1).T).view(f"u{n_bytes}").ravel()
    keys = keys[keys != 0]
    uniq, counts = np.unique(keys, return_counts=True)
    patterns_bytes = uniq.view(np.uint8).reshape(len(uniq), n_bytes)
    patterns = np.empty((len(uniq), m), np.float64)
    for i in range(m):
        patterns[:, i] = (patterns_bytes[:, i // 8] >> (i % 8)) & 1
    return (patterns.T * counts.astype(np.float64)) @ patterns


def pairwise_iou(masks: Sequence[np.ndarray]) -> np.ndarray:
    """(M, M) IoU matrix of same-shape bool masks; two empty masks have IoU 1.

    Vectorised: masks are cropped to the bounding box of their union (IoU is
    unchanged). Intersections then come from one matrix product, over the
    distinct per-pixel membership patterns when M ≤ 64 (see
    ``_intersections_by_pattern``), else over the flattened pixels. All counts
    are exact integers.
    """
    m = len(masks)
    if m == 0:
        return np.zeros((0, 0), np.float64)
    masks = [np.asarray(x, dtype=bool) for x in masks]
    shape = masks[0].shape
    if any(x.shape != shape for x in masks):
        raise ValueError(f"pairwise_iou: masks differ in shape: {sorted({x.shape for x in masks})}")
    rows_any = np.zeros(shape[0], bool)
    for x in masks:
        rows_any |= x.any(axis=1)
    rows = np.flatnonzero(rows_any)
    if rows.size == 0:
        return np.ones((m, m), np.float64)
    r0, r1 = rows[0], rows[-1] + 1
    cols_any = np.zeros(shape[1], bool)
    for x in masks:
        cols_any |= x[r0:r1].any(axis=0)
    cols = np.flatnonzero(cols_any)
    crops = [x[r0:r1, cols[0] : cols[-1] + 1] for x in masks]
    if m <= 64:
        inter = _intersections_by_pattern(crops)
    else:
        inter = _intersections_matmul(np.stack(crops).reshape(m, -1))
    area = np.diag(inter).copy()
    union = area[:, None] + area[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)


def _normalise_scores(masks_per_sample, scores_per_sample) -> list[list[float]]:
    if scores_per_sample is None:
        return [[1.0] * len(ms) for ms in masks_per_sample]
    if len(scores_per_sample) != len(masks_per_sample):
        raise ValueError(
            f"majority_vote: {len(masks_per_sample)} samples of masks but {len(scores_per_sample)} of scores"
        )
    out = []
    for i, (ms, ss) in enumerate(zip(masks_per_sample, scores_per_sample)):
        if np.isscalar(ss):  # one score for the whole sample
            out.append([float(ss)] * len(ms))
            continue
        ss = [float(s) for s in ss]
        if len(ss) != len(ms):
            raise ValueError(f"majority_vote: sample {i} has {len(ms)} masks but {len(ss)} scores")
        out.append(ss)
    return out


K_TIES = ("smallest", "first_seen")
#: StAR's vote settings (the defaults of ``vote``): cluster IoU threshold, minimum vote share, aggregation.
VOTE_DEFAULTS = {"iou_thr": 0.85, "min_vote_ratio": 0.2, "aggregate": "best"}


def vote(
    masks_per_sample: Sequence[Sequence[np.ndarray]],
    scores_per_sample: Sequence[Sequence[float] | float] | None = None,
    iou_thr: float = VOTE_DEFAULTS["iou_thr"],
    min_vote_ratio: float = VOTE_DEFAULTS["min_vote_ratio"],
    aggregate: str = VOTE_DEFAULTS["aggregate"],
    count_empty_masks: bool = True,
    k_tie: str = "smallest",
) -> VoteResult:
    """StAR's mask majority vote with everything a figure needs (see the module docstring).

    ``masks_per_sample[i]`` is the list of bool (H, W) object masks of sample i;
    ``scores_per_sample[i]`` is a list of one score per mask (e.g. the
    segmenter's predicted IoU), or one float for the whole sample, or the whole
    argument ``None`` for equal scores. ``count_empty_masks`` (step 1) and
    ``k_tie`` (step 2, one of ``K_TIES``): see the module docstring.
    """
    if aggregate not in ("best", "consensus"):
        raise ValueError(f"majority_vote: aggregate must be 'best' or 'consensus', got {aggregate!r}")
    if k_tie not in K_TIES:
        raise ValueError(f"majority_vote: k_tie must be one of {K_TIES}, got {k_tie!r}")
    n = len(masks_per_sample)
    scores = _normalise_scores(masks_per_sample, scores_per_sample)
    items, counts, shape = _object_masks(masks_per_sample, scores, count_empty_masks)

    empty_union = None if shape is None else np.zeros(shape, bool)
    n_empty = sum(1 for c in counts if c == 0)
    if n == 0 or 2 * n_empty >= n:
        return VoteResult([], empty_union, 0, empty_majority=True, n_samples=n)
    k_hat = _object_count(counts, k_tie)
    if not items:  # every object mask was empty: nothing to choose
        return VoteResult([], empty_union, k_hat, n_samples=n)
    clusters = [_cluster(items, members, aggregate, shape) for members in _greedy_clusters(items, iou_thr)]

    kept = [ci for ci, c in enumerate(clusters) if c.votes / n >= min_vote_ratio]
    fallback = not kept
    if fallback:
        kept = list(range(len(clusters)))
    ranked = sorted(kept, key=lambda ci: (-clusters[ci].votes, -clusters[ci].mean_score, ci))
    chosen = ranked[:k_hat]
    masks = [clusters[ci].mask for ci in chosen]
    union = np.logical_or.reduce(masks) if masks else empty_union
    return VoteResult(
        masks=masks,
        union=union,
        k_hat=k_hat,
        clusters=clusters,
        chosen=chosen,
        kept=kept,
        fallback=fallback,
        n_samples=n,
    )


_Item = tuple[int, int, np.ndarray, float]  # (sample, object, mask, score) of one non-empty object mask


def _object_masks(masks_per_sample, scores: list[list[float]], count_empty_masks: bool
                  ) -> tuple[list[_Item], list[int], tuple[int, int] | None]:
    """Step 1: the non-empty object masks with their scores, each sample's object count, the mask shape."""
    shape = None
    items: list[_Item] = []
    counts = []
    for i, (ms, ss) in enumerate(zip(masks_per_sample, scores)):
        kept_here = 0
        for j, (mask, score) in enumerate(zip(ms, ss)):
            mask = np.asarray(mask, dtype=bool)
            if mask.ndim != 2:
                raise ValueError(f"majority_vote: sample {i} mask {j} is not (H, W): shape {mask.shape}")
            if shape is None:
                shape = mask.shape
            elif mask.shape != shape:
                raise ValueError(f"majority_vote: sample {i} mask {j} has shape {mask.shape}, expected {shape}")
            if mask.any():
                items.append((i, j, mask, score))
                kept_here += 1
            elif count_empty_masks:
                kept_here += 1
        counts.append(kept_here)
    return items, counts, shape


def _object_count(counts: list[int], k_tie: str) -> int:
    """Step 2: K̂, the most common object count among the samples with at least one object."""
    count_freq = Counter(c for c in counts if c > 0)  # insertion order = first seen
    best_freq = max(count_freq.values())
    tied = [c for c, f in count_freq.items() if f == best_freq]
    return min(tied) if k_tie == "smallest" else tied[0]


def _greedy_clusters(items: list[_Item], iou_thr: float) -> list[list[int]]:
    """Step 3: item indices per cluster; each mask joins the first cluster whose first member it overlaps."""
    iou = pairwise_iou([it[2] for it in items])
    firsts: list[int] = []  # item index of each cluster's first member
    member_items: list[list[int]] = []
    for t in range(len(items)):
        for ci, first in enumerate(firsts):
            if iou[t, first] >= iou_thr:
                member_items[ci].append(t)
                break
        else:
            firsts.append(t)
            member_items.append([t])
    return member_items


def _cluster(items: list[_Item], members: list[int], aggregate: str, shape: tuple[int, int]) -> Cluster:
    """Steps 4 and 7: a cluster's votes, mean score and mask (best member or score-weighted consensus)."""
    member_scores = np.array([items[t][3] for t in members], dtype=np.float64)
    if aggregate == "best":
        mask = items[members[int(np.argmax(member_scores))]][2].copy()
    else:
        weights = np.clip(member_scores, 0.0, None)
        if weights.sum() <= 0:
            weights = np.ones_like(member_scores)
        acc = np.zeros(shape, np.float64)
        for w, t in zip(weights, members):
            acc += w * items[t][2]
        mask = acc / weights.sum() >= 0.5 - 1e-12
    return Cluster(
        members=[(items[t][0], items[t][1]) for t in members],
        votes=len({items[t][0] for t in members}),
        mean_score=float(member_scores.mean()),
        mask=mask,
    )


def majority_vote(
    masks_per_sample: Sequence[Sequence[np.ndarray]],
    scores_per_sample: Sequence[Sequence[float] | float] | None = None,
    **settings: Any,
) -> list[np.ndarray]:
    """StAR's mask majority vote: the chosen object masks (``[]`` = empty answer).

    ``settings``: ``vote``'s keywords (``iou_thr``, ``min_vote_ratio``, ``aggregate``,
    ``count_empty_masks``, ``k_tie``). Use ``vote`` for the union and the cluster assignment.
    """
    return vote(masks_per_sample, scores_per_sample, **settings).masks
