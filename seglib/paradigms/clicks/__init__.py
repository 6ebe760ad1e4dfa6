"""Click paradigm (SegAgent): the action format (``format``) and ``ClicksParadigm``.

``from seglib.paradigms import clicks; clicks.parse(text)`` reads the format's names from here;
``step_ious`` / ``clicks_metrics`` are the NoC metrics of ``metrics``.
"""
from seglib.paradigms.clicks.format import *  # noqa: F401,F403
from seglib.paradigms.clicks.metrics import clicks_metrics, step_ious  # noqa: F401
from seglib.paradigms.clicks.paradigm import ClicksOptions, ClicksParadigm, click_history  # noqa: F401
