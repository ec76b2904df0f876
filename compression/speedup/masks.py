"""Mask dictionaries in, and the per-dimension "keep" sets that speedup works with.

Input masks have the NNI 3.0 shape ``{module_name: {target_name: Tensor}}`` (1 = kept,
0 = pruned), given as a dict or a file written by ``torch.save``.

Inside speedup every traced tensor gets an *element* mask of its own shape (1 = the value
there can be non-zero and is needed).  A tensor can only be shrunk by deleting whole
slices, so an element mask is closed to a *box*: for each dimension, the indices that
have any kept element.  A box is a list with one entry per dimension, ``None`` (keep all)
or a bool vector; ``reduce_tensor`` applies it with ``index_select``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import torch

from ..base.layout import out_channel_dim

Masks = Dict[str, Dict[str, torch.Tensor]]
Box = List[Optional[torch.Tensor]]

__all__ = ["load_masks", "box_of", "box_mask", "reduce_tensor", "union_box", "full_box", "box_is_full"]


def load_masks(masks_or_file: Any, model: torch.nn.Module, map_location=None) -> Masks:
    """Validate and normalise the masks; derive bias masks the way NNI 3.0 aligns them."""
    if isinstance(masks_or_file, (str, os.PathLike)):
        masks_or_file = torch.load(masks_or_file, map_location=map_location)
    if not isinstance(masks_or_file, dict):
        raise TypeError("masks_or_file must be a dict {module_name: {target_name: Tensor}} or a path "
                        f"to one saved with torch.save; got {type(masks_or_file).__name__}")
    modules = dict(model.named_modules())
    out: Masks = {}
    for name, targets in masks_or_file.items():
        if name not in modules:
            raise KeyError(f"masks name module '{name}', which the model does not have; "
                           f"masks must be keyed by names from model.named_modules()")
        if isinstance(targets, torch.Tensor):  # v1/v2 style {name: weight_mask}
            targets = {"weight": targets}
        if not isinstance(targets, dict):
            raise TypeError(f"masks['{name}'] must be a dict {{target_name: Tensor}}, got {type(targets).__name__}")
        module = modules[name]
        fixed: Dict[str, torch.Tensor] = {}
        for target, mask in targets.items():
            target = {"weight_mask": "weight", "bias_mask": "bias"}.get(target, target)
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"masks['{name}']['{target}'] must be a Tensor, got {type(mask).__name__}")
            param = getattr(module, target, None)
            if isinstance(param, torch.Tensor) and tuple(param.shape) != tuple(mask.shape):
                raise ValueError(f"masks['{name}']['{target}'] has shape {tuple(mask.shape)} but "
                                 f"{name}.{target} has shape {tuple(param.shape)}")
            fixed[target] = (mask != 0).to(torch.float32)
        # A bias without a mask follows weight dim 0 (NNI 3.0's default `align`): bias[i] is
        # pruned iff weight row i is fully pruned.  Otherwise a pruned filter would still
        # output a constant bias and could never be removed.
        bias = getattr(module, "bias", None)
        od = out_channel_dim(module)  # 1 for ConvTranspose / HF Conv1D
        if "weight" in fixed and "bias" not in fixed and isinstance(bias, torch.Tensor) \
                and bias.dim() == 1 and fixed["weight"].dim() > od and fixed["weight"].shape[od] == bias.shape[0]:
            w = fixed["weight"]
            fixed["bias"] = (w.transpose(0, od).flatten(1).sum(1) != 0).to(torch.float32) \
                if w.dim() > 1 else w.clone()
        out[name] = fixed
    return out


def box_of(mask: torch.Tensor) -> Box:
    """Per-dimension kept indices of an element mask (``None`` = all kept)."""
    box: Box = []
    nz = mask != 0
    for d in range(mask.dim()):
        if mask.shape[d] == 0:
            box.append(None)
            continue
        others = [i for i in range(mask.dim()) if i != d]
        k = nz.any(dim=others) if others else nz.clone()
        if bool(k.all()):
            box.append(None)
        else:
            if not bool(k.any()):
                k[0] = True  # never shrink a dimension to nothing
            box.append(k)
    return box


def full_box(t: torch.Tensor) -> Box:
    return [None] * t.dim()


def box_is_full(box: Box) -> bool:
    return all(k is None for k in box)


def box_mask(box: Box, shape, dtype=torch.float32) -> torch.Tensor:
    """The element mask of a box."""
    m = torch.ones(shape, dtype=dtype)
    for d, k in enumerate(box):
        if k is not None:
            view = [1] * len(shape)
            view[d] = shape[d]
            m = m * k.to(dtype).view(view)
    return m


def reduce_tensor(t: torch.Tensor, box: Box) -> torch.Tensor:
    for d, k in enumerate(box):
        if k is not None:
            t = t.index_select(d, k.nonzero().squeeze(1))
    return t


def union_box(a: Box, b: Box) -> Box:
    out: Box = []
    for ka, kb in zip(a, b):
        if ka is None or kb is None:
            out.append(None)
        else:
            k = ka | kb
            out.append(None if bool(k.all()) else k)
    return out


def kept_indices(box: Box, dim: int, size: int) -> torch.Tensor:
    k = box[dim] if box else None
    if k is None:
        return torch.arange(size)
    return k.nonzero().squeeze(1)
