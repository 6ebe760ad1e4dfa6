"""Click policies for the demo: anything that proposes the next click for the current mask.

:class:`OraclePolicy` is F_sim with the ground truth (the RITM click robot);
:class:`ModelClickPolicy` a trained policy of the clicks paradigm, asked through
``ClicksParadigm`` (its observe and parse), whose PRM variant also predicts the IoU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from seglib.clicker import Click, next_click
from seglib.paradigms.base import State
from seglib.paradigms.clicks import ClicksParadigm
from seglib.paradigms.clicks import format as clicks_format


@runtime_checkable
class ClickPolicy(Protocol):
    """Anything that proposes the next click for the current mask.

    ``suggest`` returns ``(click, predicted_iou)``: ``click`` is ``None`` when
    the policy has nothing to add; ``predicted_iou`` is the PRM's estimate of
    the *current* mask's IoU in [0, 1], or ``None`` for a policy without one.
    ``clicked`` lists the clicks already made (F_sim skips their pixels).
    A policy may also define ``why_no_click() -> str``: a plain sentence
    saying why its last ``suggest`` gave no click (shown to the user).
    """

    def suggest(
        self, image: np.ndarray, mask: np.ndarray, query: str, clicked: Sequence[Click] = ()
    ) -> tuple[Click | None, float | None]: ...


@dataclass
class OraclePolicy:
    """F_sim with the ground truth: the RITM click robot as a stand-in agent."""

    gt_mask: np.ndarray

    def suggest(self, image, mask, query, clicked=()):
        return next_click(self.gt_mask, mask, clicked=clicked), None

    def why_no_click(self) -> str:
        return ("the F_sim oracle has nothing to add: the mask matches the ground truth, "
                "or every wrong pixel is already clicked")


@dataclass
class ModelClickPolicy:
    """A trained clicks-paradigm policy (SFT / StaR+ checkpoint) as a click proposer.

    ``generate`` is a ``seglib.search.GenerateFn`` ``(images, prompts,
    num_return_sequences, do_sample) -> texts per prompt``, e.g. a loaded
    ``seglib.inference.Policy``; ``paradigm`` the ``ClicksParadigm`` it was
    trained with (None: built from ``prm`` and ``template``). The state is
    SegAgent's: the image with the current mask overlaid (green, α = 0.5) plus
    the query (``ClicksParadigm.observe``); answers go through ``parse`` (never
    raises) and back to image pixels. A PRM policy (``prm=True``) first writes the current
    mask's IoU, returned as ``predicted_iou`` (a fraction). ``last_text`` keeps
    the last answer, so an unreadable one can be quoted by ``why_no_click``.
    """

    generate: Any
    prm: bool = False
    template: str | None = None
    paradigm: ClicksParadigm | None = None
    last_text: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.paradigm is None:
            self.paradigm = ClicksParadigm(prm=self.prm, prompt_template=self.template)

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu", max_new_tokens: int = 32) -> "ModelClickPolicy":
        """Load ``path`` (e.g. ``<run_dir>/checkpoints/sft-clicks``): its task (``load_task``) and its policy."""
        from seglib.inference import load_checkpoint_policy, load_task

        paradigm = load_task(path, paradigm=ClicksParadigm.name)
        policy = load_checkpoint_policy(path, device=device, max_new_tokens=max_new_tokens)
        return cls(policy, prm=paradigm.options.prm, template=paradigm.options.prompt_template, paradigm=paradigm)

    def start(self, image: np.ndarray, query: str, mask: np.ndarray | None = None) -> State:
        """The episode state of ``image`` with ``mask`` (the query stands in for the sample)."""
        return State(query, image, mask)

    def state(self, image: np.ndarray, mask: np.ndarray, query: str) -> tuple[np.ndarray, str]:
        """(state image, prompt) the policy sees: ``ClicksParadigm.observe``."""
        return self.paradigm.observe(self.start(image, query, mask))

    def recording_generate(self, images, prompts, num_return_sequences=1, do_sample=False):
        """``generate``, keeping the first answer in ``last_text``."""
        out = self.generate(images, prompts, num_return_sequences, do_sample)
        try:
            self.last_text = str(out[0][0])
        except (IndexError, TypeError, KeyError):
            self.last_text = ""
        return out

    def suggest(self, image, mask, query, clicked=()):
        state_img, prompt = self.state(image, mask, query)
        text = self.recording_generate([state_img], [prompt], 1, False)[0][0]
        action = self.paradigm.parse(text)
        if action is None:
            return None, None
        c = clicks_format.to_click(action, *mask.shape, grid=self.paradigm.options.grid)
        return Click(int(c.x), int(c.y), bool(c.positive)), action.iou

    def why_no_click(self) -> str:
        return unreadable_answer(self.last_text)


def unreadable_answer(text: str | None, limit: int = 60) -> str:
    """The sentence for an answer that is not a click, quoting its first ``limit`` characters."""
    text = "" if text is None else " ".join(str(text).split())
    if not text:
        return "the policy's answer was empty, so it could not be read as a click"
    quoted = text[:limit] + ("…" if len(text) > limit else "")
    return f"the policy's answer could not be read as a click: “{quoted}”"


def why_no_click(policy: Any) -> str:
    """The policy's own reason for proposing nothing, or a generic one."""
    explain = getattr(policy, "why_no_click", None)
    if callable(explain):
        try:
            return str(explain())
        except Exception:  # noqa: BLE001 - a reason must never break the view
            pass
    return "the policy proposed no click"

