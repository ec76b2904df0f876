"""One compression target: a parameter/buffer of a module, or one of its inputs/outputs."""
from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Dict, List, Optional

import torch

from .setting import INPUT_PREFIX, OUTPUT_PREFIX

__all__ = ["TargetType", "PruningTargetSpace", "apply_mask"]


class TargetType(str, Enum):
    PARAMETER = "parameter"
    INPUT = "input"
    OUTPUT = "output"


def apply_mask(tensor: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Apply a 0/1 ``mask``: ``mul`` multiplies; ``add`` adds -1000 where the mask is 0 (so a
    following softmax gives those positions ~0 probability)."""
    mask = mask.to(device=tensor.device, dtype=tensor.dtype)
    if method == "add":
        return tensor + (mask - 1.0) * 1000.0
    return tensor * mask


class PruningTargetSpace:
    """State of one target: its setting (from config_list), its mask and, for activations, the
    last value seen in forward.

    ``setting`` keys are those of :class:`~.setting.PruningSetting` (``sparse_ratio``,
    ``granularity``, ``align``, ...) plus any algorithm-specific keys.
    """

    def __init__(self, module_name: str, target_name: str, module: torch.nn.Module,
                 setting: Dict[str, Any], config_index: int):
        self.module_name = module_name
        self.target_name = target_name
        self.module = module
        self.setting = dict(setting)
        self.config_index = config_index
        self._mask: Optional[torch.Tensor] = None  # used while the module is not wrapped
        # For activations: last value seen in forward and its shape (set by track_forward/training).
        self.activation: Optional[torch.Tensor] = None
        self.activation_shape: Optional[torch.Size] = None
        # Replaces ``apply_mask`` for algorithm-specific application (movement pruning's STE).
        self.apply_fn: Optional[Callable[["PruningTargetSpace", torch.Tensor], torch.Tensor]] = None
        # Callbacks ``fn(target_space, value)`` run on each forward with the masked value.
        self.forward_callbacks: List[Callable[["PruningTargetSpace", torch.Tensor], None]] = []
        if target_name.startswith(INPUT_PREFIX):
            self.type = TargetType.INPUT
        elif target_name.startswith(OUTPUT_PREFIX):
            self.type = TargetType.OUTPUT
        else:
            self.type = TargetType.PARAMETER

    # ---- mask: a module buffer ``<target>_mask`` while wrapped (so ``model.to()`` moves it) ----
    @property
    def mask_buffer_name(self) -> str:
        return f"{self.target_name}_mask"

    @property
    def _wrapped(self) -> bool:
        wrapper = getattr(self.module, "_nniray_wrapper", None)
        return wrapper is not None and wrapper.is_wrapped

    @property
    def mask(self) -> Optional[torch.Tensor]:
        if self._wrapped:
            return self.module._buffers.get(self.mask_buffer_name)
        return self._mask

    @mask.setter
    def mask(self, value: Optional[torch.Tensor]) -> None:
        if value is not None:
            value = value.detach()
        if self._wrapped:
            if value is None:
                self.module._buffers.pop(self.mask_buffer_name, None)
            else:
                ref = self.original if not self.is_activation else self.activation
                if ref is not None:
                    value = value.to(device=ref.device, dtype=ref.dtype)
                self.module.register_buffer(self.mask_buffer_name, value)
        else:
            self._mask = value

    # ---- identification ----------------------------------------------------------------
    @property
    def where(self) -> str:
        """``config_list[i] -> module.target``, for error messages."""
        return f"config_list[{self.config_index}] -> {self.module_name}.{self.target_name}"

    @property
    def is_activation(self) -> bool:
        return self.type is not TargetType.PARAMETER

    @property
    def activation_key(self) -> str | int:
        """Which input/output this is: an int position or an argument/dict key name."""
        prefix = INPUT_PREFIX if self.type is TargetType.INPUT else OUTPUT_PREFIX
        suffix = self.target_name[len(prefix):]
        if suffix == "":
            return 0
        return int(suffix) if suffix.isdigit() else suffix

    # ---- settings ------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        return self.setting.get(key)

    sparse_ratio = property(lambda self: self._get("sparse_ratio"))
    max_sparse_ratio = property(lambda self: self._get("max_sparse_ratio"))
    min_sparse_ratio = property(lambda self: self._get("min_sparse_ratio"))
    sparse_threshold = property(lambda self: self._get("sparse_threshold"))
    global_group_id = property(lambda self: self._get("global_group_id"))
    dependency_group_id = property(lambda self: self._get("dependency_group_id"))
    granularity = property(lambda self: self.setting.get("granularity", "default"))
    align = property(lambda self: self._get("align"))

    @property
    def apply_method(self) -> str:
        return self.setting.get("apply_method", "mul") or "mul"

    @property
    def has_sparse_goal(self) -> bool:
        """True if the pruner should compute a metric for this target (it is not aligned)."""
        return self.align is None and (self.sparse_ratio is not None or self.sparse_threshold is not None)

    # ---- values --------------------------------------------------------------------------
    @property
    def original(self) -> Optional[torch.Tensor]:
        """The unmasked parameter (the trainable tensor) or None for activations."""
        if self.is_activation:
            return None
        wrapper = getattr(self.module, "_nniray_wrapper", None)
        if wrapper is not None and self.target_name in wrapper.original_params:
            return wrapper.original_params[self.target_name]
        return getattr(self.module, self.target_name)

    @property
    def target(self) -> Optional[torch.Tensor]:
        """The value the model computes with (mask applied), detached; activations: last seen."""
        if self.is_activation:
            return self.activation
        orig = self.original
        if orig is None:
            return None
        value = orig.detach()
        if self.mask is not None:
            value = apply_mask(value, self.mask, "mul")
        return value

    @property
    def shape(self) -> Optional[torch.Size]:
        if self.is_activation:
            return self.activation_shape
        orig = self.original
        return None if orig is None else orig.shape

    def apply(self, value: torch.Tensor) -> torch.Tensor:
        if self.apply_fn is not None:
            return self.apply_fn(self, value)
        if self.mask is None:
            return value
        return apply_mask(value, self.mask, self.apply_method)

    def __repr__(self) -> str:
        return f"PruningTargetSpace({self.module_name!r}, {self.target_name!r}, config={self.config_index})"
