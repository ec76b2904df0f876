"""``nni.nas.benchmarks``: the same module as :mod:`nniray.nas.benchmark`."""
import sys as _sys

from nniray.nas import benchmark as _impl
from nniray.nas.benchmark import nasbench101, nasbench201, nds, nlp  # noqa: F401

for _name in ("nasbench101", "nasbench201", "nds", "nlp"):
    _sys.modules[f"{__name__}.{_name}"] = getattr(_impl, _name)
_sys.modules[__name__] = _impl
