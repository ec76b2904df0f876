"""nniray: NNI (Neural Network Intelligence) rebuilt as a distributed actor system on Ray.

``import nniray as nni`` gives an NNI trial script the API it expects.  This module imports
neither Ray nor torch, so a command trial starts fast; heavier parts load on first use.
"""
from __future__ import annotations

import json as _json
from typing import Any

from .assessor import AssessResult, Assessor
from .trial import (
    get_current_parameter,
    get_experiment_id,
    get_next_parameter,
    get_sequence_id,
    get_trial_id,
    report_final_result,
    report_intermediate_result,
)
from .tuner import NoMoreTrialError, Tuner
from .log import enable_global_logging, silence_stdout
from .utils import ClassArgsValidator, merge_parameter

__version__ = "0.1.0"

__all__ = [
    "get_next_parameter", "get_current_parameter", "report_intermediate_result", "report_final_result",
    "get_experiment_id", "get_trial_id", "get_sequence_id", "Tuner", "Assessor", "AssessResult",
    "NoMoreTrialError", "ClassArgsValidator", "merge_parameter", "dump", "load", "trace", "__version__",
    "get_next_parameters", "silence_stdout", "enable_global_logging", "Experiment",
]

# NNI keeps the plural spelling of its multi-phase era as an alias.
get_next_parameters = get_next_parameter


def dump(obj: Any, **kwargs: Any) -> str:
    """JSON text of ``obj`` (NNI's ``nni.dump`` for plain data)."""
    return _json.dumps(obj, **kwargs)


def load(string: str | None = None, **kwargs: Any) -> Any:
    """Inverse of :func:`dump`."""
    return _json.loads(string, **kwargs)


_MUTABLE_NAMES = ("choice", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal", "lognormal",
                  "qlognormal", "randint")


def __getattr__(name: str) -> Any:
    # Heavy or torch-bound names load on first use only.
    if name == "trace":
        from .trace import trace
        return trace
    if name == "Experiment":  # nni.Experiment; imported lazily (it pulls in the CLI and the store)
        from .experiment import Experiment
        return Experiment
    if name in _MUTABLE_NAMES:  # NNI 3.0's nni.choice, nni.uniform, ... (nniray.mutable)
        from . import mutable
        return getattr(mutable, name)
    if name == "serialize":
        from .trace import serialize
        return serialize
    raise AttributeError(f"module 'nniray' has no attribute {name!r}")
