"""``nni.retiarii.nn.pytorch``: the same module as :mod:`nniray.nas.nn.pytorch`."""
import sys as _sys

from nniray.nas.nn import pytorch as _impl

_sys.modules[__name__] = _impl
