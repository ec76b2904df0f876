"""Lightning evaluators: ``Lightning``, ``Classification``, ``Regression`` (NNI's
``nni.retiarii.evaluator.pytorch.lightning``).

``DataLoader`` and ``Trainer`` here are traced, so an evaluator built from them is rebuilt in
the trial process from the calls that made them.  The built-in modules report the
intermediate ``val_<metric>`` at the end of each validation epoch and the final result when
fit ends (a dict ``{"default": ..., ...}`` when several metrics are tracked; one number
otherwise), and, with ``export_onnx`` (default), write ``$NNI_OUTPUT_DIR/model.onnx``
(``./model.onnx`` outside a trial) at the first validation step, for Netron.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import pytorch_lightning as pl
import torch
from torch import nn

import nniray
from nniray.trace import check_serializable, get_trace, trace

from ..base import Evaluator

__all__ = ["LightningModule", "Lightning", "Classification", "Regression", "DataLoader", "Trainer",
           "SupervisedLearningModule"]

log = logging.getLogger("nniray.nas.evaluator")

DataLoader = trace(torch.utils.data.DataLoader)
Trainer = trace(pl.Trainer)

# Quiet, CPU-friendly defaults for trial trainers (a user's trainer kwargs override them).
_TRAINER_DEFAULTS = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False,
                     "enable_progress_bar": False, "enable_model_summary": False}


class LightningModule(pl.LightningModule):
    """Base of a custom training module: ``set_model`` is called after ``__init__`` and puts the
    candidate model in ``self.model``."""

    def set_model(self, model: nn.Module | Callable[[], nn.Module]) -> None:
        if isinstance(model, nn.Module):
            self.model = model
        else:
            self.model = model()

    def forward(self, x: Any) -> Any:
        return self.model(x)


def _output_dir() -> Path:
    return Path(os.environ.get("NNI_OUTPUT_DIR", "."))


class SupervisedLearningModule(LightningModule):
    """Training/validation loop for a criterion and a dict of metrics ``name -> fn(logits, y)``
    that returns (sum, count) so epoch values are exact averages."""

    def __init__(self, criterion: type, metrics: dict[str, Callable], learning_rate: float = 0.001,
                 weight_decay: float = 0.0, optimizer: type = torch.optim.Adam, export_onnx: bool = True) -> None:
        super().__init__()
        for name, cls in (("criterion", criterion), ("optimizer", optimizer)):
            if not isinstance(cls, type):
                raise TypeError(f"{name} must be a class (e.g. {'nn.CrossEntropyLoss' if name == 'criterion' else 'torch.optim.Adam'}), "
                                f"not an instance: {cls!r}")
        self.criterion = criterion()
        self.metric_fns = dict(metrics)
        self.optimizer_cls, self.learning_rate, self.weight_decay = optimizer, learning_rate, weight_decay
        self.export_onnx = export_onnx
        self._exported = False
        self._val: dict[str, list[float]] = {}
        self.last_val: dict[str, float] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log("train_loss", loss, prog_bar=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        if self.export_onnx and not self._exported:
            self._exported = True
            self._export(x)
        out = self(x)
        for name, fn in self.metric_fns.items():
            s, n = fn(out, y)
            acc = self._val.setdefault(name, [0.0, 0.0])
            acc[0] += float(s)
            acc[1] += float(n)
        self.log("val_loss", self.criterion(out, y), prog_bar=False)

    def _export(self, x: torch.Tensor) -> None:
        path = _output_dir() / "model.onnx"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(self.model, (x[:1],), str(path), dynamo=False)
        except Exception as e:  # noqa: BLE001 - visualization only: never fail the trial for it
            log.warning("ONNX export for visualization failed: %s", e)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._val = {}
            return
        self.last_val = {name: s / max(n, 1.0) for name, (s, n) in self._val.items()}
        self._val = {}
        if self.last_val:
            nniray.report_intermediate_result(self._metric_payload())

    def _metric_payload(self) -> Any:
        if len(self.last_val) == 1:
            return next(iter(self.last_val.values()))
        first = next(iter(self.last_val))
        return {"default": self.last_val[first], **self.last_val}

    def on_fit_end(self) -> None:
        if self.last_val:
            nniray.report_final_result(self._metric_payload())

    def configure_optimizers(self) -> Any:
        return self.optimizer_cls(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    return float((logits.argmax(dim=-1) == y).sum().item()), int(y.numel())


def _mse(pred: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    return float(torch.nn.functional.mse_loss(pred.view_as(y), y, reduction="sum").item()), int(y.numel())


def _check_loader(value: Any, name: str) -> None:
    if value is None:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, torch.utils.data.DataLoader) and get_trace(v) is None:
            check_serializable(v, name)


def _dataloaders(train_dataloaders: Any, train_dataloader: Any, val_dataloaders: Any) -> tuple[Any, Any]:
    if train_dataloaders is not None and train_dataloader is not None:
        raise TypeError("give train_dataloaders or (the older spelling) train_dataloader, not both")
    train = train_dataloaders if train_dataloaders is not None else train_dataloader
    _check_loader(train, "train_dataloaders")
    _check_loader(val_dataloaders, "val_dataloaders")
    return train, val_dataloaders


class Lightning(Evaluator):
    """A LightningModule (with ``set_model``), a trainer and the dataloaders."""

    def __init__(self, lightning_module: LightningModule, trainer: pl.Trainer | None = None,
                 train_dataloaders: Any = None, val_dataloaders: Any = None, train_dataloader: Any = None) -> None:
        if not isinstance(lightning_module, LightningModule):
            raise TypeError("lightning_module must be an nniray.nas.evaluator.pytorch.lightning.LightningModule "
                            f"(it needs set_model), got {type(lightning_module).__name__}")
        if trainer is not None and get_trace(trainer) is None:
            raise TypeError("trainer must be traced so each trial gets a fresh one: use "
                            "nniray.nas.evaluator.pytorch.lightning.Trainer(...) or nniray.trace(pl.Trainer)(...)")
        self.module = lightning_module
        self.trainer = trainer
        self.train_dataloaders, self.val_dataloaders = _dataloaders(train_dataloaders, train_dataloader,
                                                                    val_dataloaders)

    def _fresh_trainer(self) -> pl.Trainer:
        if self.trainer is None:
            return pl.Trainer(**_TRAINER_DEFAULTS, max_epochs=1)
        info = get_trace(self.trainer)
        return pl.Trainer(*info.args, **{**_TRAINER_DEFAULTS, **info.kwargs})

    def _execute(self, model_cls: Callable[[], Any]) -> Any:
        import copy
        module = copy.deepcopy(self.module)  # each evaluation starts from the module as given
        module.set_model(model_cls)
        trainer = self._fresh_trainer()
        trainer.fit(module, self.train_dataloaders, self.val_dataloaders)
        return getattr(module, "last_val", None)


class _Supervised(Lightning):
    _metrics: dict[str, Callable] = {}
    _default_criterion: type = nn.CrossEntropyLoss

    def __init__(self, criterion: type | None = None, learning_rate: float = 0.001, weight_decay: float = 0.0,
                 optimizer: type = torch.optim.Adam, train_dataloaders: Any = None, val_dataloaders: Any = None,
                 export_onnx: bool = True, train_dataloader: Any = None, **trainer_kwargs: Any) -> None:
        module = SupervisedLearningModule(criterion or self._default_criterion, self._metrics, learning_rate,
                                          weight_decay, optimizer, export_onnx)
        super().__init__(module, Trainer(**trainer_kwargs), train_dataloaders=train_dataloaders,
                         val_dataloaders=val_dataloaders, train_dataloader=train_dataloader)

    def _fresh_trainer(self) -> pl.Trainer:
        info = get_trace(self.trainer)
        return pl.Trainer(**{**_TRAINER_DEFAULTS, **info.kwargs})


class Classification(_Supervised):
    """Cross-entropy training, metric ``acc`` (accuracy of the argmax)."""

    _metrics = {"acc": _accuracy}
    _default_criterion = nn.CrossEntropyLoss


class Regression(_Supervised):
    """MSE training, metric ``mse``."""

    _metrics = {"mse": _mse}
    _default_criterion = nn.MSELoss
