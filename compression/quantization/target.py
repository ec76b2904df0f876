"""State of one quantization target (a weight, an input or an output of a module)."""
from __future__ import annotations

from enum import Enum
from typing import Any, Dict, List, Optional

import torch

from ..base.target_space import PruningTargetSpace, TargetType
from .config import ConfigError, QuantDtype, QuantScheme
from .functional import QuantType, block_sizes, calculate_qparams, expand_blocks, optional, reduce_range

__all__ = ["QuantMode", "QuantTarget"]


class QuantMode(str, Enum):
    """What a target does in forward."""
    BYPASS = "bypass"        # nothing (float)
    OBSERVE = "observe"      # record ranges, values stay float (calibration, before quant_start_step)
    QUANTIZE = "quantize"    # simulated quantization (values are float on the integer grid)


class QuantTarget:
    """Quantization setting and calibration state of ``space`` (the wrapper's target space)."""

    def __init__(self, space: PruningTargetSpace, setting: Dict[str, Any], config_index: int,
                 default_scheme: QuantScheme):
        self.space = space
        self.setting = dict(setting)
        self.config_index = config_index
        where = f"config_list[{config_index}] -> {space.module_name}.{space.target_name}"
        self.where = where
        self.dtype = QuantDtype.parse(setting.get("quant_dtype"), f"{where}.quant_dtype")
        scheme = setting.get("quant_scheme")
        self.scheme = QuantScheme(scheme) if scheme is not None else default_scheme
        self.granularity = setting.get("granularity", "default")
        self.mode = QuantMode.QUANTIZE
        self.tracked_min: Optional[torch.Tensor] = None
        self.tracked_max: Optional[torch.Tensor] = None
        self.scale: Optional[torch.Tensor] = None
        self.zero_point: Optional[torch.Tensor] = None
        self.observed_batches = 0
        #: extra values an algorithm keeps (e.g. LSQ's learnable step size)
        self.params: Dict[str, torch.nn.Parameter] = {}
        #: running mean of the module input per channel, for bias correction
        self.input_mean: Optional[torch.Tensor] = None

    # ---- identity ----------------------------------------------------------------------------
    @property
    def module_name(self) -> str:
        return self.space.module_name

    @property
    def target_name(self) -> str:
        return self.space.target_name

    @property
    def module(self) -> torch.nn.Module:
        return self.space.module

    @property
    def quant_type(self) -> QuantType:
        return {TargetType.PARAMETER: QuantType.WEIGHT, TargetType.INPUT: QuantType.INPUT,
                TargetType.OUTPUT: QuantType.OUTPUT}[self.space.type]

    @property
    def is_activation(self) -> bool:
        return self.space.is_activation

    def sizes(self, shape: torch.Size) -> List[int]:
        try:
            return block_sizes(self.granularity, list(shape), self.is_activation)
        except ValueError as exc:
            raise ConfigError(f"{self.where}.granularity: {exc}") from None

    # ---- ranges ------------------------------------------------------------------------------
    def observe_minmax(self, value: torch.Tensor) -> None:
        """Running min/max (a PTQ observer)."""
        vmin, vmax = reduce_range(value, self.sizes(value.shape))
        if self.tracked_min is None or self.tracked_min.shape != vmin.shape:
            self.tracked_min, self.tracked_max = vmin, vmax
        else:
            self.tracked_min = torch.minimum(self.tracked_min, vmin.to(self.tracked_min.device))
            self.tracked_max = torch.maximum(self.tracked_max, vmax.to(self.tracked_max.device))
        self.observed_batches += 1

    def observe_ema(self, value: torch.Tensor, decay: float) -> None:
        """Exponential moving average of min/max (QAT's activation tracking)."""
        vmin, vmax = reduce_range(value, self.sizes(value.shape))
        if self.tracked_min is None or self.tracked_min.shape != vmin.shape:
            self.tracked_min, self.tracked_max = vmin, vmax
        else:
            self.tracked_min = decay * self.tracked_min + (1 - decay) * vmin
            self.tracked_max = decay * self.tracked_max + (1 - decay) * vmax
        self.observed_batches += 1

    def set_range(self, value: torch.Tensor) -> None:
        """Range of exactly this tensor (weights)."""
        self.tracked_min, self.tracked_max = reduce_range(value, self.sizes(value.shape))

    def update_qparams(self) -> None:
        if self.tracked_min is None:
            raise RuntimeError(f"{self.where}: no value was observed, so its scale is unknown; run calibration "
                               f"data through the model (the evaluator's evaluating_func) first")
        self.scale, self.zero_point = calculate_qparams(self.tracked_min, self.tracked_max, self.dtype, self.scheme)

    def expanded(self, param: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return expand_blocks(param, self.sizes(like.shape), like.shape).to(device=like.device, dtype=like.dtype)

    def observe_input_mean(self, value: torch.Tensor) -> None:
        """Per-channel mean of an input (dim 1, or the last dim of a Linear input)."""
        x = value.detach()
        if isinstance(self.module, torch.nn.Linear):
            mean = x.reshape(-1, x.shape[-1]).mean(0)
        else:
            mean = x.transpose(0, 1).reshape(x.shape[1], -1).mean(1)
        n = self.observed_batches
        self.input_mean = mean if self.input_mean is None or n == 0 else (self.input_mean * n + mean) / (n + 1)

    # ---- export ------------------------------------------------------------------------------
    def calibration(self) -> Dict[str, Any]:
        return {
            "scale": optional(self.scale),
            "zero_point": optional(self.zero_point),
            "quant_dtype": self.dtype.name,
            "quant_bits": self.dtype.bits,
            "quant_scheme": self.scheme.value,
            "granularity": self.granularity,
            "tracked_min": optional(self.tracked_min),
            "tracked_max": optional(self.tracked_max),
        }

    def load(self, entry: Dict[str, Any]) -> None:
        for key in ("scale", "zero_point", "tracked_min", "tracked_max"):
            if entry.get(key) is not None:
                setattr(self, key, torch.as_tensor(entry[key]).detach().clone().float())
        if self.scale is None and self.tracked_min is not None:
            self.update_qparams()

    def __repr__(self) -> str:
        return f"QuantTarget({self.module_name!r}, {self.target_name!r}, {self.dtype.name}, {self.scheme.value})"
