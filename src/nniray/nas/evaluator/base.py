"""Evaluators: how a sampled model is trained and scored (NNI's ``nni.retiarii.evaluator``).

An evaluator travels to the trial process with the architecture: its arguments must be
serializable (checked at construction: a clear error names the argument and says
``nniray.trace``), and traced arguments travel as recipes, rebuilt in the trial.
"""
from __future__ import annotations

import abc
import inspect
from typing import Any, Callable

from nniray.trace import check_serializable, dump_recipe, load_recipe

__all__ = ["Evaluator", "FunctionalEvaluator", "model_factory"]


def model_factory(model_or_cls: Any) -> Callable[[], Any]:
    """A zero-argument callable building the model (NNI passes the fit function a class)."""
    if inspect.isclass(model_or_cls) or (callable(model_or_cls) and not hasattr(model_or_cls, "parameters")):
        return model_or_cls
    instance = model_or_cls

    class _Given:
        """The already-built model, handed over as a 'class' (calling it returns the model)."""

        def __new__(cls):
            return instance

    _Given.__name__ = type(instance).__name__
    return _Given


class Evaluator(abc.ABC):
    """Trains and evaluates one concrete model, reporting through the trial API."""

    @abc.abstractmethod
    def _execute(self, model_cls: Callable[[], Any]) -> Any: ...

    def evaluate(self, model_or_cls: Any) -> Any:
        """Train/evaluate one concrete architecture: a class/callable with no arguments that
        builds it, or a model instance (e.g. built under ``fixed_arch``)."""
        return self._execute(model_factory(model_or_cls))

    # traced arguments travel as recipes (rebuilt on the other side)
    def __getstate__(self) -> dict:
        return {k: dump_recipe(v) for k, v in self.__dict__.items()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({k: load_recipe(v) for k, v in state.items()})


class FunctionalEvaluator(Evaluator):
    """``fit(model_cls, **kwargs)``: the fit function receives the model class (call it to get the
    model) and reports with ``nniray.report_final_result``.  The function may live in
    ``__main__`` (it travels by value)."""

    def __init__(self, function: Callable[..., Any], **kwargs: Any) -> None:
        if not callable(function):
            raise TypeError(f"FunctionalEvaluator: function must be callable, got {function!r}")
        check_serializable(function, "FunctionalEvaluator function")
        for name, value in kwargs.items():
            check_serializable(value, f"FunctionalEvaluator argument {name!r}")
        self.function = function
        self.arguments = dict(kwargs)

    def _execute(self, model_cls: Callable[[], Any]) -> Any:
        return self.function(model_cls, **self.arguments)

    def __repr__(self) -> str:
        return f"FunctionalEvaluator({getattr(self.function, '__qualname__', self.function)}, " \
               f"arguments={sorted(self.arguments)})"
