"""``nniray.nas.nn``: the model-space layer (see :mod:`nniray.nas.nn.pytorch`)."""
from __future__ import annotations

from typing import Any

from .pytorch import *  # noqa: F401,F403
from .pytorch import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    from . import pytorch
    return getattr(pytorch, name)
