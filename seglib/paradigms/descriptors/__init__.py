"""Semantic-descriptors paradigm (Text4Seg): the answer format (``format``), the segmenter refinement
(``refine``) and ``DescriptorsParadigm``.

``from seglib.paradigms import descriptors; descriptors.parse(text)`` reads the format's names from here.
"""
from seglib.paradigms.descriptors.format import *  # noqa: F401,F403
from seglib.paradigms.descriptors.paradigm import (  # noqa: F401
    PROMPT_TEMPLATES,
    DescriptorsOptions,
    DescriptorsParadigm,
)
