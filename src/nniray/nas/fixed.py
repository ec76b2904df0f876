"""``fixed_arch``: build the concrete model of one architecture.

Inside ``with fixed_arch(arch):`` every model-space primitive that is constructed reads its
decision from ``arch`` (a dict ``{label: chosen}`` or the path of a JSON file holding one) and
becomes the concrete thing: a ``LayerChoice`` is the chosen candidate module, an ``InputChoice``
a :class:`ChosenInputs`, a ``Repeat`` an ``nn.Sequential`` of the chosen depth, a ValueChoice
argument of a wrapped module its value.  A label the architecture lacks raises a KeyError that
names it and the labels the architecture has; labels of the architecture that no primitive asked
for raise a KeyError when the block ends (the architecture does not belong to this space).
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import Any, Iterator

from nniray.mutable import LabeledMutable, Mutable, SampleMissingError, frozen_context
from nniray.mutable.frozen import current_sample

__all__ = ["fixed_arch", "fixed_value", "is_fixed", "FixedArchError"]

log = logging.getLogger("nniray.nas")
_local = threading.local()


class FixedArchError(KeyError):
    """An architecture that does not fit the model space built from it."""

    def __str__(self) -> str:
        return self.args[0]


def _used_stack() -> list[set]:
    if not hasattr(_local, "used"):
        _local.used = []
    return _local.used


def _load(arch: Any) -> dict:
    if isinstance(arch, (str, Path)):
        path = Path(arch).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"fixed_arch: no architecture file {str(path)!r}")
        arch = json.loads(path.read_text())
    if not isinstance(arch, dict):
        raise TypeError(f"fixed_arch expects a dict {{label: chosen}} or the path of a JSON file, got "
                        f"{type(arch).__name__}")
    return dict(arch)


@contextlib.contextmanager
def fixed_arch(fixed_arch: str | Path | dict, verbose: bool = True) -> Iterator[dict]:
    """Models constructed inside the block are the architecture ``fixed_arch``."""
    arch = _load(fixed_arch)
    if verbose:
        log.info("fixed architecture: %s", arch)
    used: set = set()
    _used_stack().append(used)
    try:
        with frozen_context(arch) as sample:
            yield sample
    finally:
        _used_stack().pop()
    if used:
        unknown = sorted(k for k in arch if k not in used)
        if unknown:
            raise FixedArchError(f"fixed_arch: label(s) {', '.join(map(repr, unknown))} are not in the model space "
                                 f"built inside the block; its labels are {', '.join(map(repr, sorted(used)))}")


def is_fixed() -> bool:
    return current_sample() is not None


def mark_used(labels: Any) -> None:
    for used in _used_stack():
        used.update(labels)


def fixed_value(mutable: Mutable) -> Any:
    """The frozen value of ``mutable`` under the current architecture (marks its labels used)."""
    sample = current_sample()
    assert sample is not None
    labels = [m.label for m in mutable.leaf_mutables(lambda m: isinstance(m, LabeledMutable))]
    mark_used(labels)
    try:
        return mutable.freeze(sample)
    except SampleMissingError as e:
        raise FixedArchError(f"fixed_arch: the architecture has no choice for label {e.label!r}; it has: "
                             f"{', '.join(map(repr, e.known)) or 'no labels'}") from None
