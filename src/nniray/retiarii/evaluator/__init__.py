"""``nni.retiarii.evaluator``: the same as :mod:`nniray.nas.evaluator`."""
from nniray.nas.evaluator import Evaluator, FunctionalEvaluator  # noqa: F401

__all__ = ["Evaluator", "FunctionalEvaluator"]
