"""``nni.nas.strategy``: the same module as :mod:`nniray.strategies.nas`."""
import sys as _sys

from nniray.strategies import nas as _impl

_sys.modules[__name__] = _impl
