"""What rewritten annotated code calls at run time (kept tiny: it runs in every trial process)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from nniray import trial as _trial

_MISSING = object()


def _param(key: str) -> Any:
    params = _trial.get_current_parameter()
    if not params:
        fetched = _trial.get_next_parameter()  # the first call of the trial: ask for them
        params = fetched if isinstance(fetched, dict) else _trial.get_current_parameter()
    if isinstance(params, dict) and key in params:
        return params[key]
    return _MISSING


def variable(key: str, default: Callable[[], Any]) -> Any:
    """The tuned value of ``key``; standalone (no experiment), the line's own value."""
    value = _param(key)
    return default() if value is _MISSING else value


def choice(key: str, options: Sequence[Callable[[], Any]], labels: Sequence[Any], default: Callable[[], Any]) -> Any:
    """The option the tuner chose: its value is one of ``labels`` (the search space's
    ``_value``); the matching option expression is evaluated in the trial's own scope."""
    value = _param(key)
    if value is _MISSING:
        return default()
    for option, label in zip(options, labels):
        # 1 == 1.0 is the same option; the string '1' is not
        if label == value and isinstance(label, str) == isinstance(value, str):
            return option()
    raise ValueError(f"annotation {key!r}: the tuner sent {value!r}, which is none of {list(labels)!r}")
