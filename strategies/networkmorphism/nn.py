"""The initial architecture (NNI's ``CnnGenerator``): ``model_len`` blocks of
ReLU → Conv(3×3, ``model_width``) → BatchNorm → MaxPool(2), then global average pooling,
Dropout(0.25), Dense(width) → ReLU → Dense(n_output_node).  For the defaults this is exactly
the 17-layer example graph of NNI's documentation."""
from __future__ import annotations

from typing import Sequence

from .graph import Graph
from .layers import (StubBatchNormalization1d, StubBatchNormalization2d, StubBatchNormalization3d,
                     StubConv1d, StubConv2d, StubConv3d, StubDense, StubDropout1d, StubDropout2d,
                     StubDropout3d, StubGlobalPooling1d, StubGlobalPooling2d, StubGlobalPooling3d,
                     StubPooling1d, StubPooling2d, StubPooling3d, StubReLU)

_BY_DIM = {
    1: (StubConv1d, StubBatchNormalization1d, StubPooling1d, StubGlobalPooling1d, StubDropout1d),
    2: (StubConv2d, StubBatchNormalization2d, StubPooling2d, StubGlobalPooling2d, StubDropout2d),
    3: (StubConv3d, StubBatchNormalization3d, StubPooling3d, StubGlobalPooling3d, StubDropout3d),
}
DROPOUT_RATE = 0.25
KERNEL_SIZE = 3


def dim_classes(n_dim: int):
    if n_dim not in _BY_DIM:
        raise ValueError(f"input shape must have 1 to 3 spatial dimensions, got {n_dim}")
    return _BY_DIM[n_dim]


class CnnGenerator:
    def __init__(self, n_output_node: int, input_shape: Sequence[int]):
        self.n_output_node = int(n_output_node)
        self.input_shape = tuple(input_shape)
        self.conv, self.bn, self.pool, self.gpool, self.dropout = dim_classes(len(self.input_shape) - 1)

    def generate(self, model_len: int = 3, model_width: int = 64) -> Graph:
        g = Graph(self.input_shape, weighted=False)
        node = 0
        channels = self.input_shape[-1]
        for _ in range(model_len):
            node = g.add_layer(StubReLU(), node)
            node = g.add_layer(self.conv(channels, model_width, KERNEL_SIZE), node)
            node = g.add_layer(self.bn(model_width), node)
            node = g.add_layer(self.pool(2), node)
            channels = model_width
        node = g.add_layer(self.gpool(), node)
        node = g.add_layer(self.dropout(DROPOUT_RATE), node)
        node = g.add_layer(StubDense(channels, model_width), node)
        node = g.add_layer(StubReLU(), node)
        g.add_layer(StubDense(model_width, self.n_output_node), node)
        return g
