"""Module replacers: build a smaller module from the kept input/output channels.

A replacer is called as ``replacer(module, ctx)`` and returns the new module, or ``None``
when it does not handle ``module``.  It raises :class:`CannotReplace` when the kept sets
cannot be expressed by that module type (e.g. uneven channels per group); speedup then
keeps more channels around that module, which is always correct.

``ctx`` is a :class:`ReplaceContext`: ``ctx.in_keep(dim)`` / ``ctx.out_keep(dim)`` give the
kept indices of the first input / the output along ``dim`` (negative dims allowed).
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

from ..base.layout import is_hf_conv1d
from .masks import Box, kept_indices

__all__ = ["CannotReplace", "ReplaceContext", "Replacer", "BUILTIN_REPLACERS", "register_replacer",
           "builtin_replacer_for", "is_known_op", "is_absorbing", "input_channel_dim"]


class CannotReplace(Exception):
    """The kept channel sets cannot be expressed by this module type."""


class ReplaceContext:
    def __init__(self, module_name: str, node, in_boxes: List[Box], in_shapes, out_box: Box, out_shape):
        self.module_name, self.node = module_name, node
        self.in_boxes, self.in_shapes = in_boxes, in_shapes
        self.out_box, self.out_shape = out_box, out_shape

    def in_keep(self, dim: int, index: int = 0) -> torch.Tensor:
        shape = self.in_shapes[index]
        dim = dim % len(shape)
        return kept_indices(self.in_boxes[index], dim, shape[dim])

    def out_keep(self, dim: int) -> torch.Tensor:
        dim = dim % len(self.out_shape)
        return kept_indices(self.out_box, dim, self.out_shape[dim])

    def in_reduced(self, index: int = 0) -> bool:
        return any(k is not None for k in self.in_boxes[index])

    def out_reduced(self) -> bool:
        return any(k is not None for k in self.out_box)

    def only_dims_reduced(self, in_dims, out_dims) -> None:
        """Raise CannotReplace if a dimension other than the allowed ones is reduced."""
        for i, box in enumerate(self.in_boxes):
            n = len(self.in_shapes[i])
            allowed = {d % n for d in in_dims} if i == 0 else set()
            if any(k is not None and d not in allowed for d, k in enumerate(box)):
                raise CannotReplace(f"input {i} reduced along a dimension {self.module_name} cannot shrink")
        n = len(self.out_shape)
        allowed = {d % n for d in out_dims}
        if any(k is not None and d not in allowed for d, k in enumerate(self.out_box)):
            raise CannotReplace(f"output reduced along a dimension {self.module_name} cannot shrink")


class Replacer:
    """Base class for user replacers (``customized_replacers``); subclasses override ``replace``."""

    def replace(self, module: nn.Module, ctx: ReplaceContext) -> Optional[nn.Module]:
        raise NotImplementedError

    def __call__(self, module, ctx):
        return self.replace(module, ctx)


def _param(t: Optional[torch.Tensor]) -> Optional[nn.Parameter]:
    # contiguous: advanced indexing along dim 1 can return permuted strides, and clone()
    # would keep them, which makes the conv kernels markedly slower.
    return None if t is None else nn.Parameter(t.detach().clone(memory_format=torch.contiguous_format),
                                                requires_grad=t.requires_grad)


def _slice_extras(new: nn.Module, module: nn.Module, out_idx: torch.Tensor, n_out: int) -> None:
    """Subclasses carry per-output-channel tensors of their own (timm's ``ScaledStdConv2d.gain``
    ``[out,1,1,1]``): slice every other parameter/buffer whose dim 0 is the output channels."""
    for store in ("_parameters", "_buffers"):
        items = dict(getattr(module, store))
        for name, t in items.items():
            if name in ("weight", "bias") or t is None or t.dim() == 0 or t.shape[0] != n_out:
                continue
            sliced = t.index_select(0, out_idx.to(t.device))
            if store == "_parameters":
                new._parameters[name] = _param(sliced)
            else:
                new._buffers[name] = sliced.clone(memory_format=torch.contiguous_format)


def _shallow(module: nn.Module) -> nn.Module:
    """A copy sharing children but with its own parameter/buffer dicts (keeps the subclass)."""
    new = copy.copy(module)
    new._parameters = dict(module._parameters)
    new._buffers = dict(module._buffers)
    return new


def _conv(module: nn.modules.conv._ConvNd, ctx: ReplaceContext) -> nn.Module:
    ctx.only_dims_reduced([1], [1])
    in_idx, out_idx = ctx.in_keep(1), ctx.out_keep(1)
    g = module.groups
    w = module.weight
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        if g != 1:
            raise CannotReplace("grouped ConvTranspose is not shrunk")
        new = _shallow(module)
        new.weight = _param(w[in_idx][:, out_idx])
        if module.bias is not None:
            new.bias = _param(module.bias[out_idx])
        _slice_extras(new, module, out_idx, module.out_channels)
        new.in_channels, new.out_channels = len(in_idx), len(out_idx)
        return new
    if g == 1:
        weight = w[out_idx][:, in_idx]
        new_groups = 1
    else:
        gi, go = module.in_channels // g, module.out_channels // g
        kin = [in_idx[(in_idx // gi) == k] - k * gi for k in range(g)]
        kout = [out_idx[(out_idx // go) == k] - k * go for k in range(g)]
        groups = [k for k in range(g) if len(kout[k]) > 0 or len(kin[k]) > 0]
        if not groups:
            raise CannotReplace("grouped conv with nothing kept")
        n_in, n_out = {len(kin[k]) for k in groups}, {len(kout[k]) for k in groups}
        if len(n_in) != 1 or len(n_out) != 1 or 0 in n_in or 0 in n_out:
            raise CannotReplace(f"grouped conv {ctx.module_name}: kept channels per group are uneven "
                                f"(in {sorted(n_in)}, out {sorted(n_out)})")
        weight = torch.cat([w[k * go + kout[k]][:, kin[k]] for k in groups], 0)
        new_groups = len(groups)
    new = _shallow(module)
    new.weight = _param(weight)
    if module.bias is not None:
        new.bias = _param(module.bias[out_idx])
    _slice_extras(new, module, out_idx, module.out_channels)
    new.in_channels, new.out_channels, new.groups = len(in_idx), len(out_idx), new_groups
    return new


def _linear(module: nn.Linear, ctx: ReplaceContext) -> nn.Module:
    ctx.only_dims_reduced([-1], [-1])
    in_idx, out_idx = ctx.in_keep(-1), ctx.out_keep(-1)
    new = _shallow(module)  # keeps a subclass (and its forward)
    new.weight = _param(module.weight[out_idx][:, in_idx])
    if module.bias is not None:
        new.bias = _param(module.bias[out_idx])
    _slice_extras(new, module, out_idx, module.out_features)
    new.in_features, new.out_features = len(in_idx), len(out_idx)
    return new


def _hf_conv1d(module: nn.Module, ctx: ReplaceContext) -> nn.Module:
    """HuggingFace ``Conv1D`` (GPT-2): ``y = x @ W + b`` with ``W`` stored ``[in, out]``."""
    ctx.only_dims_reduced([-1], [-1])
    in_idx, out_idx = ctx.in_keep(-1), ctx.out_keep(-1)
    new = _shallow(module)
    new.weight = _param(module.weight[in_idx][:, out_idx])
    if module.bias is not None:
        new.bias = _param(module.bias[out_idx])
    new.nf = len(out_idx)
    if hasattr(module, "nx"):
        new.nx = len(in_idx)
    return new


def _rnn(module: nn.RNNBase, ctx: ReplaceContext) -> nn.Module:
    """LSTM/GRU/RNN: input features that are always zero drop their columns of ``weight_ih_l0``
    (and its reverse); hidden sizes stay (the recurrence mixes every hidden unit)."""
    if ctx.out_reduced():
        raise CannotReplace(f"{type(module).__name__} {ctx.module_name}: hidden units are not shrunk")
    for i, box in enumerate(ctx.in_boxes[1:], 1):
        if any(k is not None for k in box):
            raise CannotReplace(f"{type(module).__name__} {ctx.module_name}: initial state reduced")
    ctx.only_dims_reduced([-1], [])
    in_idx = ctx.in_keep(-1)
    new = _shallow(module)
    for name in ("weight_ih_l0", "weight_ih_l0_reverse"):
        if name in module._parameters:
            new._parameters[name] = _param(module._parameters[name][:, in_idx])
    new.input_size = len(in_idx)
    new._flat_weights = [new._parameters.get(n) if n in new._parameters else getattr(new, n)
                         for n in module._flat_weights_names]
    return new


def _batchnorm(module: nn.modules.batchnorm._BatchNorm, ctx: ReplaceContext) -> nn.Module:
    ctx.only_dims_reduced([1], [1])
    in_idx, out_idx = ctx.in_keep(1), ctx.out_keep(1)
    if not torch.equal(in_idx, out_idx):
        raise CannotReplace("BatchNorm input and output channels differ")
    new = _shallow(module)
    new.num_features = len(out_idx)
    for name in ("weight", "bias"):
        if getattr(module, name) is not None:
            setattr(new, name, _param(getattr(module, name)[out_idx]))
    for name in ("running_mean", "running_var"):
        if getattr(module, name) is not None:
            new._buffers[name] = getattr(module, name)[out_idx].clone(memory_format=torch.contiguous_format)
    return new


def _layernorm(module: nn.LayerNorm, ctx: ReplaceContext) -> nn.Module:
    # Removing features changes the normalisation statistics, so only the dimensions
    # that are not normalised may be reduced (LayerNorm itself is then unchanged).
    nd = len(module.normalized_shape)
    n = len(ctx.out_shape)
    norm_dims = set(range(n - nd, n))
    for box in ctx.in_boxes[:1] + [ctx.out_box]:
        if any(k is not None and d in norm_dims for d, k in enumerate(box)):
            raise CannotReplace("LayerNorm statistics would change if normalised features were removed")
    return module


def _groupnorm(module: nn.GroupNorm, ctx: ReplaceContext) -> nn.Module:
    ctx.only_dims_reduced([1], [1])
    in_idx, out_idx = ctx.in_keep(1), ctx.out_keep(1)
    if not torch.equal(in_idx, out_idx):
        raise CannotReplace("GroupNorm input and output channels differ")
    per = module.num_channels // module.num_groups
    kept_groups = sorted({int(i) // per for i in out_idx})
    if len(out_idx) != len(kept_groups) * per:
        raise CannotReplace("GroupNorm can only drop whole groups (statistics would change)")
    new = nn.GroupNorm(len(kept_groups), len(out_idx), module.eps, module.affine)
    if module.affine:
        with torch.no_grad():
            new.weight.copy_(module.weight[out_idx])
            new.bias.copy_(module.bias[out_idx])
    return new


def _embedding(module: nn.Embedding, ctx: ReplaceContext) -> nn.Module:
    ctx.only_dims_reduced([], [-1])
    out_idx = ctx.out_keep(-1)
    new = _shallow(module)
    new.weight = _param(module.weight[:, out_idx])
    new.embedding_dim = len(out_idx)
    return new


def _prelu(module: nn.PReLU, ctx: ReplaceContext) -> nn.Module:
    if module.num_parameters == 1:
        return module
    ctx.only_dims_reduced([1], [1])
    in_idx, out_idx = ctx.in_keep(1), ctx.out_keep(1)
    if not torch.equal(in_idx, out_idx):
        raise CannotReplace("PReLU input and output channels differ")
    new = nn.PReLU(len(out_idx))
    with torch.no_grad():
        new.weight.copy_(module.weight[out_idx])
    return new


def _unchanged_if_full(module: nn.Module, ctx: ReplaceContext) -> nn.Module:
    if ctx.in_reduced() or ctx.out_reduced():
        raise CannotReplace(f"{type(module).__name__} is not shrunk by speedup")
    return module


BUILTIN_REPLACERS: Dict[type, Callable[[nn.Module, ReplaceContext], nn.Module]] = {
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv, nn.ConvTranspose2d: _conv, nn.ConvTranspose3d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batchnorm, nn.BatchNorm2d: _batchnorm, nn.BatchNorm3d: _batchnorm,
    nn.LayerNorm: _layernorm, nn.GroupNorm: _groupnorm,
    nn.Embedding: _embedding, nn.PReLU: _prelu,
    nn.MultiheadAttention: _unchanged_if_full,
    nn.LSTM: _rnn, nn.GRU: _rnn, nn.RNN: _rnn,
}

# Modules whose output channel dimension follows their input's (mask followers): a channel
# pruned at their input is pruned at their output, dropping the constant BatchNorm would
# have produced there (NNI 3.0 aligns BN masks to the conv the same way).
FOLLOWER_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)

# Modules that can physically drop zero-valued input channels (their weight columns go).
ABSORBING_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear,
                   nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def register_replacer(module_type: type, replacer: Callable[[nn.Module, ReplaceContext], nn.Module]) -> None:
    """Teach speedup a module type (subclasses included): it becomes one op when tracing, and
    ``replacer(module, ctx)`` builds its smaller version."""
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_replacer: module_type must be an nn.Module subclass, got {module_type!r}")
    if not callable(replacer):
        raise TypeError(f"register_replacer: replacer must be callable (module, ctx) -> module, got {replacer!r}")
    BUILTIN_REPLACERS[module_type] = replacer


def builtin_replacer_for(module: nn.Module):
    """By what the module *is* (isinstance through the MRO), so subclasses such as timm's
    ``BatchNormAct2d`` or ``ScaledStdConv2d`` are recognised; HF ``Conv1D`` by its layout."""
    for cls in type(module).__mro__:
        if cls in BUILTIN_REPLACERS:
            return BUILTIN_REPLACERS[cls]
    if is_hf_conv1d(module):
        return _hf_conv1d
    return None


def is_known_op(module: nn.Module) -> bool:
    """Modules speedup treats as one op (not traced into): those with a replacer."""
    return builtin_replacer_for(module) is not None


def is_absorbing(module: nn.Module) -> bool:
    """Can drop zero input channels physically (their weight columns go)."""
    return isinstance(module, ABSORBING_TYPES) or is_hf_conv1d(module) or isinstance(module, nn.RNNBase)


def input_channel_dim(module: nn.Module) -> int:
    """The channel dimension of the module's input activation."""
    if isinstance(module, (nn.Linear, nn.RNNBase)) or is_hf_conv1d(module):
        return -1
    return 1
