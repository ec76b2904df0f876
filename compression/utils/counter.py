"""``count_flops_params``: FLOPs (multiply-accumulates) and parameters per layer.

Conventions (NNI's counter): FLOPs are per sample (the count for the batch divided by the batch
size, the first dim of the input) and count multiply-accumulates without the bias; parameters
include the bias.  NNI's example, ``Conv2d(3, 5, 1)`` on a ``(1, 3, 2, 2)`` input, gives 60
FLOPs (5*3*2*2) and 20 params (15 + 5).

Masks are honoured for a model wrapped by a pruner: only output channels with a kept weight are
counted for FLOPs, and only kept weights/biases as params.  Input channels removed by pruning the
previous layer are *not* subtracted (that needs ModelSpeedup), so a masked model's FLOPs are an
over-estimate until it is sped up.

Modules are counted by what they compute, not by their exact type: subclasses (timm's
``ScaledStdConv2d``, ``BatchNormAct2d``) use their base class's rule, HuggingFace's ``Conv1D``
counts as a linear layer, LSTM/GRU/RNN count their gate matmuls, and the compute-heavy functional
ops that run outside a counted module (``F.linear``, ``F.conv*``, ``matmul``/``bmm``/``addmm``,
``scaled_dot_product_attention``) are counted too, as one entry per call named after the module
that ran them.  Totals agree with ``torch.utils.flop_counter`` (which counts 2 FLOPs per MAC).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..base.layout import is_hf_conv1d

__all__ = ["count_flops_params"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ACTS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
         nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.PReLU, nn.Softmax)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
             nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
         nn.InstanceNorm2d, nn.InstanceNorm3d)


def _masks_of(module: nn.Module) -> Dict[str, torch.Tensor]:
    wrapper = getattr(module, "_nniray_wrapper", None)
    if wrapper is None:
        return {}
    return {name: ts.mask for name, ts in wrapper.target_spaces.items() if ts.mask is not None}


def _param(module: nn.Module, name: str) -> Optional[torch.Tensor]:
    wrapper = getattr(module, "_nniray_wrapper", None)
    if wrapper is not None and name in wrapper.original_params:
        return wrapper.original_params[name]
    value = getattr(module, name, None)
    return value if isinstance(value, torch.Tensor) else None


def _param_count(module: nn.Module) -> int:
    masks = _masks_of(module)
    total = 0
    for name in ("weight", "bias"):
        p = _param(module, name)
        if p is None:
            continue
        total += int((masks[name] != 0).expand_as(p).sum()) if name in masks else p.numel()
    return total


def _kept_out_channels(module: nn.Module, out_dim: int) -> Optional[int]:
    mask = _masks_of(module).get("weight")
    if mask is None:
        return None
    weight = _param(module, "weight")
    mask = (mask != 0).expand_as(weight)
    other = [d for d in range(mask.dim()) if d != out_dim]
    rows = mask.permute(out_dim, *other).reshape(mask.shape[out_dim], -1)
    return int(rows.any(dim=1).sum())


def _conv_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    weight = _param(module, "weight")
    transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    kernel = int(torch.tensor(weight.shape[2:]).prod()) if weight.dim() > 2 else 1
    if transposed:
        # weight [in, out/groups, k...]: every input element meets out/groups * k outputs
        kept = _kept_out_channels(module, 1)
        out_per_group = weight.shape[1] if kept is None else kept
        return inputs[0].numel() * out_per_group * kernel
    out_channels = output.shape[1]
    kept = _kept_out_channels(module, 0)
    ratio = 1.0 if kept is None else kept / out_channels
    in_per_group = weight.shape[1]
    return int(output.numel() * ratio) * in_per_group * kernel


def _linear_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    weight = _param(module, "weight")
    kept = _kept_out_channels(module, 0)
    ratio = 1.0 if kept is None else kept / weight.shape[0]
    return int(output.numel() * ratio) * weight.shape[1]


def _norm_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    affine = getattr(module, "affine", getattr(module, "elementwise_affine", False))
    return output.numel() * (2 if affine else 1)


def _elementwise_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    return output.numel()


def _pool_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    k = module.kernel_size
    k = int(torch.tensor(k).prod()) if isinstance(k, (tuple, list)) else int(k) ** (output.dim() - 2)
    return output.numel() * k


def _adaptive_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    return inputs[0].numel()


def _upsample_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    return output.numel()


def _hf_conv1d_flops(module: nn.Module, inputs: Tuple[Any, ...], output: torch.Tensor) -> int:
    weight = _param(module, "weight")  # [in, out]
    kept = _kept_out_channels(module, 1)
    ratio = 1.0 if kept is None else kept / weight.shape[1]
    return int(output.numel() * ratio) * weight.shape[0]


def _rnn_flops(module: nn.RNNBase, inputs: Tuple[Any, ...], output: Any) -> int:
    """Gate matmuls per time step: gates * hidden * (layer input + hidden), per direction."""
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        steps = int(x.data.shape[0])  # total valid time steps over the batch
    else:
        steps = x.numel() // x.shape[-1]  # batch * time
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    dirs = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    out_hidden = getattr(module, "proj_size", 0) or hidden
    total = 0
    for layer in range(module.num_layers):
        in_size = module.input_size if layer == 0 else out_hidden * dirs
        total += dirs * gates * hidden * (in_size + out_hidden)
        if getattr(module, "proj_size", 0):
            total += dirs * hidden * module.proj_size
    return steps * total


def _mha_flops(module: nn.MultiheadAttention, inputs: Tuple[Any, ...], output: Any) -> int:
    """Input projections, the two attention matmuls and the output projection."""
    q = inputs[0]
    k = inputs[1] if len(inputs) > 1 and isinstance(inputs[1], torch.Tensor) else q
    e = module.embed_dim
    if module.batch_first:
        b, lq, ls = q.shape[0], q.shape[1], k.shape[1]
    else:
        lq, b, ls = q.shape[0], q.shape[1], k.shape[0]
    proj = b * (lq * e * e + ls * module.kdim * e + ls * module.vdim * e + lq * e * e)
    return proj + b * lq * ls * 2 * e  # q k^T and attn v over all heads


_DEFAULT_OPS: Dict[type, Callable[..., int]] = {nn.MultiheadAttention: _mha_flops, **{t: _conv_flops for t in _CONV}, nn.Linear: _linear_flops,
                                               nn.LSTM: _rnn_flops, nn.GRU: _rnn_flops, nn.RNN: _rnn_flops}
_FULL_OPS: Dict[type, Callable[..., int]] = {
    **_DEFAULT_OPS,
    **{t: _norm_flops for t in _NORM},
    **{t: _elementwise_flops for t in _ACTS},
    **{t: _pool_flops for t in _POOL},
    **{t: _adaptive_flops for t in _ADAPTIVE},
    nn.Upsample: _upsample_flops,
    nn.Embedding: lambda m, i, o: 0,
}


def _op_for(ops: Dict[type, Callable[..., int]], module: nn.Module) -> Optional[Callable[..., int]]:
    """The rule for what ``module`` computes: exact type first, then its base classes."""
    for cls in type(module).__mro__:
        if cls in ops:
            return ops[cls]
    if is_hf_conv1d(module):
        return _hf_conv1d_flops
    return None


def _numel(shape) -> int:
    return int(math.prod(shape)) if len(shape) else 1


def _functional_flops(func, args, kwargs) -> Optional[Tuple[str, int]]:
    """MACs of a compute-heavy functional op (batch included), or None for other functions."""
    import torch.nn.functional as F

    def arg(i, name):
        return args[i] if len(args) > i else kwargs.get(name)
    try:
        if func is F.linear:
            x, w = arg(0, "input"), arg(1, "weight")
            return "linear", _numel(x.shape[:-1]) * w.shape[0] * w.shape[1]
        if func in (F.conv1d, F.conv2d, F.conv3d):
            x, w = arg(0, "input"), arg(1, "weight")
            meta = [torch.empty(t.shape, device="meta") if isinstance(t, torch.Tensor) else t for t in args]
            out = func(*meta, **{k: torch.empty(v.shape, device="meta") if isinstance(v, torch.Tensor) else v
                                 for k, v in kwargs.items()})  # output size without the compute
            return "conv", out.numel() * _numel(w.shape[1:])
        if func in (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d):
            x, w = arg(0, "input"), arg(1, "weight")
            return "conv_transpose", x.numel() * _numel(w.shape[1:])
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.mm,
                    torch.Tensor.bmm, torch.Tensor.mm):
            a, b = args[0], args[1]
            if a.dim() == 0 or b.dim() == 0:
                return None
            out = torch.matmul(torch.empty(a.shape, device="meta"), torch.empty(b.shape, device="meta"))
            return "matmul", out.numel() * a.shape[-1]
        if func in (torch.addmm, torch.baddbmm, torch.Tensor.addmm, torch.Tensor.baddbmm):
            a, b = args[1], args[2]
            return "matmul", _numel(a.shape[:-1]) * b.shape[-1] * a.shape[-1]
        if func is F.scaled_dot_product_attention:
            q, k, v = arg(0, "query"), arg(1, "key"), arg(2, "value")
            lead = _numel(q.shape[:-2])
            return "attention", lead * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
    except (AttributeError, IndexError, TypeError, RuntimeError):
        return None
    return None


class _FunctionalCounter(TorchFunctionMode):
    """Counts functional compute ops that run while no counted module is active."""

    def __init__(self, state: Dict[str, Any]):
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.state["depth"] == 0 and not self.state["busy"]:
            self.state["busy"] = True
            try:
                with torch.no_grad():
                    found = _functional_flops(func, args, kwargs)
            finally:
                self.state["busy"] = False
            if found is not None:
                kind, macs = found
                self.state["calls"].append((self.state["stack"][-1] if self.state["stack"] else "", kind, macs))
        return func(*args, **kwargs)


def _make_input(x: Any) -> Tuple[Tuple[Any, ...], int]:
    if isinstance(x, dict) and x and all(isinstance(v, torch.Tensor) for v in x.values()):
        return (x,), next(iter(x.values())).shape[0]  # keyword inputs (HuggingFace models)
    if isinstance(x, torch.Tensor):
        return (x,), x.shape[0]
    if isinstance(x, (tuple, list)) and x and all(isinstance(v, int) for v in x):
        return (torch.ones(tuple(x)),), x[0]
    if isinstance(x, (tuple, list)) and x and all(isinstance(v, torch.Tensor) for v in x):
        return tuple(x), x[0].shape[0]
    raise TypeError(f"count_flops_params: x must be an input shape tuple such as (1, 3, 224, 224), a tensor, or a "
                    f"tuple of tensors; got {type(x).__name__}")


def _format_table(results: List[Dict[str, Any]], flops: int, params: int) -> str:
    headers = ["Index", "Name", "Type", "Weight Shape", "FLOPs", "#Params"]
    rows = [[str(i + 1), r["name"], r["module_type"], str(tuple(r["weight_shape"])), str(r["flops"]), str(r["params"])]
            for i, r in enumerate(results)]
    widths = [max(len(h), *(len(row[c]) for row in rows)) if rows else len(h) for c, h in enumerate(headers)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line, fmt(headers), line] + [fmt(r) for r in rows] + [line]
    out.append(f"FLOPs total: {flops}")
    out.append(f"#Params total: {params}")
    out.append(f"FLOPs: {flops / 1e6:.3f}M,  Params: {params / 1e6:.3f}M")
    return "\n".join(out)


def count_flops_params(model: nn.Module, x: Union[Tuple[int, ...], torch.Tensor, Sequence[torch.Tensor]],
                       custom_ops: Optional[Dict[type, Callable[..., int]]] = None, verbose: bool = True,
                       mode: str = "default") -> Tuple[int, int, List[Dict[str, Any]]]:
    """Count FLOPs and parameters of ``model`` on input ``x``.

    Parameters
    ----------
    model
        The model (plain, or wrapped by a pruner: masks are honoured).
    x
        An input shape tuple (a tensor of ones is made), a tensor, a tuple of tensors (passed
        as positional arguments) or a dict of tensors (passed as keyword arguments).
    custom_ops
        ``{module_type: fn(module, inputs, output) -> FLOPs of the batch}``; overrides built-ins.
    verbose
        Print the per-layer table and ``FLOPs: ...M,  Params: ...M``.
    mode
        ``'default'``: Conv and Linear layers only; ``'full'``: also normalisation, activation,
        pooling, adaptive pooling and upsampling layers.

    Returns
    -------
    ``(flops, params, results)`` where ``results`` is a list with one dict per counted module call:
    ``name, module_type, weight_shape, flops, params, input_size, output_size``.
    """
    if mode not in ("default", "full"):
        raise ValueError(f"count_flops_params: mode must be 'default' or 'full', got {mode!r}")
    ops = dict(_FULL_OPS if mode == "full" else _DEFAULT_OPS)
    if custom_ops:
        ops.update(custom_ops)
    inputs, batch = _make_input(x)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    kwargs: Dict[str, Any] = {}
    if len(inputs) == 1 and isinstance(inputs[0], dict):
        kwargs, inputs = {k: v.to(device) for k, v in inputs[0].items()}, ()
    inputs = tuple(t.to(device) for t in inputs)
    results: List[Dict[str, Any]] = []
    handles = []

    state: Dict[str, Any] = {"depth": 0, "busy": False, "calls": [], "stack": []}

    def enter(name: str, counted: bool, module: nn.Module, args: Tuple[Any, ...]) -> None:
        state["stack"].append(name)
        if counted:
            state["depth"] += 1

    def hook(name: str, module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        state["stack"].pop()
        fn = _op_for(ops, module)
        if fn is None:
            return
        state["depth"] -= 1
        out = output[0] if isinstance(output, (tuple, list)) else output
        flops = int(fn(module, args, out)) // max(batch, 1)
        weight = _param(module, "weight")
        results.append({
            "name": name,
            "module_type": type(module).__name__,
            "weight_shape": tuple(weight.shape) if weight is not None else (),
            "flops": flops,
            "params": _param_count(module),
            "input_size": tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else (),
            "output_size": tuple(out.shape) if isinstance(out, torch.Tensor) else (),
        })

    def leave(name: str, module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        state["stack"].pop()

    for name, module in model.named_modules():
        counted = _op_for(ops, module) is not None
        handles.append(module.register_forward_pre_hook(functools.partial(enter, name, counted)))
        handles.append(module.register_forward_hook(functools.partial(hook if counted else leave, name)))
    training = model.training
    try:
        model.eval()
        with torch.no_grad(), _FunctionalCounter(state):
            model(*inputs, **kwargs)
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    for name, kind, macs in state["calls"]:
        results.append({"name": name, "module_type": f"functional.{kind}", "weight_shape": (),
                        "flops": int(macs) // max(batch, 1), "params": 0, "input_size": (), "output_size": ()})
    total_flops = sum(r["flops"] for r in results)
    # a module called several times has its parameters once
    seen, total_params = set(), 0
    for r in results:
        if r["name"] not in seen:
            seen.add(r["name"])
            total_params += r["params"]
    if verbose:
        print(_format_table(results, total_flops, total_params))
    return total_flops, total_params, results
