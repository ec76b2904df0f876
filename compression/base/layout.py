"""Which weight dimension holds a layer's output channels.

Most layers store ``weight`` as ``[out, in, ...]``.  Two common kinds do not:

* ``ConvTranspose1d/2d/3d``: ``[in, out/groups, k...]`` (dim 0 is the *input* channels);
* HuggingFace's ``Conv1D`` (GPT-2, ``transformers.pytorch_utils.Conv1D``): ``[in, out]``, the
  transposed layout of ``nn.Linear``.

Pruning "output channels" of these by weight dim 0 would prune their inputs, so every part of the
library that needs the output dimension (granularity, bias alignment, FLOPs, speedup) asks here.
Conv1D is recognised by its class name and ``nf`` attribute, so ``transformers`` is not imported.
"""
from __future__ import annotations

import torch

__all__ = ["is_hf_conv1d", "out_channel_dim", "in_channel_dim", "is_transposed_weight"]


def is_hf_conv1d(module: torch.nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and \
        isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.dim() == 2


def is_transposed_weight(module: torch.nn.Module) -> bool:
    """True when weight dim 0 is the input dimension (ConvTranspose, HF Conv1D)."""
    return isinstance(module, torch.nn.modules.conv._ConvTransposeNd) or is_hf_conv1d(module)


def out_channel_dim(module: torch.nn.Module) -> int:
    """The weight dimension of the output channels."""
    return 1 if is_transposed_weight(module) else 0


def in_channel_dim(module: torch.nn.Module) -> int:
    """The weight dimension of the input channels."""
    return 0 if is_transposed_weight(module) else 1
