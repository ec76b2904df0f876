"""The ``Evaluator`` interface compressors use to train and evaluate a model they compress.

Users build an evaluator (TorchEvaluator, LightningEvaluator, TransformersEvaluator) once; a
compressor then calls, in order: ``bind_model(model)``, any of ``patch_loss``,
``patch_optimizer_step``, ``patch_optim_param_group``, then ``train(max_steps, max_epochs)`` /
``evaluate()``, and finally ``unbind_model()``.  Users do not call these themselves.
"""
from __future__ import annotations

import logging
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

__all__ = ["Evaluator", "LossPatch", "StepTask"]

_logger = logging.getLogger(__name__)

#: ``fn(loss, batch) -> loss``: adds a regulariser/distillation term to the training loss
LossPatch = Callable[[torch.Tensor, Any], torch.Tensor]
#: called with no arguments right before / after each optimizer step
StepTask = Callable[[], None]


class Evaluator:
    """Common state of evaluators: the bound model and the patches compressors installed."""

    #: names of the parts a compressor may require (see ``missing_parts``)
    PARTS = ("training_func", "optimizers", "training_step", "evaluating_func", "dummy_input")

    def __init__(self, dummy_input: Any = None):
        self.dummy_input = dummy_input
        self.model: Optional[torch.nn.Module] = None
        self._loss_patches: List[LossPatch] = []
        self._before_step: List[StepTask] = []
        self._after_step: List[StepTask] = []
        self._extra_param_groups: List[Dict[str, Any]] = []

    # ---- capability checks ----------------------------------------------------------------
    def _has_part(self, part: str) -> bool:
        return True

    def missing_parts(self, parts: Sequence[str]) -> List[str]:
        """Which of ``parts`` this evaluator was built without."""
        return [p for p in parts if not self._has_part(p)]

    # ---- binding --------------------------------------------------------------------------
    def bind_model(self, model: torch.nn.Module, param_names_map: Optional[Dict[str, str]] = None) -> None:
        if self.model is not None and self.model is not model:
            raise RuntimeError("this evaluator is bound to another model; call unbind_model() first")
        self.model = model

    def unbind_model(self) -> None:
        self.model = None
        self._loss_patches.clear()
        self._before_step.clear()
        self._after_step.clear()
        self._extra_param_groups.clear()

    def _require_bound(self) -> torch.nn.Module:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} has no model: bind_model(model) first")
        return self.model

    # ---- patches --------------------------------------------------------------------------
    def patch_loss(self, patch: LossPatch) -> None:
        """Add ``patch(loss, batch) -> loss`` to every training step's loss."""
        self._loss_patches.append(patch)

    def patch_optimizer_step(self, before_step_tasks: Sequence[StepTask], after_step_tasks: Sequence[StepTask]) -> None:
        """Run tasks right before and after every optimizer step (gradients are available before)."""
        self._before_step.extend(before_step_tasks)
        self._after_step.extend(after_step_tasks)

    def patch_optim_param_group(self, params: Union[Dict[str, torch.nn.Parameter], Sequence[torch.nn.Parameter]],
                                **group_options: Any) -> None:
        """Train extra parameters (e.g. movement scores) with the user's first optimizer."""
        values = list(params.values()) if isinstance(params, dict) else list(params)
        if values:
            self._extra_param_groups.append({"params": values, **group_options})

    def _apply_loss_patches(self, loss: torch.Tensor, batch: Any) -> torch.Tensor:
        for patch in self._loss_patches:
            loss = patch(loss, batch)
        return loss

    def _run_before_step(self) -> None:
        for task in self._before_step:
            task()

    def _run_after_step(self) -> None:
        for task in self._after_step:
            task()

    def _patch_optimizer_instance(self, optimizer: torch.optim.Optimizer) -> None:
        """Make ``optimizer.step`` run the step tasks.  A closure (Lightning) is evaluated first so
        before-step tasks see this step's gradients."""
        if getattr(optimizer, "_nniray_step_patched", False):
            return
        original = optimizer.step

        def step(opt: Any, closure: Optional[Callable[[], Any]] = None, *args: Any, **kwargs: Any) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            self._run_before_step()
            result = original(*args, **kwargs)
            self._run_after_step()
            return loss if closure is not None else result

        # a bound method: LR schedulers wrap ``optimizer.step`` and read its ``__func__``
        optimizer.step = types.MethodType(step, optimizer)  # type: ignore[method-assign]
        optimizer._nniray_step_patched = True  # type: ignore[attr-defined]

    # ---- running --------------------------------------------------------------------------
    def train(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> None:
        raise NotImplementedError

    def finetune(self) -> None:
        """Train for the user's own duration (max_steps and max_epochs both None)."""
        self.train(None, None)

    def evaluate(self) -> Any:
        """The metric: a float, or ``(default, metric_dict)`` for a dict metric; None if there is no
        evaluating function (with a warning)."""
        raise NotImplementedError

    def get_dummy_input(self) -> Any:
        return self.dummy_input

    @staticmethod
    def _split_metric(metric: Any, where: str) -> Union[float, Tuple[float, Dict[str, Any]]]:
        if isinstance(metric, dict):
            if "default" not in metric:
                raise ValueError(f"{where} returned a dict without a 'default' key ({sorted(metric)}); return a "
                                 f"float or a dict with key 'default' (higher is better)")
            return float(metric["default"]), metric
        if isinstance(metric, torch.Tensor):
            metric = metric.item()
        try:
            return float(metric)
        except (TypeError, ValueError):
            raise ValueError(f"{where} returned {metric!r}; return a float or a dict with key 'default'") from None
