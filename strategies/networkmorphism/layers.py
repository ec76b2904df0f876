"""Stub layers: framework-free descriptions of the layers a network-morphism graph is built of.

A stub knows its hyperparameters, how it maps input shapes to an output shape (shapes are
channels-last without the batch axis, as in NNI's JSON: ``(width, width, channels)``), how many
parameters it has, how it is written in NNI's graph JSON (``layer_list`` entries), and how to
become a real ``torch.nn`` module.  Weights are optional numpy arrays in torch's layout; a
graph built with ``weighted=True`` carries them so that morphisms can preserve the function.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

Shape = tuple


class StubLayer:
    """Base stub: one input node, output shape = input shape, no parameters."""

    aggregate = False  # True: takes a list of input nodes (Add, Concatenate)
    passthrough = True  # per-channel / elementwise: widening passes through it unchanged

    def __init__(self) -> None:
        self.weights: list[np.ndarray] | None = None

    # shapes and size -------------------------------------------------------------------------
    def output_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return tuple(in_shapes[0])

    def size(self) -> int:
        return 0

    # JSON ----------------------------------------------------------------------------------------
    def args(self) -> list:
        """Hyperparameters after (input id, output id) in NNI's layer_list entry."""
        return []

    @classmethod
    def from_args(cls, args: Sequence[Any]) -> "StubLayer":
        return cls()

    # torch ---------------------------------------------------------------------------------------
    def to_real_layer(self):
        raise NotImplementedError(type(self).__name__)

    def export_weights(self, module) -> None:
        """Copy stub weights into the torch module (no-op without weights)."""

    def import_weights(self, module) -> None:
        """Read the torch module's weights into the stub."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(str, self.args()))})"


def _t(module_name: str):
    import torch.nn as nn
    return getattr(nn, module_name)


class _WeightBias(StubLayer):
    passthrough = False

    def export_weights(self, module) -> None:
        import torch
        if self.weights is None:
            return
        with torch.no_grad():
            module.weight.copy_(torch.as_tensor(self.weights[0], dtype=module.weight.dtype))
            module.bias.copy_(torch.as_tensor(self.weights[1], dtype=module.bias.dtype))

    def import_weights(self, module) -> None:
        self.weights = [module.weight.detach().cpu().numpy().copy(), module.bias.detach().cpu().numpy().copy()]


class StubConv(_WeightBias):
    """Conv with 'same' padding (``kernel_size // 2``), as NNI's stubs."""
    n_dim = 2

    def __init__(self, input_channel: int, filters: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None) -> None:
        super().__init__()
        self.input_channel, self.filters = int(input_channel), int(filters)
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.padding = int(kernel_size) // 2 if padding is None else int(padding)

    def output_shape(self, in_shapes):
        spatial = [(d + 2 * self.padding - self.kernel_size) // self.stride + 1 for d in in_shapes[0][:-1]]
        return tuple(spatial) + (self.filters,)

    def size(self) -> int:
        return (self.input_channel * self.kernel_size ** self.n_dim + 1) * self.filters

    def args(self):
        return [self.input_channel, self.filters, self.kernel_size, self.stride, self.padding]

    @classmethod
    def from_args(cls, args):
        return cls(*args[:5])

    def to_real_layer(self):
        return _t(f"Conv{self.n_dim}d")(self.input_channel, self.filters, self.kernel_size,
                                        stride=self.stride, padding=self.padding)


class StubDense(_WeightBias):
    def __init__(self, input_units: int, units: int) -> None:
        super().__init__()
        self.input_units, self.units = int(input_units), int(units)

    def output_shape(self, in_shapes):
        return (self.units,)

    def size(self) -> int:
        return self.input_units * self.units + self.units

    def args(self):
        return [self.input_units, self.units]

    @classmethod
    def from_args(cls, args):
        return cls(*args[:2])

    def to_real_layer(self):
        return _t("Linear")(self.input_units, self.units)


class StubBatchNormalization(StubLayer):
    """Batch norm; weights are (gamma, beta, running_mean, running_var)."""
    n_dim = 2

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def size(self) -> int:
        return self.num_features * 4

    def args(self):
        return [self.num_features]

    @classmethod
    def from_args(cls, args):
        return cls(args[0])

    def to_real_layer(self):
        return _t(f"BatchNorm{self.n_dim}d")(self.num_features)

    def export_weights(self, module) -> None:
        import torch
        if self.weights is None:
            return
        with torch.no_grad():
            for t, w in zip((module.weight, module.bias, module.running_mean, module.running_var), self.weights):
                t.copy_(torch.as_tensor(w, dtype=t.dtype))

    def import_weights(self, module) -> None:
        self.weights = [t.detach().cpu().numpy().copy() for t in
                        (module.weight, module.bias, module.running_mean, module.running_var)]


class StubDropout(StubLayer):
    n_dim = 2

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = float(rate)

    def args(self):
        return [self.rate]

    @classmethod
    def from_args(cls, args):
        return cls(args[0])

    def to_real_layer(self):
        # Elementwise dropout: NNI puts StubDropout2d after global pooling, where the tensor is
        # (N, C) and channel-wise Dropout2d does not apply.
        return _t("Dropout")(self.rate)


class StubPooling(StubLayer):
    """Max pooling (NNI's StubPooling*); output spatial size max(dim // kernel, 1)."""
    n_dim = 2

    def __init__(self, kernel_size: int = 2, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size
        self.padding = int(padding)

    def output_shape(self, in_shapes):
        s = in_shapes[0]
        return tuple(max(d // self.kernel_size, 1) for d in s[:-1]) + (s[-1],)

    def args(self):
        return [self.kernel_size, self.stride, self.padding]

    @classmethod
    def from_args(cls, args):
        return cls(*args[:3])

    def to_real_layer(self):
        return _MaxPool(self.n_dim, self.kernel_size, self.stride, self.padding)


class StubGlobalPooling(StubLayer):
    """Global average pooling to (channels,)."""
    n_dim = 2

    def output_shape(self, in_shapes):
        return (in_shapes[0][-1],)

    def to_real_layer(self):
        return _GlobalAvgPool()


class StubReLU(StubLayer):
    def to_real_layer(self):
        return _t("ReLU")()


class StubSoftmax(StubLayer):
    def to_real_layer(self):
        return _t("LogSoftmax")(dim=1)


class StubFlatten(StubLayer):
    passthrough = False

    def output_shape(self, in_shapes):
        return (int(np.prod(in_shapes[0])),)

    def to_real_layer(self):
        return _t("Flatten")()


class StubAdd(StubLayer):
    aggregate = True
    passthrough = False

    def to_real_layer(self):
        return _Add()


class StubConcatenate(StubLayer):
    aggregate = True
    passthrough = False

    def output_shape(self, in_shapes):
        return tuple(in_shapes[0][:-1]) + (sum(s[-1] for s in in_shapes),)

    def to_real_layer(self):
        return _Concat()


# Dimension-specific names, as they appear in NNI's JSON.
def _dim_class(base: type, n: int) -> type:
    name = {StubConv: "StubConv", StubBatchNormalization: "StubBatchNormalization", StubDropout: "StubDropout",
            StubPooling: "StubPooling", StubGlobalPooling: "StubGlobalPooling"}[base] + f"{n}d"
    return type(name, (base,), {"n_dim": n, "__module__": __name__})


StubConv1d, StubConv2d, StubConv3d = (_dim_class(StubConv, n) for n in (1, 2, 3))
StubBatchNormalization1d, StubBatchNormalization2d, StubBatchNormalization3d = (
    _dim_class(StubBatchNormalization, n) for n in (1, 2, 3))
StubDropout1d, StubDropout2d, StubDropout3d = (_dim_class(StubDropout, n) for n in (1, 2, 3))
StubPooling1d, StubPooling2d, StubPooling3d = (_dim_class(StubPooling, n) for n in (1, 2, 3))
StubGlobalPooling1d, StubGlobalPooling2d, StubGlobalPooling3d = (_dim_class(StubGlobalPooling, n) for n in (1, 2, 3))

LAYER_CLASSES: dict[str, type] = {c.__name__: c for c in [
    StubConv1d, StubConv2d, StubConv3d, StubDense,
    StubBatchNormalization1d, StubBatchNormalization2d, StubBatchNormalization3d,
    StubDropout1d, StubDropout2d, StubDropout3d, StubPooling1d, StubPooling2d, StubPooling3d,
    StubGlobalPooling1d, StubGlobalPooling2d, StubGlobalPooling3d,
    StubReLU, StubSoftmax, StubFlatten, StubAdd, StubConcatenate]}


def layer_from_description(desc: Sequence[Any]) -> tuple[StubLayer, list[int], int]:
    """A ``layer_list`` entry ``[name, input id(s), output id, *args]`` → (stub, input ids, output id)."""
    if not isinstance(desc, (list, tuple)) or len(desc) < 3 or not isinstance(desc[0], str):
        raise ValueError(f"layer description must be [type name, input id(s), output id, ...args], got {desc!r}")
    name, inputs, output = desc[0], desc[1], desc[2]
    cls = LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown layer type {name!r} in graph JSON; known: {', '.join(sorted(LAYER_CLASSES))}")
    ids = [int(i) for i in inputs] if isinstance(inputs, (list, tuple)) else [int(inputs)]
    return cls.from_args(list(desc[3:])), ids, int(output)


def layer_width(layer: StubLayer) -> int:
    if isinstance(layer, StubDense):
        return layer.units
    if isinstance(layer, StubConv):
        return layer.filters
    raise TypeError(f"{type(layer).__name__} has no width (only Conv and Dense do)")


# -- small torch modules (built lazily: torch is imported only when a model is produced) -----------

def _module_base():
    import torch.nn as nn
    return nn.Module


_CACHE: dict[str, type] = {}


def _torch_class(name: str) -> type:
    if name in _CACHE:
        return _CACHE[name]
    import torch
    import torch.nn.functional as F
    Module = _module_base()

    class _GlobalAvgPool(Module):
        def forward(self, x):
            return x.flatten(2).mean(dim=2)

    class _Add(Module):
        def forward(self, xs):
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

    class _Concat(Module):
        def forward(self, xs):
            return torch.cat(list(xs), dim=1)

    class _MaxPool(Module):
        def __init__(self, n_dim, kernel_size, stride, padding):
            super().__init__()
            self.n_dim, self.kernel_size, self.stride, self.padding = n_dim, kernel_size, stride, padding

        def forward(self, x):
            # a spatial size smaller than the kernel stays 1 (as the stub's shape rule says)
            k = min(self.kernel_size, *x.shape[2:])
            s = min(self.stride, k) if k < self.kernel_size else self.stride
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[self.n_dim]
            return fn(x, k, stride=s, padding=min(self.padding, k // 2))

    _CACHE.update({"_GlobalAvgPool": _GlobalAvgPool, "_Add": _Add, "_Concat": _Concat, "_MaxPool": _MaxPool})
    return _CACHE[name]


def _GlobalAvgPool():
    return _torch_class("_GlobalAvgPool")()


def _Add():
    return _torch_class("_Add")()


def _Concat():
    return _torch_class("_Concat")()


def _MaxPool(n_dim, kernel_size, stride, padding):
    return _torch_class("_MaxPool")(n_dim, kernel_size, stride, padding)
