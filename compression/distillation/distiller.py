"""Layer-wise distillers (NNI 3.0): ``DynamicLayerwiseDistiller`` and ``Adaptive1dLayerwiseDistiller``.

``Distiller(model, config_list, evaluator, teacher_model, teacher_predict, origin_loss_lambda=1.0)``.
During ``compress(max_steps, max_epochs)`` every training step's loss becomes
``origin_loss_lambda * loss + sum_i lambda_i * distil_loss_i``: the student's target values are
recorded by the shared module wrappers, the teacher's by hooks while ``teacher_predict(batch,
teacher_model)`` runs without gradient.  ``distil_loss_i`` compares a student target with each of
its linked teacher modules and keeps the minimum (dynamic layer-wise matching); ``mse`` for hidden
states, ``kl`` for logits (``kl_div(log_softmax(s / 2), softmax(t / 2), 'batchmean') * 4``).
``Adaptive1dLayerwiseDistiller`` first maps the student value through a trainable ``Linear`` to the
teacher's last dimension (call ``track_forward(dummy_input)`` before ``compress`` so both sizes are
known).  ``compress`` returns the model (still wrapped).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..base.compressor import Compressor
from ..base.setting import PruningSetting
from ..base.target_space import PruningTargetSpace
from ..base.wrapper import ModuleWrapper
from ..quantization.fused import run_fused
from .config import DistilMethod, resolve_distil_targets, validate_distil_config_list

__all__ = ["Distiller", "DynamicLayerwiseDistiller", "Adaptive1dLayerwiseDistiller", "distil_loss"]

Key = Tuple[str, str]


def distil_loss(student: torch.Tensor, teacher: torch.Tensor, method: DistilMethod) -> torch.Tensor:
    teacher = teacher.to(student.device, student.dtype)
    if method is DistilMethod.KL:
        return F.kl_div((student / 2).log_softmax(-1), (teacher / 2).softmax(-1), reduction="batchmean") * 4
    return F.mse_loss(student, teacher)


class Distiller(Compressor):
    _required_evaluator_parts = ("training_func", "optimizers", "training_step")

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 teacher_model: torch.nn.Module, teacher_predict: Callable[[Any, torch.nn.Module], Any],
                 origin_loss_lambda: float = 1.0, existed_wrappers: Optional[Dict[str, ModuleWrapper]] = None):
        name = type(self).__name__
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{name}: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(teacher_model, torch.nn.Module):
            raise TypeError(f"{name}: teacher_model must be a torch.nn.Module, got {type(teacher_model).__name__}")
        if not callable(teacher_predict):
            raise TypeError(f"{name}: teacher_predict must be callable as teacher_predict(batch, teacher_model), e.g. "
                            f"lambda batch, teacher: teacher(batch[0])")
        self.bound_model = model
        self.teacher_model = teacher_model
        self.teacher_predict = teacher_predict
        self.origin_loss_lambda = float(origin_loss_lambda)
        self.config_list = validate_distil_config_list(config_list)
        self.evaluator = evaluator
        self._check_evaluator()
        self._wrappers: Dict[str, ModuleWrapper] = dict(existed_wrappers or {})
        self._target_spaces: Dict[str, Dict[str, PruningTargetSpace]] = {}
        self._fused_chain: List[Compressor] = []
        self.targets = resolve_distil_targets(model, teacher_model, self.config_list)
        modules = dict(model.named_modules())
        self._student_values: Dict[Key, torch.Tensor] = {}
        self._teacher_values: Dict[str, torch.Tensor] = {}
        self._recording = False
        for (module_name, target_name), setting in self.targets.items():
            wrapper = self._wrappers.get(module_name)
            if wrapper is None:
                if getattr(modules[module_name], "_nniray_wrapper", None) is not None and existed_wrappers is None:
                    raise RuntimeError(f"module {module_name!r} is already wrapped by another compressor; use "
                                       f"{name}.from_compressor")
                wrapper = ModuleWrapper(modules[module_name], module_name)
                self._wrappers[module_name] = wrapper
            ts = wrapper.target_spaces.get(target_name)
            if ts is None:
                wrapper.add_target_space(PruningTargetSpace(
                    module_name, target_name, modules[module_name],
                    PruningSetting.get(type(modules[module_name]).__name__, target_name), setting["config_index"]))
                ts = wrapper.target_spaces[target_name]
            ts.forward_callbacks.append(self._recorder((module_name, target_name)))
            self._target_spaces.setdefault(module_name, {})[target_name] = ts
        self._teacher_handles: List[Any] = []
        self._is_wrapped = False
        self.wrap_model()

    # ---- recording ---------------------------------------------------------------------------
    def _recorder(self, key: Key) -> Callable[[PruningTargetSpace, torch.Tensor], None]:
        def record(ts: PruningTargetSpace, value: torch.Tensor) -> None:
            if self._recording:
                self._student_values[key] = value  # keeps the graph: the distillation loss trains it
        return record

    def _teacher_hooks(self) -> None:
        modules = dict(self.teacher_model.named_modules())
        wanted: Dict[str, set] = {}
        for (_, target), setting in self.targets.items():
            for ln in setting["link"]:
                wanted.setdefault(ln, set()).add(target)
        for ln, targets in wanted.items():
            def hook(module: torch.nn.Module, args: Any, output: Any, ln: str = ln, targets: set = targets) -> None:
                for t in targets:
                    self._teacher_values[f"{ln}:{t}"] = _pick(t, args, output)
            self._teacher_handles.append(modules[ln].register_forward_hook(hook))

    def _remove_teacher_hooks(self) -> None:
        for h in self._teacher_handles:
            h.remove()
        self._teacher_handles.clear()

    # ---- loss --------------------------------------------------------------------------------
    def _student(self, key: Key, link: str, value: torch.Tensor) -> torch.Tensor:
        return value

    def _loss_patch(self, loss: torch.Tensor, batch: Any) -> torch.Tensor:
        self._teacher_values.clear()
        with torch.no_grad():
            self.teacher_predict(batch, self.teacher_model)
        total = self.origin_loss_lambda * loss
        for key, setting in self.targets.items():
            student = self._student_values.get(key)
            if student is None:
                raise RuntimeError(f"{type(self).__name__}: {key[0]}.{key[1]} did not run in this training step")
            losses = []
            for ln in setting["link"]:
                teacher = self._teacher_values.get(f"{ln}:{key[1]}")
                if teacher is None:
                    raise RuntimeError(f"{type(self).__name__}: teacher module {ln!r} did not run in teacher_predict")
                losses.append(distil_loss(self._student(key, ln, student), teacher, setting["apply_method"]))
            total = total + setting["lambda"] * torch.stack(losses).min()
        self._student_values.clear()
        return total

    # ---- fusion hooks ------------------------------------------------------------------------
    def _fuse_preprocess(self, evaluator: Any) -> None:
        self.teacher_model.eval()
        self._teacher_hooks()
        self._recording = True
        evaluator.patch_loss(self._loss_patch)

    def _fuse_postprocess(self, evaluator: Any) -> None:
        self._recording = False
        self._student_values.clear()
        self._teacher_values.clear()
        self._remove_teacher_hooks()

    # ---- wrapping / chaining -------------------------------------------------------------------
    def _chain_fusions(self) -> List[Any]:
        return [g for c in self._fused_chain for g in getattr(c, "_fusions", [])]

    def wrap_model(self) -> None:
        super().wrap_model()
        for g in self._chain_fusions():
            g.install()

    def unwrap_model(self) -> None:
        for g in self._chain_fusions():
            g.remove()
        super().unwrap_model()

    @classmethod
    def from_compressor(cls, compressor: Compressor, new_config_list: List[Dict[str, Any]], *args: Any,
                        evaluator: Any = None, **kwargs: Any) -> "Distiller":
        chain = list(getattr(compressor, "_fused_chain", [])) + [compressor]
        new = super().from_compressor(compressor, new_config_list, *args, evaluator=evaluator, **kwargs)
        new._fused_chain = chain
        return new

    def compress(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> torch.nn.Module:
        """Train with the distillation loss (and every chained compressor); returns the model."""
        if not self._is_wrapped:
            self.wrap_model()
        run_fused(self, max_steps, max_epochs)
        return self.bound_model


def _pick(target: str, args: Tuple[Any, ...], output: Any) -> torch.Tensor:
    if target.startswith("_input_"):
        suffix = target[len("_input_"):]
        return args[int(suffix) if suffix else 0]
    suffix = target[len("_output_"):]
    if suffix == "":
        return output if isinstance(output, torch.Tensor) else output[0]
    return output[int(suffix)] if suffix.isdigit() else output[suffix]


class DynamicLayerwiseDistiller(Distiller):
    """Each student target is matched with the closest of its linked teacher modules every step."""


class Adaptive1dLayerwiseDistiller(Distiller):
    """A trainable ``Linear`` maps each student target's last dimension to its teacher's."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.trans: Dict[str, torch.nn.Linear] = {}

    def track_forward(self, *args: Any, **kwargs: Any) -> None:
        """Run student and teacher once on the same input, so both last dimensions are known."""
        self._recording = True
        self._teacher_hooks()
        try:
            with torch.no_grad():
                self.bound_model(*args, **kwargs)
                self.teacher_model(*args, **kwargs)
            for key, setting in self.targets.items():
                s = self._student_values[key]
                for ln in setting["link"]:
                    t = self._teacher_values[f"{ln}:{key[1]}"]
                    name = f"{key[0]}.{key[1]}->{ln}"
                    if name not in self.trans:
                        self.trans[name] = torch.nn.Linear(s.shape[-1], t.shape[-1]).to(s.device)
        finally:
            self._recording = False
            self._student_values.clear()
            self._teacher_values.clear()
            self._remove_teacher_hooks()

    def _student(self, key: Key, link: str, value: torch.Tensor) -> torch.Tensor:
        return self.trans[f"{key[0]}.{key[1]}->{link}"](value)

    def _fuse_preprocess(self, evaluator: Any) -> None:
        if not self.trans:
            raise RuntimeError("Adaptive1dLayerwiseDistiller: call distiller.track_forward(dummy_input) before "
                               "compress() so the student and teacher sizes are known")
        evaluator.patch_optim_param_group([p for lin in self.trans.values() for p in lin.parameters()])
        super()._fuse_preprocess(evaluator)
