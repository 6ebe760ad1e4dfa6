"""Keep torchvision importable beside the CPU build of torch.

PyPI's torchvision 0.28.0 (the release paired with torch 2.13.0) ships compiled
ops linked against CUDA torch. Beside the CPU wheel of torch those ops cannot
load, and ``import torchvision`` then stops in its fake-tensor registrations
with "operator torchvision::nms does not exist". sam2's image predictor needs
only torchvision's pure-Python transforms (``Normalize``, ``Resize``,
``ToTensor``), and transformers' fast image processors likewise need no
compiled op. So when the ops are missing we declare the two operator schemas
those registrations look for; torchvision then imports, its transforms work,
and calling ``torchvision.ops.nms`` fails loudly instead of the whole import.
With a CUDA build of torch (full scale on GPUs) the ops load and this does nothing.
"""
from __future__ import annotations

import importlib.util
import sys

_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def ensure_torchvision_importable() -> None:
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    if importlib.util.find_spec("torch") is None:
        return
    try:
        import torchvision  # noqa: F401
        return
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    for op in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{op}", _NMS_SCHEMA)
        except RuntimeError:  # already declared by an earlier attempt
            pass
    import torchvision  # noqa: F401,F811


# Library notices about the libraries' own internals, which seglib cannot change: each is matched exactly,
# so a new warning still shows. (Warnings caused by seglib's own calls are fixed at the call instead.)
_LIBRARY_WARNINGS = (
    # trl's generation context reads the deprecated model property itself (trl/models/utils.py)
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
)
_LIBRARY_LOG_LINES = {
    # transformers' checkpoint sorter on filesystems whose mtimes are coarse; it then sorts by step, as seglib wants
    "transformers.trainer_utils": ("mtime may not be reliable on this filesystem",),
}


def quiet_library_notices() -> None:
    """Filter the library notices listed above, in this one place."""
    import logging
    import warnings

    for category, message in _LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, lines in _LIBRARY_LOG_LINES.items():
        logging.getLogger(name).addFilter(lambda record, lines=lines: not any(l in record.getMessage() for l in lines))
