"""REST (StAR stage 2) on top of trl's ``GRPOTrainer``: train on the most extreme-advantage rollouts of each group.

Sample n rollouts per prompt and keep the m with the most extreme advantages,
the top m/2 and the bottom m/2, for the update. ``RESTGRPOTrainer`` overrides one
method, ``_generate_and_score_completions``: the hook that turns a generation batch
into the dict of tensors (``prompt_ids``, ``completion_ids``, masks,
``advantages``, pixel values, …) the loss is computed on. The override calls
trl's method unchanged (generation with ``num_generations = n``, rewards, group
advantages over all n rollouts), then keeps, in every group of n rows, the m
rows chosen by :func:`rest_select` and drops the others from every per-row
entry (:func:`take_rows`; image tensors are split per row with trl's own
``split_pixel_values_by_grid`` first and re-joined after). The number of loss
tokens is recounted. trl's loss then runs on those P·m rows only, so the GRPO
update is computed on the kept rollouts, with the advantages normalised over
the whole group of n as in StAR. Requirements: one process, or groups that do
not straddle processes; ``steps_per_generation`` must divide P·m (we use 1).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch


def rest_select(advantages: Sequence[float] | torch.Tensor, group_size: int, keep: int) -> list[int]:
    """Indices kept by REST: in each consecutive group of ``group_size``, the ``keep`` most extreme advantages.

    The bottom ``keep // 2`` and the top ``keep - keep // 2`` of each group (StAR: m/2 each for even m).
    Ties are broken by position (a stable sort), so the choice is deterministic. Returned sorted.
    """
    adv = torch.as_tensor(advantages, dtype=torch.float64).flatten()
    if adv.numel() % group_size:
        raise ValueError(f"rest_select: {adv.numel()} advantages are not a whole number of groups of {group_size}")
    if not 0 < keep <= group_size:
        raise ValueError(f"rest_select: keep must be in [1, {group_size}], got {keep}")
    low, high = keep // 2, keep - keep // 2
    kept: list[int] = []
    for start in range(0, adv.numel(), group_size):
        order = torch.sort(adv[start:start + group_size], stable=True).indices.tolist()
        chosen = order[:low] + order[group_size - high:]
        kept.extend(start + i for i in sorted(chosen))
    return kept


def take_rows(batch: dict[str, Any], rows: Sequence[int]) -> dict[str, Any]:
    """Keep ``rows`` of every per-row entry of a trl generation batch (tensors, lists, per-row image tensors)."""
    from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

    n = batch["completion_ids"].shape[0]
    split = split_pixel_values_by_grid(dict(batch))
    index = torch.as_tensor(list(rows), dtype=torch.long)
    out: dict[str, Any] = {}
    for key, value in split.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == n:
            out[key] = value[index.to(value.device)]
        elif isinstance(value, list) and len(value) == n:
            out[key] = [value[i] for i in rows]
        else:
            out[key] = value
    out = unsplit_pixel_values_by_grid(out)
    mask = out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
    if "num_items_in_batch" in out:
        out["num_items_in_batch"] = mask.sum()
    return out


def rest_trainer_class(base: Any = None):
    """``base`` (default trl's ``GRPOTrainer``) made REST: the loss runs on the kept rollouts of each group."""
    from trl import GRPOTrainer

    base = base or GRPOTrainer

    class RESTGRPOTrainer(base):
        """GRPOTrainer that trains on the ``rest_keep`` most extreme-advantage rollouts of each group (StAR REST)."""

        def __init__(self, *args: Any, rest_keep: int, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.rest_keep = int(rest_keep)
            if self.accelerator.num_processes > 1:
                raise NotImplementedError("REST selection is implemented for one process (groups must be local)")

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return out
            kept = rest_select(out["advantages"].detach().cpu(), self.num_generations, self.rest_keep)
            self._metrics["train"]["rest/kept_fraction"].append(len(kept) / out["advantages"].shape[0])
            self._metrics["train"]["rest/kept_abs_advantage"].append(
                float(out["advantages"][kept].abs().mean().item()) if kept else 0.0)
            return take_rows(out, kept)

    return RESTGRPOTrainer
