"""nniray's exceptions, under one root: ``except nniray.errors.NniRayError`` catches every
error nniray raises on purpose (bad config, search space, metric, algorithm, compression
config, an experiment that cannot be started...), and lets real bugs through.

Each error is still importable where it was first defined (``nniray.config.ConfigError``,
``nniray.search_space.SearchSpaceError``, ``nniray.utils.MetricError``, ...): those modules
define them as subclasses of the classes here, or re-export them.  Errors that are also
``ValueError``s stay ``ValueError``s, so existing ``except ValueError`` code keeps working.
"""
from __future__ import annotations


class NniRayError(Exception):
    """The root of every error nniray raises on purpose; the message says what to fix."""


class ConfigError(NniRayError, ValueError):
    """A config that cannot be used (an experiment config, or a compression ``config_list``);
    the message names the field and the fix."""


class ExperimentError(NniRayError, RuntimeError):
    """An experiment that cannot be started, found or changed; the message says why."""


class ExperimentRunningError(ExperimentError):
    """The experiment is already run by another process (a second ``resume`` of it)."""
