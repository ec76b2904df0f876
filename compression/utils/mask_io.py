"""Save, load and apply pruning masks (``{module_name: {target_name: Tensor}}``).

* :func:`export_masks` writes the masks with ``torch.save`` (CPU tensors).
* :func:`load_masks` reads them back.
* :func:`apply_masks` multiplies the masks into an *unwrapped* model's parameters in place
  (NNI's ``apply_compression_results`` for 3.0-style masks): the model then computes what the
  pruned model computed, with the original shapes and zeros (ModelSpeedup removes the zeros).
"""
from __future__ import annotations

import os
from typing import Dict, Union

import torch

__all__ = ["export_masks", "load_masks", "apply_masks"]

Masks = Dict[str, Dict[str, torch.Tensor]]


def _check(masks: Masks) -> None:
    if not isinstance(masks, dict) or not all(isinstance(v, dict) for v in masks.values()):
        raise TypeError("masks must be {module_name: {target_name: Tensor}}, as returned by pruner.compress()")


def export_masks(masks: Masks, path: Union[str, os.PathLike]) -> None:
    """Save ``masks`` to ``path`` with ``torch.save``."""
    _check(masks)
    torch.save({m: {t: v.detach().cpu() for t, v in d.items()} for m, d in masks.items()}, path)


def load_masks(path: Union[str, os.PathLike], map_location: Union[str, torch.device, None] = "cpu") -> Masks:
    """Read masks saved by :func:`export_masks`."""
    masks = torch.load(path, map_location=map_location, weights_only=True)
    _check(masks)
    return masks


def apply_masks(model: torch.nn.Module, masks: Masks) -> torch.nn.Module:
    """Zero the masked positions of ``model``'s parameters/buffers in place; returns the model.

    Only parameter/buffer targets are applied (input/output masks describe activations, which a
    plain model has no place to keep; ModelSpeedup uses them).  The model must be unwrapped.
    """
    _check(masks)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for module_name, targets in masks.items():
            module = modules.get(module_name)
            if module is None:
                raise KeyError(f"apply_masks: the model has no module {module_name!r}")
            if getattr(module, "_nniray_wrapper", None) is not None:
                raise RuntimeError(f"apply_masks: {module_name!r} is wrapped by a pruner; call pruner.unwrap_model() "
                                   f"first")
            for target_name, mask in targets.items():
                if target_name.startswith(("_input_", "_output_")):
                    continue
                tensor = getattr(module, target_name, None)
                if not isinstance(tensor, torch.Tensor):
                    raise KeyError(f"apply_masks: module {module_name!r} has no parameter {target_name!r}")
                tensor.mul_(mask.to(device=tensor.device, dtype=tensor.dtype))
    return model
