"""F_sim click trajectories (SegAgent, "Trajectory generation"; METHODS.md).

A trajectory starts from a state (an empty mask by default; optionally the mask
of a box prompt, or of a few random clicks, as extra starting states) and then
repeats: F_sim (``seglib.clicker.next_click``) clicks on the current error, and
the segmenter runs on *all clicks so far plus the previous step's logits*.
Three principles decide when it ends:

1. at most ``max_clicks`` (T) steps;
2. it stops once IoU ≥ ``tau_stop`` (default 0.98; values below 0.8 are refused);
3. ``gain_rule="paper"`` (default): an action whose IoU gain over the previous
   state is below ``tau_diff`` ends the trajectory, and that action is not kept
   (it is recorded as ``rejected``, not as a step: the steps are training targets).
   ``gain_rule="best"`` is the public code's variant: a click is kept only if its
   IoU beats the best IoU so far; a click that does not is discarded (its pixel
   stays marked as clicked, so F_sim moves on) and simulation continues from the
   unchanged state; every attempt counts towards T.

Defined behaviour for the other sample kinds: a multi-object sample is one
target, the union of its masks (F_sim clicks on the union's errors); an empty
sample (no target) has no trajectory: ``simulate`` returns None and
``simulate_split`` writes no line for it.

Starting states: ``"box"`` prompts the segmenter with the target's box (the
union's box) once; the box is not part of later prompts, which hold clicks and
logits only, as in the clicks paradigm at inference. ``"random_clicks"`` draws
1-3 clicks (the first positive inside the target, the others positive inside or
negative outside, 50/50) from ``seed`` and the sample id; they are ordinary clicks
and stay in the prompt.

Each step records the click (pixels), the action text of the clicks paradigm
(``seglib.paradigms.clicks.target_text``: ``Positive point: (x, y)`` on the
0-1000 grid), the mask after the click (COCO RLE), its IoU and the segmenter's
score. ``ious[0]`` is the IoU of the starting state, ``ious[k]`` after k kept
clicks. JSONL: one line per trajectory (``simulate_split``/``read_trajectories``).

Records and their file: ``seglib.data.trajectories`` (re-exported). Modules: ``simulation``
(``simulate``, ``simulate_split``), ``summaries`` (notebook 02's curves and NoC).
"""
from seglib.data.trajectories import Step, Trajectory, read_trajectories, trajectory_steps
from seglib.trajectories.simulation import (
    GAIN_RULES,
    STARTS,
    STOP_REASONS,
    FSimSettings,
    simulate,
    simulate_split,
    target_key,
)
from seglib.trajectories.summaries import iou_curve, iou_curves, noc_summary, sample_group

__all__ = [
    "FSimSettings",
    "GAIN_RULES",
    "STARTS",
    "STOP_REASONS",
    "Step",
    "Trajectory",
    "iou_curve",
    "iou_curves",
    "noc_summary",
    "read_trajectories",
    "sample_group",
    "simulate",
    "simulate_split",
    "target_key",
    "trajectory_steps",
]
