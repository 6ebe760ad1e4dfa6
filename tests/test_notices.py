"""Library notices seglib cannot fix are filtered in one place (seglib._compat); every other warning still shows."""
import logging
import warnings

from seglib._compat import quiet_library_notices


def test_listed_library_warning_is_filtered_and_others_kept():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_library_notices()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("`something_else` is deprecated", FutureWarning)
    assert [str(w.message) for w in caught] == ["`something_else` is deprecated"]


def test_listed_library_log_line_is_filtered_and_others_kept(caplog):
    quiet_library_notices()
    log = logging.getLogger("transformers.trainer_utils")
    with caplog.at_level(logging.WARNING, logger="transformers.trainer_utils"):
        log.warning("mtime may not be reliable on this filesystem, falling back to numerical ordering")
        log.warning("a different notice")
    assert [r.getMessage() for r in caplog.records] == ["a different notice"]
