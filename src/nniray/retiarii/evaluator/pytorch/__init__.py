"""``nni.retiarii.evaluator.pytorch`` (and ``.lightning``): the same as
:mod:`nniray.nas.evaluator.pytorch`."""
import sys as _sys

from nniray.nas.evaluator.pytorch import lightning  # noqa: F401
from nniray.nas.evaluator.pytorch.lightning import (Classification, DataLoader, Lightning, LightningModule,  # noqa: F401
                                                    Regression, Trainer)

_sys.modules[__name__ + ".lightning"] = lightning
__all__ = ["Classification", "Regression", "Lightning", "LightningModule", "DataLoader", "Trainer", "lightning"]
