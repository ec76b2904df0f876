"""``TransformersEvaluator``: training and evaluation through a Hugging Face ``Trainer``.

The user traces the Trainer class (``nniray.trace(Trainer)(model, training_args, ...)``).  Each
``train(max_steps, max_epochs)`` builds a fresh Trainer from the trace with the compressed model
and those limits; compressor hooks run through ``compute_loss`` (loss patches) and a
``TrainerCallback`` (``on_pre_optimizer_step`` / ``on_optimizer_step``).  ``evaluate()`` calls
``Trainer.evaluate()``: the default metric is ``eval_default`` if ``compute_metrics`` returns a
``'default'``, else ``-eval_loss`` (higher is better).

transformers is imported only when this evaluator is created.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import torch

from nniray.trace import get_trace, is_traceable

from .base import Evaluator
from .torch_evaluator import rebuild_optimizer, rebuild_scheduler

__all__ = ["TransformersEvaluator"]


def _transformers():
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("TransformersEvaluator needs transformers: pip install 'nniray[transformers]'") from exc
    return transformers


class TransformersEvaluator(Evaluator):
    """``TransformersEvaluator(trainer, dummy_input=None)`` over ``nniray.trace(Trainer)(...)``."""

    def __init__(self, trainer: Any, dummy_input: Any = None):
        tf = _transformers()
        super().__init__(dummy_input)
        if not isinstance(trainer, tf.Trainer):
            raise TypeError(f"TransformersEvaluator: trainer must be a transformers.Trainer, got {type(trainer).__name__}")
        if not is_traceable(trainer):
            raise TypeError("TransformersEvaluator: the trainer was not created through nniray.trace; write "
                            "nniray.trace(Trainer)(model, training_args, ...)")
        self.trainer = trainer
        self._active: Optional[Any] = None

    def _build_trainer(self, model: torch.nn.Module, max_steps: Optional[int], max_epochs: Optional[int]) -> Any:
        tf = _transformers()
        info = get_trace(self.trainer)
        bound = info.bound_arguments()
        kwargs = dict(bound.pop("kwargs", {}) or {})
        kwargs.update(bound)
        kwargs["model"] = model
        args = copy.deepcopy(kwargs.get("args") or self.trainer.args)
        if max_steps is not None:
            args.max_steps = int(max_steps)
        elif max_epochs is not None:
            args.max_steps = -1
            args.num_train_epochs = max_epochs
        kwargs["args"] = args
        optimizers = kwargs.get("optimizers")
        if optimizers and optimizers[0] is not None:
            opt = rebuild_optimizer(optimizers[0], model, self._extra_param_groups) if is_traceable(optimizers[0]) \
                else optimizers[0]
            sched = optimizers[1]
            if sched is not None and is_traceable(sched):
                sched = rebuild_scheduler(sched, {id(optimizers[0]): opt})
            kwargs["optimizers"] = (opt, sched)
        evaluator = self
        callbacks = list(kwargs.get("callbacks") or [])

        class _StepHooks(tf.TrainerCallback):
            def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                evaluator._run_before_step()

            def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                evaluator._run_after_step()

        kwargs["callbacks"] = callbacks + [_StepHooks()]
        trainer = info.symbol(**kwargs)
        original_compute_loss = trainer.compute_loss

        def compute_loss(model: Any, inputs: Any, return_outputs: bool = False, **kw: Any) -> Any:
            out = original_compute_loss(model, inputs, return_outputs=return_outputs, **kw)
            if not evaluator._loss_patches:
                return out
            if return_outputs:
                return evaluator._apply_loss_patches(out[0], inputs), out[1]
            return evaluator._apply_loss_patches(out, inputs)

        trainer.compute_loss = compute_loss
        if self._extra_param_groups and not (optimizers and optimizers[0] is not None):
            original_create = trainer.create_optimizer

            def create_optimizer(*a: Any, **kw: Any) -> Any:
                opt = original_create(*a, **kw)
                for group in evaluator._extra_param_groups:
                    trainer.optimizer.add_param_group(dict(group))
                return opt

            trainer.create_optimizer = create_optimizer
        return trainer

    def train(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> None:
        model = self._require_bound()
        trainer = self._build_trainer(model, max_steps, max_epochs)
        self._active = trainer
        trainer.train()

    def evaluate(self) -> Any:
        model = self._require_bound()
        trainer = self._build_trainer(model, None, None)
        metrics = trainer.evaluate()
        if "eval_default" in metrics:
            return float(metrics["eval_default"]), metrics
        if "default" in metrics:
            return float(metrics["default"]), metrics
        if "eval_loss" in metrics:
            return -float(metrics["eval_loss"]), metrics
        raise ValueError(f"TransformersEvaluator.evaluate: metrics {sorted(metrics)} have no 'eval_default' and no "
                         f"'eval_loss'; return {{'default': value}} from compute_metrics")

    def get_dummy_input(self) -> Any:
        if self.dummy_input is not None:
            return self.dummy_input
        loader = self.trainer.get_train_dataloader()
        return next(iter(loader))
