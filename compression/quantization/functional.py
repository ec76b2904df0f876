"""Quantization arithmetic: ranges per granularity, scale/zero point, fake quantization with a
straight-through gradient.

Scale and zero point follow PyTorch's ``MinMaxObserver`` (so results can be checked against it):
the range always contains 0; symmetric: ``scale = max(-min, max) / ((qmax - qmin) / 2)`` with zero
point 0 for signed types and ``(qmin + qmax + 1) // 2`` for unsigned ones; affine:
``scale = (max - min) / (qmax - qmin)``, ``zero_point = qmin - round(min / scale)`` clamped to the range.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, List, Optional, Sequence, Tuple, Type

import torch

from .config import QuantDtype, QuantScheme

__all__ = ["QuantType", "QuantGrad", "reduce_range", "expand_blocks", "calculate_qparams", "fake_quantize",
           "quantize", "round_ste"]

_EPS = torch.finfo(torch.float32).eps


class QuantType(str, Enum):
    """Which kind of tensor a target is (NNI's ``QuantType``)."""
    INPUT = "input"
    WEIGHT = "weight"
    OUTPUT = "output"


def block_sizes(granularity: Any, shape: Sequence[int], is_activation: bool) -> List[int]:
    """Block size per dimension (``-1``: the whole dimension) for a granularity."""
    ndim = len(shape)
    if granularity in (None, "default"):
        return [-1] * ndim
    if granularity == "per_channel":
        channel = 1 if is_activation and ndim > 1 else 0
        return [1 if d == channel else -1 for d in range(ndim)]
    sizes = list(granularity)
    if is_activation and len(sizes) == ndim - 1:
        sizes = [-1] + sizes  # the batch dimension is never split
    if len(sizes) != ndim:
        raise ValueError(f"granularity {granularity!r} has {len(sizes)} block sizes but the tensor has {ndim} "
                         f"dimensions {tuple(shape)}")
    for d, (s, b) in enumerate(zip(shape, sizes)):
        if b != -1 and s % b:
            raise ValueError(f"granularity {granularity!r}: dimension {d} of size {s} is not a multiple of {b}")
    return sizes


def reduce_range(x: torch.Tensor, sizes: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(min, max) per block; shape ``[s // b]`` per dimension (1 where the block is the whole dim)."""
    view: List[int] = []
    reduce_dims: List[int] = []
    for s, b in zip(x.shape, sizes):
        b = s if b == -1 else b
        view += [s // b, b]
        reduce_dims.append(len(view) - 1)
    blocks = x.detach().reshape(view) if view else x.detach().reshape(1, 1)
    if not view:
        reduce_dims = [1]
    return blocks.amin(dim=reduce_dims), blocks.amax(dim=reduce_dims)


def expand_blocks(param: torch.Tensor, sizes: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Broadcast a per-block tensor (as from :func:`reduce_range`) to ``shape``."""
    if param.dim() == 0 or param.numel() == 1:
        return param.reshape([1] * len(shape)) if shape else param.reshape(())
    out = param
    for d, (s, b) in enumerate(zip(shape, sizes)):
        if b not in (-1, s) and b != 1:
            out = out.repeat_interleave(b, dim=d)
        elif b == -1 and out.shape[d] != 1:
            out = out.narrow(d, 0, 1)
    return out


def calculate_qparams(vmin: torch.Tensor, vmax: torch.Tensor, dtype: QuantDtype,
                      scheme: QuantScheme) -> Tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) for tracked ranges (elementwise, any shape)."""
    vmin = torch.clamp(vmin.float(), max=0.0)
    vmax = torch.clamp(vmax.float(), min=0.0)
    qmin, qmax = dtype.qmin, dtype.qmax
    if scheme is QuantScheme.SYMMETRIC:
        amax = torch.maximum(-vmin, vmax)
        scale = amax / ((qmax - qmin) / 2)
        scale = torch.clamp(scale, min=_EPS)
        zp = torch.zeros_like(scale) if dtype.signed else torch.full_like(scale, (qmin + qmax + 1) // 2)
    else:
        scale = torch.clamp((vmax - vmin) / float(qmax - qmin), min=_EPS)
        zp = torch.clamp(qmin - torch.round(vmin / scale), qmin, qmax)
    return scale, zp


class QuantGrad:
    """Backward of fake quantization (NNI's ``QuantGrad``): the default is the straight-through
    estimator clipped to the representable range.  Subclass and override :meth:`quant_backward`,
    then set ``quantizer.quant_grad = MyGrad`` to customise it."""

    @staticmethod
    def quant_backward(tensor: torch.Tensor, grad_output: torch.Tensor, quant_type: QuantType,
                       scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
        q = torch.round(tensor / scale) + zero_point
        return grad_output * ((q >= qmin) & (q <= qmax)).to(grad_output.dtype)


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, qmin: int, qmax: int,
                grad_cls: Type[QuantGrad], quant_type: QuantType) -> torch.Tensor:
        ctx.save_for_backward(x, scale, zp)
        ctx.qrange = (qmin, qmax)
        ctx.grad_cls = grad_cls
        ctx.quant_type = quant_type
        return (torch.clamp(torch.round(x / scale) + zp, qmin, qmax) - zp) * scale

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor):
        x, scale, zp = ctx.saved_tensors
        grad = ctx.grad_cls.quant_backward(x, grad_output, ctx.quant_type, scale, zp, *ctx.qrange)
        return grad, None, None, None, None, None, None


def quantize(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, dtype: QuantDtype) -> torch.Tensor:
    """Integer codes (as float) of ``x``."""
    return torch.clamp(torch.round(x / scale) + zp, dtype.qmin, dtype.qmax)


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor, dtype: QuantDtype,
                  grad_cls: Type[QuantGrad] = QuantGrad, quant_type: QuantType = QuantType.WEIGHT) -> torch.Tensor:
    """Quantize then dequantize (values stay float); gradients from ``grad_cls``."""
    scale = scale.to(device=x.device, dtype=x.dtype)
    zp = zp.to(device=x.device, dtype=x.dtype)
    return _FakeQuant.apply(x, scale, zp, dtype.qmin, dtype.qmax, grad_cls, quant_type)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round`` whose gradient is 1 (the straight-through estimator)."""
    return (torch.round(x) - x).detach() + x


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Identity in forward, gradient multiplied by ``factor`` (LSQ's step-size gradient scale)."""
    return (x - x * factor).detach() + x * factor


def optional(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if t is None else t.detach().cpu().clone()
