"""Small helpers shared by algorithms and the trial side (NNI's ``nni.utils``)."""
from __future__ import annotations

import math
from enum import Enum
from typing import Any

from nniray.errors import NniRayError


class OptimizeMode(str, Enum):
    Minimize = "minimize"
    Maximize = "maximize"


def parse_optimize_mode(mode: Any, default: str = "maximize") -> OptimizeMode:
    """``'maximize'``/``'minimize'`` (any case) → OptimizeMode; anything else is a clear error."""
    if mode is None:
        mode = default
    if isinstance(mode, OptimizeMode):
        return mode
    try:
        return OptimizeMode(str(mode).lower())
    except ValueError:
        raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {mode!r}") from None


class MetricError(NniRayError, ValueError):
    """A reported metric that built-in algorithms cannot use."""


def extract_scalar_reward(value: Any, scalar_key: str = "default") -> float:
    """A number, or a dict's numeric ``default``, as a finite float; anything else is an error
    that says what to report instead."""
    raw = value
    if isinstance(value, dict):
        if scalar_key not in value:
            raise MetricError(f"metric dict {raw!r} has no {scalar_key!r} key: report a number or "
                              f"a dict with a numeric {scalar_key!r}")
        value = value[scalar_key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_np_number(value):
        raise MetricError(f"metric {raw!r} is not a number: report a number or a dict with a numeric "
                          f"{scalar_key!r} (got {type(value).__name__})")
    f = float(value)
    if not math.isfinite(f):
        raise MetricError(f"metric {raw!r} is not finite (NaN or inf): report a finite number")
    return f


def _is_np_number(v: Any) -> bool:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return False
    return isinstance(v, (np.integer, np.floating))


def merge_parameter(base_params: Any, override_params: dict | None) -> Any:
    """Update ``base_params`` (dict or namespace) in place with ``override_params``; returns it.

    As NNI's ``merge_parameter``: a key that the base lacks is an error, and a value is cast to
    the base's type when the base value is not None.
    """
    if override_params is None:
        return base_params
    is_dict = isinstance(base_params, dict)
    for k, v in override_params.items():
        has = k in base_params if is_dict else hasattr(base_params, k)
        if not has:
            raise ValueError(f"key {k!r} is not found in the base parameters")
        cur = base_params[k] if is_dict else getattr(base_params, k)
        if cur is not None and v is not None and type(cur) is not type(v):
            try:
                v = type(cur)(v)
            except (TypeError, ValueError):
                raise ValueError(f"cannot cast {k!r}={v!r} to {type(cur).__name__}") from None
        if is_dict:
            base_params[k] = v
        else:
            setattr(base_params, k, v)
    return base_params


class ClassArgsValidator:
    """Base of a registered algorithm's classArgs validator (``nni.ClassArgsValidator``).

    ``validate_class_args(**kwargs)`` runs before the experiment starts and raises with a
    message that names the argument.  ``choices`` and ``range`` are the helpers NNI offers.
    """

    def validate_class_args(self, **kwargs: Any) -> None:
        return None

    def choices(self, key: str, *args: Any):
        def check(v: Any) -> bool:
            if v not in args:
                raise ValueError(f"{key} should be in {args}, got {v!r}")
            return True
        return check

    def range(self, key: str, keyType: type, start: Any, end: Any):
        def check(v: Any) -> bool:
            if not isinstance(v, keyType):
                raise ValueError(f"{key} should be {keyType.__name__}, got {type(v).__name__}")
            if not start <= v <= end:
                raise ValueError(f"{key} should be in range [{start}, {end}], got {v}")
            return True
        return check


def extract_scalar_history(trial_history: list, scalar_key: str = "default") -> list[float]:
    """Each intermediate result of ``trial_history`` as a float (NNI's ``extract_scalar_history``)."""
    return [extract_scalar_reward(v, scalar_key) for v in trial_history]


class NodeType:
    """The keys of NNI's internal nested-parameter format (``nni.utils.NodeType``)."""

    ROOT = "root"
    TYPE = "_type"
    VALUE = "_value"
    INDEX = "_index"
    NAME = "_name"


def split_index(params: Any) -> Any:
    """Drop NNI's ``{"_index": i, "_value": v}`` wrappers, keeping the values (``nni.utils.split_index``)."""
    if isinstance(params, dict):
        if NodeType.INDEX in params:
            return split_index(params[NodeType.VALUE])
        return {k: split_index(v) for k, v in params.items()}
    return params


def json2space(x: Any, oldy: Any = None, name: str = NodeType.ROOT) -> list[str]:
    """The names of the stochastic nodes of a search space, as NNI's ``json2space`` lists them
    (``root[key]-type``; with ``oldy``, only the branches chosen there)."""
    y: list[str] = []
    if isinstance(x, dict):
        if NodeType.TYPE in x:
            _type = x[NodeType.TYPE]
            name = name + "-" + _type
            if _type == "choice":
                if oldy is not None:
                    index = oldy[NodeType.INDEX]
                    y += json2space(x[NodeType.VALUE][index], oldy[NodeType.VALUE], name=name + f"[{index}]")
                else:
                    y += json2space(x[NodeType.VALUE], None, name=name)
            y.append(name)
        else:
            for key in x:
                y += json2space(x[key], oldy[key] if oldy else None, name + f"[{key}]")
    elif isinstance(x, list):
        for i, x_i in enumerate(x):
            if isinstance(x_i, dict) and NodeType.NAME not in x_i:
                raise ValueError("'_name' key is not found in this nested search space.")
            y += json2space(x_i, oldy[i] if oldy else None, name + f"[{i}]")
    return y
