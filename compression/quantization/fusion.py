"""Module fusion for simulated quantization (``fuse_names`` in a config; NNI 3.0 module fusion).

``('conv1', 'bn1')`` or ``('conv1', 'bn1', 'relu1')``: while the quantizer is wrapped, ``bn1`` and
``relu1`` are replaced by an identity (:class:`Absorbed`) in their parents and ``conv1`` computes the fused op, so the
weight that is quantized is the BN-folded one (what a deployment engine runs):

* ``w_fold = w * gamma / sqrt(var + eps)``; output ``+= f * (b - mean) + beta - b``;
* in training mode ``mean``/``var`` are the batch statistics of the unfused output (computed
  without gradient, as Jacob et al. do), and BN's running statistics are updated from them;
  in eval mode the running statistics are used.

``unwrap_model()`` puts the BN/activation modules back and leaves the conv's own weight unfolded:
the folding is restored at export, so the exported model is the original architecture with the
trained parameters and BN statistics.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .config import ConfigError

__all__ = ["FusionGroup", "Absorbed"]

_FIRST = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
_BN = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
_ACT = (torch.nn.ReLU, torch.nn.ReLU6)


class Absorbed(torch.nn.Module):
    """Stands where a fused module was: identity in forward, and keeps the original as a child so its
    parameters stay in ``model.parameters()`` (an optimizer built before fusion still trains them)."""

    def __init__(self, original: torch.nn.Module):
        super().__init__()
        self.fused = original

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return x


def _parent(model: torch.nn.Module, name: str) -> Tuple[torch.nn.Module, str]:
    prefix, _, leaf = name.rpartition(".")
    return (model.get_submodule(prefix) if prefix else model), leaf


class FusionGroup:
    """One ``fuse_names`` entry."""

    def __init__(self, model: torch.nn.Module, names: Tuple[str, ...], where: str, selected: List[str]):
        modules = dict(model.named_modules())
        for n in names:
            if n not in modules:
                raise ConfigError(f"{where} names {n!r}, which is not a module of the model")
        if names[0] not in selected:
            raise ConfigError(f"{where}: the first module {names[0]!r} must be one the config selects "
                              f"(selected: {selected[:6]})")
        self.model = model
        self.names = names
        self.first = modules[names[0]]
        if not isinstance(self.first, _FIRST):
            raise ConfigError(f"{where}: {names[0]!r} is a {type(self.first).__name__}; fusion starts with a "
                              f"Conv1d/2d/3d or Linear")
        self.bn: Optional[torch.nn.modules.batchnorm._BatchNorm] = None
        self.act: Optional[torch.nn.Module] = None
        for n in names[1:]:
            m = modules[n]
            if isinstance(m, _BN) and self.bn is None and self.act is None:
                self.bn = m
            elif isinstance(m, _ACT) and self.act is None:
                self.act = m
            else:
                raise ConfigError(f"{where}: cannot fuse {n!r} ({type(m).__name__}); supported: conv/linear, then "
                                  f"an optional BatchNorm, then an optional ReLU/ReLU6")
        self.absorbed = list(names[1:])
        self._originals = {n: modules[n] for n in self.absorbed}
        self._handles: List[Any] = []
        self._batch: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self.installed = False

    # ---- install / remove ---------------------------------------------------------------------
    def install(self) -> None:
        if self.installed:
            return
        for n in self.absorbed:
            parent, leaf = _parent(self.model, n)
            setattr(parent, leaf, Absorbed(self._originals[n]))
        # prepend: run before the quantization wrapper's hooks (which read the folded weight and
        # quantize the fused output)
        self._handles.append(self.first.register_forward_pre_hook(self._pre_hook, prepend=True))
        self._handles.append(self.first.register_forward_hook(self._post_hook, prepend=True))
        self.installed = True

    def remove(self) -> None:
        if not self.installed:
            return
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for n, m in self._originals.items():
            parent, leaf = _parent(self.model, n)
            setattr(parent, leaf, m)
        self.installed = False

    # ---- folding ------------------------------------------------------------------------------
    def _raw_weight(self) -> torch.Tensor:
        wrapper = getattr(self.first, "_nniray_wrapper", None)
        if wrapper is not None and "weight" in wrapper.original_params:
            w = wrapper.original_params["weight"]
            ts = wrapper.target_spaces.get("weight")
            if ts is not None and ts.mask is not None:
                w = w * ts.mask.to(w)
            return w
        return self.first.weight

    def _unfused(self, x: torch.Tensor) -> torch.Tensor:
        w = self._raw_weight()
        bias = self.first.bias if isinstance(self.first.bias, torch.Tensor) else None
        if isinstance(self.first, torch.nn.Linear):
            return F.linear(x, w, bias)
        return self.first._conv_forward(x, w, bias)

    def _stats(self) -> Tuple[torch.Tensor, torch.Tensor]:
        bn = self.bn
        if self.first.training and self._batch is not None:
            return self._batch
        return bn.running_mean, bn.running_var

    def factor(self) -> torch.Tensor:
        _, var = self._stats()
        gamma = self.bn.weight if self.bn.affine else torch.ones_like(var)
        return gamma / torch.sqrt(var + self.bn.eps)

    def fold_weight(self, weight: torch.Tensor) -> torch.Tensor:
        if self.bn is None:
            return weight
        f = self.factor().to(weight)
        return weight * f.reshape([-1] + [1] * (weight.dim() - 1))

    def _pre_hook(self, module: torch.nn.Module, args: Tuple[Any, ...]) -> None:
        if self.bn is None or not module.training:
            self._batch = None
            return None
        with torch.no_grad():
            y = self._unfused(args[0])
            dims = [0] + list(range(2, y.dim()))
            mean = y.mean(dims)
            var = y.var(dims, unbiased=False)
            n = y.numel() // y.shape[1]
            bn = self.bn
            if bn.track_running_stats and bn.running_mean is not None:
                bn.num_batches_tracked += 1
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.mul_(1 - m).add_(m * mean)
                bn.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
        self._batch = (mean, var)
        return None

    def _post_hook(self, module: torch.nn.Module, args: Tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        if self.bn is not None:
            mean, _ = self._stats()
            f = self.factor()
            bias = module.bias if isinstance(module.bias, torch.Tensor) else torch.zeros_like(mean)
            beta = self.bn.bias if self.bn.affine else torch.zeros_like(mean)
            shift = f * (bias - mean) + beta - bias
            output = output + shift.reshape([1, -1] + [1] * (output.dim() - 2))
        if self.act is not None:
            output = self.act(output)
        return output
