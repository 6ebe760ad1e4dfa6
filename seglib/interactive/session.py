"""A click session on one image: the click history and the segmenter calls it implies (SegAgent / RITM).

Every click runs the segmenter's decoder with *all* clicks so far plus the
previous step's low-resolution logits; the image itself is encoded once, by
the segmenter's ``set_image`` cache. The policy (``policies``) proposes the
next click from the current mask, as SegAgent's π(a | M_t, I, P). When it
proposes nothing, :attr:`ClickSession.message` says why. Coordinates are
(x, y) pixels of the image as given; masks are bool (H, W).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seglib.clicker import Click
from seglib.interactive.policies import ClickPolicy, why_no_click
from seglib.masks import mask_iou
from seglib.paradigms.clicks import format as clicks_format

HUMAN = "human"
AGENT = "agent"
NO_POLICY = "no click policy is loaded (set the parameter clicks_policy): Suggest, Accept and Auto-refine are off"


@dataclass
class Step:
    """One click and the segmenter's answer to all clicks so far."""

    click: Click
    who: str  # "human" | "agent"
    mask: np.ndarray
    logits: np.ndarray | None
    score: float
    iou: float | None  # against the ground truth, when known
    latency_s: float  # segmenter call (decoder only: the image embedding is cached)
    predicted_iou: float | None = None  # the PRM's self-predicted IoU of this step's mask, when one was made


@dataclass
class ClickSession:
    """Click history on one image, and the segmenter calls it implies.

    ``add_click`` runs ``segmenter.predict`` with every click so far (labels 1
    positive, 0 negative) and the previous step's logits; ``undo`` restores
    the previous step's mask exactly (it is kept, not recomputed).
    ``message`` is a plain sentence about the last action's outcome when
    there is something to say (why Suggest, Accept or Auto-refine did
    nothing, or what Auto-refine did); empty otherwise.
    """

    image: np.ndarray
    query: str
    segmenter: Any
    policy: ClickPolicy | None = None
    gt_mask: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)
    pending: tuple[Click, float | None] | None = None
    message: str = ""

    def __post_init__(self) -> None:
        self.image = np.array(self.image, dtype=np.uint8, copy=True, order="C")  # writable: torch wants that
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"ClickSession: image must be uint8 RGB (H, W, 3), got shape {self.image.shape}")
        if self.gt_mask is not None:
            self.gt_mask = np.asarray(self.gt_mask, dtype=bool)
            if self.gt_mask.shape != self.image.shape[:2]:
                raise ValueError(
                    f"ClickSession: gt_mask shape {self.gt_mask.shape} != image shape {self.image.shape[:2]}"
                )
        t0 = time.perf_counter()
        self.segmenter.set_image(self.image)
        self.encode_s = time.perf_counter() - t0

    # ---- state
    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    @property
    def clicks(self) -> list[Click]:
        return [s.click for s in self.steps]

    @property
    def mask(self) -> np.ndarray:
        """The current mask; empty before the first click."""
        return self.steps[-1].mask if self.steps else np.zeros(self.image.shape[:2], dtype=bool)

    @property
    def iou(self) -> float | None:
        return self.iou_of(self.mask)

    @property
    def history(self) -> list[dict]:
        """One record per click: number, who, click, IoU (None without ground truth), latency."""
        return [
            {"n": i + 1, "who": s.who, "x": s.click.x, "y": s.click.y, "positive": s.click.positive,
             "iou": s.iou, "predicted_iou": s.predicted_iou, "score": s.score, "latency_s": s.latency_s}
            for i, s in enumerate(self.steps)
        ]

    def iou_of(self, mask: np.ndarray) -> float | None:
        return None if self.gt_mask is None else float(mask_iou(mask, self.gt_mask))

    # ---- actions
    def add_click(self, x: int, y: int, positive: bool, who: str = HUMAN,
                  predicted_iou: float | None = None) -> np.ndarray:
        """Add a click at pixel (x, y) and return the new mask."""
        x, y = int(x), int(y)
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"click ({x}, {y}) lies outside the {self.width}x{self.height} image")
        click = Click(x, y, bool(positive))
        prev_logits = self.steps[-1].logits if self.steps else None
        t0 = time.perf_counter()
        self.segmenter.set_image(self.image)  # a cache hit (same content): no re-encoding
        pred, _ = clicks_format.apply_action(click, self.clicks, self.segmenter, prev_logits,
                                               self.height, self.width)
        latency = time.perf_counter() - t0
        mask = np.asarray(pred.mask, dtype=bool)
        self.steps.append(Step(click, who, mask, pred.logits, float(pred.score), self.iou_of(mask), latency,
                               predicted_iou))
        self.pending = None
        self.message = ""
        return mask

    def undo(self) -> np.ndarray:
        """Drop the last click; return the (restored) current mask."""
        self.message = "" if self.steps else "nothing to undo: there are no clicks"
        if self.steps:
            self.steps.pop()
        self.pending = None
        return self.mask

    def reset(self) -> None:
        self.steps.clear()
        self.pending = None
        self.message = ""

    def suggest(self) -> Click | None:
        """Ask the policy for the next click; it is kept as ``pending`` until accepted.

        Without a click, ``message`` says why (e.g. the policy's answer, quoted).
        """
        if self.policy is None:
            self.message = NO_POLICY
            return None
        click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
        self._note_prediction(pred_iou)
        self.pending = None if click is None else (click, pred_iou)
        self.message = "" if click is not None else "no suggestion: " + why_no_click(self.policy)
        return click

    def _note_prediction(self, pred_iou: float | None) -> None:
        """A PRM's "Current IoU" describes the current mask: record it on the step that made that mask."""
        if pred_iou is not None and self.steps:
            self.steps[-1].predicted_iou = float(pred_iou)

    def accept(self) -> np.ndarray | None:
        """Apply the pending suggestion as an agent click; ``None`` (and a ``message``) when there is none."""
        if self.pending is None:
            if self.policy is None:
                self.message = NO_POLICY
            elif self.message.startswith("no suggestion: "):
                self.message = "nothing to accept: " + self.message[len("no suggestion: "):]
            else:
                self.message = "nothing to accept: press Suggest first"
            return None
        click, _ = self.pending  # its predicted IoU describes the mask before the click (already noted)
        return self.add_click(click.x, click.y, click.positive, who=AGENT)

    def auto_refine(self, steps: int, k: int = 1) -> list[Step]:
        """Let the agent click up to ``steps`` times; returns the steps it added.

        k == 1: greedy policy clicks, stopping early when the policy has
        nothing to add. k > 1: SegAgent's PRM tree search
        (``seglib.search.prm_search``: K candidates per step scored by the
        policy's own predicted IoU, stop when it stops rising); the clicks of
        the best-scoring path are then applied as agent clicks. The search
        starts from an empty mask, so k > 1 needs a session without clicks.
        ``message`` then says how many clicks were added and, when the agent
        stopped early, why.
        """
        if self.policy is None:
            self.message = NO_POLICY
            return []
        if k > 1:
            return self._search(int(steps), int(k))
        return self._greedy(int(steps))

    def _search(self, steps: int, k: int) -> list[Step]:
        """Auto-refine with K > 1: the PRM tree search from an empty mask, then its best path as agent clicks."""
        added: list[Step] = []
        if self.steps:
            raise ValueError("the search with several candidates per step (K > 1) starts from an empty mask: "
                             "press Reset first, or set candidates per step (K) to 1")
        if not hasattr(self.policy, "generate"):
            raise ValueError("the search with several candidates per step (K > 1) needs a trained clicks "
                             "policy, not the F_sim oracle: set candidates per step (K) to 1")
        from seglib.search import prm_search

        generate = getattr(self.policy, "recording_generate", self.policy.generate)
        result = prm_search(self.policy.paradigm, self.policy.start(self.image, self.query), generate,
                            self.segmenter, steps, k=k, patience=1, gt_mask=self.gt_mask)
        for step in result.steps[: result.best_step]:
            x, y, positive = step.best.click
            self.add_click(x, y, positive, who=AGENT, predicted_iou=step.best.pred_iou)
            added.append(self.steps[-1])
        if not result.steps:
            self.message = (f"Auto-refine made no click: none of the {k} candidates could be read as a "
                            f"click ({why_no_click(self.policy)})")
        else:
            stop = {"patience": "the predicted IoU stopped rising",
                    "no_action": "no candidate could be read as a click",
                    "max_steps": f"it reached max steps (T) = {steps}"}.get(result.stopped_by, result.stopped_by)
            self.message = (f"Auto-refine searched {len(result.steps)} step(s) with {k} candidates "
                            f"each, stopped because {stop}, and applied the best path's {len(added)} "
                            f"click(s)")
        return added

    def _greedy(self, steps: int) -> list[Step]:
        """Auto-refine with K = 1: the policy's clicks one by one, until it has nothing to add."""
        added: list[Step] = []
        reason = ""
        for _ in range(steps):
            click, pred_iou = self.policy.suggest(self.image, self.mask, self.query, clicked=self.clicks)
            self._note_prediction(pred_iou)
            if click is None:
                reason = why_no_click(self.policy)
                break
            self.add_click(click.x, click.y, click.positive, who=AGENT)
            added.append(self.steps[-1])
        if not added:
            self.message = "Auto-refine made no click: " + reason
        elif reason:
            self.message = f"Auto-refine stopped after {len(added)} click(s): {reason}"
        else:
            self.message = f"Auto-refine added {len(added)} click(s)"
        return added

    def latencies_s(self) -> list[float]:
        return [s.latency_s for s in self.steps]

