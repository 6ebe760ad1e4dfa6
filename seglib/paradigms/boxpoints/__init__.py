"""Box + points paradigm (Seg-Zero, VisionReasoner, StAR): the answer format (``format``) and ``BoxPointsParadigm``.

``from seglib.paradigms import boxpoints; boxpoints.parse(text)`` reads the format's names from here.
"""
from seglib.paradigms.boxpoints.format import *  # noqa: F401,F403
from seglib.paradigms.boxpoints.paradigm import BoxPointsOptions, BoxPointsParadigm  # noqa: F401
