"""Progress bars that read well both live and in a saved notebook.

In JupyterLab, ``tqdm.auto`` draws ipywidgets bars. A notebook executed
headlessly (papermill, ``python -m seglib run``) has no front end to update
them, so the saved file shows every bar frozen at "0%". The runner sets
``SEGLIB_HEADLESS=1`` for its kernels; ``import seglib`` then points
``tqdm.auto`` at a text bar on stdout that redraws at most every
``mininterval`` seconds and ends at its final state, which is what the saved
notebook keeps. Libraries that bind ``tqdm.auto.tqdm`` at import time
(transformers' trainer callbacks) see the text bar as long as ``seglib`` is
imported first, as every notebook does.
"""
from __future__ import annotations

import os
import sys

HEADLESS_ENV = "SEGLIB_HEADLESS"


def headless() -> bool:
    """True inside a kernel started by the notebook runner."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def use_text_progress_bars(mininterval: float = 5.0) -> None:
    """Make ``tqdm.auto`` (and ``tqdm.autonotebook``) draw text bars on stdout."""
    import tqdm.auto
    import tqdm.autonotebook
    import tqdm.std

    if getattr(tqdm.auto.tqdm, "_seglib_text", False):
        return

    class TextBar(tqdm.std.tqdm):
        _seglib_text = True

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("file", sys.stdout)
            kwargs.setdefault("mininterval", mininterval)
            kwargs.setdefault("ncols", 100)
            kwargs.pop("dynamic_ncols", None)
            super().__init__(*args, **kwargs)

    def trange(*args, **kwargs):
        return TextBar(range(*args), **kwargs)

    for module in (tqdm.auto, tqdm.autonotebook):
        module.tqdm = TextBar
        module.trange = trange


def configure() -> None:
    """Called by ``import seglib``: text bars when headless, tqdm's own choice otherwise."""
    if headless():
        use_text_progress_bars()
