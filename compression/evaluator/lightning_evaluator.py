"""``LightningEvaluator``: training and evaluation through a PyTorch Lightning Trainer.

The user traces the Trainer and the LightningDataModule (and the optimizers built in
``configure_optimizers``) with ``nniray.trace``; the model to compress is the LightningModule.
Each ``train(max_steps, max_epochs)`` builds a fresh Trainer from the traced one with those
limits and calls ``fit``; ``evaluate()`` calls ``test`` and reads the metric logged as
``'default'`` (e.g. ``self.log('default', acc)`` in ``test_step``).

pytorch_lightning is imported only when this evaluator is created.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

import torch

from nniray.trace import is_traceable, trace_copy

from .base import Evaluator

__all__ = ["LightningEvaluator"]


def _lightning():
    try:
        import pytorch_lightning as pl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("LightningEvaluator needs pytorch_lightning: pip install 'nniray[torch]'") from exc
    return pl


class LightningEvaluator(Evaluator):
    """``LightningEvaluator(trainer, data_module, dummy_input=None)``.

    Parameters
    ----------
    trainer
        ``nniray.trace(pl.Trainer)(...)``.
    data_module
        ``nniray.trace(MyDataModule)(...)``.
    dummy_input
        An example input; by default the first item of the first training batch.
    """

    def __init__(self, trainer: Any, data_module: Any, dummy_input: Any = None):
        pl = _lightning()
        super().__init__(dummy_input)
        if not isinstance(trainer, pl.Trainer):
            raise TypeError(f"LightningEvaluator: trainer must be a pytorch_lightning.Trainer, got {type(trainer).__name__}")
        if not is_traceable(trainer):
            raise TypeError("LightningEvaluator: the trainer was not created through nniray.trace, so it cannot be "
                            "re-created with new max_steps/max_epochs; write nniray.trace(pl.Trainer)(...)")
        if not isinstance(data_module, pl.LightningDataModule):
            raise TypeError(f"LightningEvaluator: data_module must be a LightningDataModule, got "
                            f"{type(data_module).__name__}")
        if not is_traceable(data_module):
            raise TypeError("LightningEvaluator: the data module was not created through nniray.trace; write "
                            "nniray.trace(MyDataModule)(...)")
        self.trainer = trainer
        self.data_module = data_module
        self._saved: dict = {}

    def bind_model(self, model: torch.nn.Module, param_names_map: Any = None) -> None:
        pl = _lightning()
        if not isinstance(model, pl.LightningModule):
            raise TypeError(f"LightningEvaluator compresses a LightningModule; got {type(model).__name__}. Pass your "
                            f"LightningModule instance as the pruner's model")
        super().bind_model(model, param_names_map)
        self._patch_module(model)

    def unbind_model(self) -> None:
        model = self.model
        if model is not None:
            for name in ("training_step", "configure_optimizers"):
                model.__dict__.pop(name, None)
        super().unbind_model()

    def _patch_module(self, model: Any) -> None:
        original_step = type(model).training_step.__get__(model)
        original_configure = type(model).configure_optimizers.__get__(model)
        evaluator = self

        def training_step(batch: Any, *args: Any, **kwargs: Any) -> Any:
            out = original_step(batch, *args, **kwargs)
            if not evaluator._loss_patches:
                return out
            if isinstance(out, torch.Tensor):
                return evaluator._apply_loss_patches(out, batch)
            if isinstance(out, dict) and "loss" in out:
                return {**out, "loss": evaluator._apply_loss_patches(out["loss"], batch)}
            raise TypeError("training_step returned neither a loss tensor nor a dict with 'loss'")

        def configure_optimizers() -> Any:
            result = original_configure()
            for opt in _find_optimizers(result):
                evaluator._patch_optimizer_instance(opt)
            optimizers = _find_optimizers(result)
            if optimizers:
                for group in evaluator._extra_param_groups:
                    optimizers[0].add_param_group(dict(group))
            return result

        model.training_step = training_step
        model.configure_optimizers = configure_optimizers

    def _new_trainer(self, max_steps: Optional[int], max_epochs: Optional[int]) -> Any:
        overrides = {}
        if max_steps is not None:
            overrides["max_steps"] = max_steps
            overrides["max_epochs"] = max_epochs if max_epochs is not None else -1
        elif max_epochs is not None:
            overrides["max_epochs"] = max_epochs
            overrides["max_steps"] = -1
        return trace_copy(self.trainer, **overrides)

    def train(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> None:
        model = self._require_bound()
        trainer = self._new_trainer(max_steps, max_epochs)
        trainer.fit(model, datamodule=self.data_module)

    def evaluate(self) -> Any:
        model = self._require_bound()
        if type(model).test_step is _lightning().LightningModule.test_step:
            warnings.warn("LightningEvaluator.evaluate: the LightningModule has no test_step; returning None",
                          stacklevel=2)
            return None
        trainer = self._new_trainer(None, None)
        results = trainer.test(model, datamodule=self.data_module, verbose=False)
        metrics = dict(results[0]) if results else {}
        if "default" not in metrics:
            raise ValueError(f"LightningEvaluator.evaluate: test_step logged {sorted(metrics)} but no 'default'; log the "
                             f"metric to optimise with self.log('default', value) (higher is better)")
        return float(metrics["default"]), metrics

    def get_dummy_input(self) -> Any:
        if self.dummy_input is not None:
            return self.dummy_input
        dm = self.data_module
        if hasattr(dm, "setup"):
            dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
        return batch[0] if isinstance(batch, (tuple, list)) else batch


def _find_optimizers(result: Any) -> list:
    """Optimizers in whatever ``configure_optimizers`` returned (object, list, tuple, dict)."""
    if isinstance(result, torch.optim.Optimizer):
        return [result]
    if isinstance(result, dict):
        return _find_optimizers(result.get("optimizer"))
    if isinstance(result, (list, tuple)):
        found = []
        for item in result:
            found += _find_optimizers(item)
        return found
    return []
