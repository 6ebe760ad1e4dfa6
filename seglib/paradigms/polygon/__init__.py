"""Polygon paradigm (SimpleSeg): the answer format (``format``) and ``PolygonParadigm``.

``from seglib.paradigms import polygon; polygon.parse(text)`` reads the format's names from here.
"""
from seglib.paradigms.polygon.format import *  # noqa: F401,F403
from seglib.paradigms.polygon.paradigm import PolygonOptions, PolygonParadigm  # noqa: F401
