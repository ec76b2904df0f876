"""NNI's logging switches: ``nni.silence_stdout()`` and ``nni.enable_global_logging()``.

nniray logs under the ``nniray`` logger.  ``silence_stdout`` removes the console handler
that nniray installs (progress and experiment messages), ``enable_global_logging`` sends the
root logger's records to the console too, as NNI's do.
"""
from __future__ import annotations

import logging
import sys

_FORMAT = "[%(asctime)s] %(levelname)s (%(name)s/%(threadName)s) %(message)s"
_HANDLER_FLAG = "_nniray_console"


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]


def _add_console(logger: logging.Logger, level: int) -> None:
    if _console_handlers(logger):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
    setattr(handler, _HANDLER_FLAG, True)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)


def enable_global_logging(enable: bool = True) -> None:
    """Print every logger's records (the root logger's) on stdout, in NNI's format; ``False`` undoes it."""
    root = logging.getLogger()
    if enable:
        _add_console(root, logging.INFO)
    else:
        for h in _console_handlers(root):
            root.removeHandler(h)


def silence_stdout() -> None:
    """Stop printing log records on stdout (nniray's and, if enabled, the global ones)."""
    for name in ("nniray", ""):
        logger = logging.getLogger(name)
        for h in _console_handlers(logger):
            logger.removeHandler(h)
    logging.getLogger("nniray").propagate = False
    _silenced[0] = True


_silenced = [False]


def is_silenced() -> bool:
    return _silenced[0]
