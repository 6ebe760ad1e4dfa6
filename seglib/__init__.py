"""seglib: segmentation by multimodal LLMs trained with reinforcement learning.

One code base for the 2025 methods SegAgent, Seg-Zero / VisionReasoner, StAR and
SimpleSeg, with Text4Seg as a baseline. The methods page is docs/METHODS.md.
"""
from seglib._compat import ensure_torchvision_importable, quiet_library_notices

ensure_torchvision_importable()
quiet_library_notices()

from seglib.progress import configure as _configure_progress  # noqa: E402

_configure_progress()

__version__ = "0.1.0"
