"""The frozen context: the sample that model-space constructors read (``fixed_arch`` sets it).

Kept in ``nniray.mutable`` (not in ``nniray.nas``) because freezing is a property of the space
model: any code, HPO or NAS, may call :func:`ensure_frozen` on a mutable.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from .mutable import Mutable, Sample

__all__ = ["frozen_context", "current_sample", "ensure_frozen"]

_local = threading.local()


def _stack() -> list[Sample]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


@contextlib.contextmanager
def frozen_context(sample: Sample) -> Iterator[Sample]:
    """Inside the block, :func:`current_sample` is ``sample`` (merged over an outer one)."""
    stack = _stack()
    merged = dict(stack[-1]) if stack else {}
    merged.update(sample)
    stack.append(merged)
    try:
        yield merged
    finally:
        stack.pop()


def current_sample() -> Sample | None:
    stack = _stack()
    return stack[-1] if stack else None


def ensure_frozen(value: Any, strict: bool = False) -> Any:
    """A concrete value: ``value`` itself if it is not a mutable; frozen by the current sample
    inside a frozen context; otherwise its default (or an error when ``strict``)."""
    if not isinstance(value, Mutable):
        return value
    sample = current_sample()
    if sample is not None:
        return value.freeze(sample)
    if strict:
        raise RuntimeError(f"{value!r} is not frozen: build the model inside fixed_arch(...) / frozen_context(...)")
    return value.default()
