"""``TorchEvaluator``: the training and evaluation of a plain PyTorch user, as functions."""
from __future__ import annotations

import logging
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch

from nniray.trace import get_trace, is_traceable

from .base import Evaluator

__all__ = ["TorchEvaluator"]

_logger = logging.getLogger(__name__)


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _check_traced(objs: List[Any], what: str, example: str) -> None:
    for i, obj in enumerate(objs):
        if not is_traceable(obj):
            raise TypeError(f"TorchEvaluator: {what}[{i}] ({type(obj).__name__}) was not created through "
                            f"nniray.trace, so it cannot be re-created for the compressed model; write {example}")


def rebuild_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                      extra_groups: Sequence[Dict[str, Any]] = ()) -> torch.optim.Optimizer:
    """A fresh optimizer of the traced class with the same hyper-parameters and param groups,
    whose parameters are the model's (matched by identity; wrapping keeps Parameter objects)."""
    info = get_trace(optimizer)
    model_params = {id(p) for p in model.parameters()}
    groups = []
    for gi, group in enumerate(optimizer.param_groups):
        params = [p for p in group["params"]]
        foreign = [p for p in params if id(p) not in model_params]
        if foreign:
            raise ValueError(f"optimizer param_groups[{gi}] holds a parameter of shape {tuple(foreign[0].shape)} that "
                             f"is not in the model being compressed; build the optimizer on model.parameters() "
                             f"of that model")
        options = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
        groups.append({**options, "params": params})
    args = list(info.args)
    kwargs = dict(info.kwargs)
    if args:
        args[0] = groups
    else:
        kwargs["params"] = groups
    new = info.symbol(*args, **kwargs)
    for g in extra_groups:
        new.add_param_group(dict(g))
    return new


def rebuild_scheduler(scheduler: Any, mapping: Dict[int, torch.optim.Optimizer]) -> Any:
    """A fresh traced LR scheduler pointing at the rebuilt optimizer."""
    info = get_trace(scheduler)
    args = [mapping.get(id(a), a) if isinstance(a, torch.optim.Optimizer) else a for a in info.args]
    kwargs = {k: (mapping.get(id(v), v) if isinstance(v, torch.optim.Optimizer) else v) for k, v in info.kwargs.items()}
    return info.symbol(*args, **kwargs)


class TorchEvaluator(Evaluator):
    """Training/evaluation of a native PyTorch model for compressors (NNI 3.0 signature).

    Parameters
    ----------
    training_func
        ``training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs)``:
        the training loop.  It must stop after ``max_steps`` optimizer steps or ``max_epochs``
        epochs (whichever is given); with both None the duration is the user's choice.
    optimizers
        One optimizer or a list, created from ``nniray.trace(torch.optim.X)(...)``.  The evaluator
        builds a fresh one of the same class and hyper-parameters for the compressed model and
        passes it (single or list, as given) to ``training_func``.
    training_step
        ``training_step(batch, model, *args, **kwargs)`` returning a loss, a tuple whose first
        item is the loss, or a dict with key ``'loss'``.  Compressors add terms to that loss.
    lr_schedulers
        Traced LR scheduler(s) (``nniray.trace(torch.optim.lr_scheduler.X)(optimizer, ...)``).
    dummy_input
        An example input, as ``example_inputs`` of ``torch.jit.trace``.
    evaluating_func
        ``evaluating_func(model)`` returning a float or a dict with key ``'default'`` (higher is better).
    """

    def __init__(self, training_func: Optional[Callable[..., Any]] = None,
                 optimizers: Union[torch.optim.Optimizer, List[torch.optim.Optimizer], None] = None,
                 training_step: Optional[Callable[..., Any]] = None,
                 lr_schedulers: Any = None, dummy_input: Any = None,
                 evaluating_func: Optional[Callable[[torch.nn.Module], Any]] = None):
        super().__init__(dummy_input)
        for name, fn in (("training_func", training_func), ("training_step", training_step),
                         ("evaluating_func", evaluating_func)):
            if fn is not None and not callable(fn):
                raise TypeError(f"TorchEvaluator: {name} must be callable, got {type(fn).__name__}")
        self.training_func = training_func
        self.training_step = training_step
        self.evaluating_func = evaluating_func
        self._optimizers_given_as_list = isinstance(optimizers, (list, tuple))
        self._schedulers_given_as_list = isinstance(lr_schedulers, (list, tuple))
        self._user_optimizers = _as_list(optimizers)
        self._user_schedulers = _as_list(lr_schedulers)
        for i, opt in enumerate(self._user_optimizers):
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError(f"TorchEvaluator: optimizers[{i}] must be a torch.optim.Optimizer, got "
                                f"{type(opt).__name__}")
        _check_traced(self._user_optimizers, "optimizers",
                      "nniray.trace(torch.optim.Adam)(model.parameters(), lr=1e-3)")
        _check_traced(self._user_schedulers, "lr_schedulers",
                      "nniray.trace(torch.optim.lr_scheduler.StepLR)(optimizer, step_size=1)")
        self._optimizers: Optional[List[torch.optim.Optimizer]] = None
        self._schedulers: Optional[List[Any]] = None

    def _has_part(self, part: str) -> bool:
        if part == "optimizers":
            return bool(self._user_optimizers)
        return getattr(self, part, None) is not None

    # ---- binding --------------------------------------------------------------------------
    def unbind_model(self) -> None:
        super().unbind_model()
        self._optimizers = None
        self._schedulers = None

    def _build_optimizers(self, model: torch.nn.Module) -> None:
        if self._optimizers is not None:
            return
        extra = list(self._extra_param_groups)
        self._optimizers = []
        mapping: Dict[int, torch.optim.Optimizer] = {}
        for i, opt in enumerate(self._user_optimizers):
            new = rebuild_optimizer(opt, model, extra if i == 0 else ())
            self._patch_optimizer_instance(new)
            mapping[id(opt)] = new
            self._optimizers.append(new)
        self._schedulers = [rebuild_scheduler(s, mapping) for s in self._user_schedulers]

    def _patched_training_step(self) -> Callable[..., Any]:
        user_step = self.training_step

        def training_step(batch: Any, model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
            out = user_step(batch, model, *args, **kwargs)
            if not self._loss_patches:
                return out
            if isinstance(out, torch.Tensor):
                return self._apply_loss_patches(out, batch)
            if isinstance(out, tuple) and out:
                return (self._apply_loss_patches(out[0], batch),) + tuple(out[1:])
            if isinstance(out, dict) and "loss" in out:
                return {**out, "loss": self._apply_loss_patches(out["loss"], batch)}
            raise TypeError(f"training_step returned {type(out).__name__}; return a loss tensor, a tuple with the "
                            f"loss first, or a dict with key 'loss'")
        return training_step

    # ---- running --------------------------------------------------------------------------
    def train(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> None:
        model = self._require_bound()
        missing = self.missing_parts(["training_func", "optimizers", "training_step"])
        if missing:
            raise RuntimeError(f"TorchEvaluator.train needs {', '.join(missing)}; pass them when creating the evaluator")
        self._build_optimizers(model)
        optimizers: Any = self._optimizers if self._optimizers_given_as_list else self._optimizers[0]
        schedulers: Any = self._schedulers if self._schedulers_given_as_list else \
            (self._schedulers[0] if self._schedulers else None)
        self.training_func(model, optimizers, self._patched_training_step(), schedulers, max_steps, max_epochs)

    def evaluate(self) -> Any:
        model = self._require_bound()
        if self.evaluating_func is None:
            warnings.warn("TorchEvaluator.evaluate: no evaluating_func was given; returning None", stacklevel=2)
            return None
        metric = self.evaluating_func(model)
        return self._split_metric(metric, "evaluating_func")
