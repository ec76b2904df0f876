"""The trial side of a NAS experiment: rebuild the sampled architecture and evaluate it.

A :class:`NasTrial` is the experiment's trial function.  It carries the model space (its class
and init arguments, by value when they live in ``__main__``) and the evaluator (traced
arguments as recipes), is sent once to each trial runner, and per trial receives the
architecture dict as its parameters: the model is built under ``fixed_arch`` and handed to the
evaluator, whose reports (``nniray.report_*``) are the trial's metrics.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["NasTrial", "ModelBuilder"]


class ModelBuilder:
    """Builds the concrete model of an architecture: the space class rebuilt under fixed_arch."""

    def __init__(self, space_class: type, init_args: tuple) -> None:
        self.space_class = space_class
        self.init_args = init_args

    def __call__(self, sample: dict) -> Any:
        from nniray.nas.nn.pytorch.base import freeze_model
        return freeze_model(self.space_class, sample, self.init_args)

    def model_class(self, sample: dict) -> type:
        """A class whose instances are that architecture (what an NNI fit function receives)."""
        builder = self

        class FixedModel:
            def __new__(cls, *args: Any, **kwargs: Any) -> Any:
                return builder(sample)

        FixedModel.__name__ = FixedModel.__qualname__ = self.space_class.__name__
        return FixedModel


class NasTrial:
    def __init__(self, builder: ModelBuilder, evaluator: Any, experiment_dir: str | None = None) -> None:
        self.builder = builder
        self.evaluator = evaluator
        self.experiment_dir = experiment_dir

    def __call__(self, parameters: dict) -> Any:
        import nniray
        if self.experiment_dir:
            # function trials share the runner's process: point NNI_OUTPUT_DIR at this trial
            os.environ["NNI_OUTPUT_DIR"] = str(Path(self.experiment_dir) / "trials" / nniray.get_trial_id())
        if getattr(self.evaluator, "uses_sample", False):  # the benchmark engine: a lookup, no model
            self.evaluator.evaluate_sample(dict(parameters or {}))
            return None
        model_cls = self.builder.model_class(dict(parameters or {}))
        self.evaluator._execute(model_cls)
        return None
