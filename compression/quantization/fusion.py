"""Module fusion for simulated quantization (``fuse_names`` in a config; NNI 3.0 module fusion).

``('conv1', 'bn1')`` or ``('conv1', 'bn1', 'relu1')``: while the quantizer is wrapped, ``bn1`` and
``relu1`` are replaced by an identity (:class:`Absorbed`) in their parents and ``conv1`` computes the fused op, so the
weight that is quantized is the BN-folded one (what a deployment engine runs):

* the conv computes with ``w_fold = w * f``, ``f = gamma / sqrt(running_var + eps)`` (the weight a
  deployment engine runs, so that is what gets quantized), then its output is divided by ``f`` again
  and passed through the real BN (PyTorch's ConvBn QAT scheme): in training BN normalises with batch
  statistics, whose gradients keep training stable, and updates its running statistics; in eval
  the result is exactly the BN-folded conv.

``unwrap_model()`` puts the BN/activation modules back and leaves the conv's own weight unfolded:
the folding is restored at export, so the exported model is the original architecture with the
trained parameters and BN statistics.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch

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
        self.installed = False

    # ---- install / remove ---------------------------------------------------------------------
    def install(self) -> None:
        if self.installed:
            return
        for n in self.absorbed:
            parent, leaf = _parent(self.model, n)
            setattr(parent, leaf, Absorbed(self._originals[n]))
        # prepend: run before the quantization wrapper's output hook (which quantizes the fused output)
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
    def factor(self) -> torch.Tensor:
        """``gamma / sqrt(running_var + eps)`` per output channel (never exactly 0: outputs are divided by it)."""
        bn = self.bn
        var = bn.running_var if bn.running_var is not None else torch.ones_like(bn.weight)
        gamma = bn.weight if bn.affine else torch.ones_like(var)
        f = gamma / torch.sqrt(var + bn.eps)
        return torch.where(f.abs() < 1e-12, torch.full_like(f, 1e-12), f)

    def fold_weight(self, weight: torch.Tensor) -> torch.Tensor:
        if self.bn is None:
            return weight
        f = self.factor().to(weight)
        return weight * f.reshape([-1] + [1] * (weight.dim() - 1))

    def _post_hook(self, module: torch.nn.Module, args: Tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        if self.bn is not None:
            # undo the folding factor and let the real BN normalise: in training it uses batch
            # statistics (with their gradients) and updates its running statistics; in eval this is
            # exactly the folded conv (PyTorch's ConvBn QAT scheme)
            f = self.factor().reshape([1, -1] + [1] * (output.dim() - 2))
            bias = module.bias if isinstance(module.bias, torch.Tensor) else None
            shape = [1, -1] + [1] * (output.dim() - 2)
            if bias is not None:
                output = (output - bias.reshape(shape)) / f + bias.reshape(shape)
            else:
                output = output / f
            output = self.bn(output)
        if self.act is not None:
            output = self.act(output)
        return output
