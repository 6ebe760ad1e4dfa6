"""seglib: segmentation by multimodal LLMs trained with reinforcement learning.

One code base for four 2025 methods (SegAgent, Seg-Zero/VisionReasoner, StAR,
SimpleSeg). See ``../shared/design`` in the development tree, or README.md.
"""
from seglib._compat import ensure_torchvision_importable

ensure_torchvision_importable()

__version__ = "0.1.0"
