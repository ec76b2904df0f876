"""Automatic labels that are stable: the same model space built twice gets the same labels.

A label counter is scoped: :func:`label_scope` (entered by every outermost model-space
construction, see ``nniray.nas.nn``) starts a fresh counter, so labels depend only on the
order of construction *inside* the space, not on what was built before it in the process.
That is what lets a trial process rebuild the driver's space and find the same labels.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

__all__ = ["auto_label", "label_scope"]

_local = threading.local()


def _stack() -> list[list[int]]:
    if not hasattr(_local, "stack"):
        _local.stack = [[0]]  # the process-wide scope (outside any model space)
    return _local.stack


def auto_label(prefix: str = "_mutation") -> str:
    """The next automatic label of the current scope: ``_mutation_1``, ``_mutation_2``, ..."""
    counter = _stack()[-1]
    counter[0] += 1
    return f"{prefix}_{counter[0]}"


@contextlib.contextmanager
def label_scope(reset: bool = True) -> Iterator[None]:
    """Number automatic labels from 1 inside the block (nested scopes share the outer one
    unless ``reset``)."""
    stack = _stack()
    stack.append([0] if reset else stack[-1])
    try:
        yield
    finally:
        stack.pop()


def scope_depth() -> int:
    return len(_stack()) - 1
