"""Hardware-aware filtering: ``Random(model_filter=LatencyFilter(...))``.

nn-Meter (NNI's latency predictor) cannot be installed here, so the filter measures what runs
here instead: ``metric='latency'`` times the built model on ``dummy_input`` with torch on this
CPU (median of ``repeat`` runs after a warm-up, milliseconds), ``metric='flops'`` counts its
FLOPs with ``nniray.compression.utils.count_flops_params`` (deterministic, machine-independent).
Values are cached per architecture, so a repeated sample costs nothing.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

__all__ = ["LatencyFilter"]


class LatencyFilter:
    """Keep models whose latency/FLOPs is at most ``threshold`` (at least, with ``reverse``)."""

    def __init__(self, threshold: float, dummy_input: Sequence[int] | Any = (1, 3, 32, 32), metric: str = "latency",
                 repeat: int = 10, reverse: bool = False) -> None:
        if metric not in ("latency", "flops"):
            raise ValueError(f"LatencyFilter: metric must be 'latency' or 'flops', got {metric!r}")
        self.threshold, self.metric, self.repeat, self.reverse = float(threshold), metric, int(repeat), reverse
        self.dummy_input = list(dummy_input) if isinstance(dummy_input, (list, tuple)) else dummy_input
        self.cache: dict[str, float] = {}

    def _input(self) -> Any:
        import torch
        if isinstance(self.dummy_input, list):
            return torch.rand(*self.dummy_input)
        return self.dummy_input

    def measure(self, torch_model: Any) -> float:
        import torch
        x = self._input()
        torch_model.eval()
        if self.metric == "flops":
            from nniray.compression.utils import count_flops_params
            flops, _, _ = count_flops_params(torch_model, x, verbose=False)
            return float(flops)
        with torch.no_grad():
            torch_model(x)
            times = []
            for _ in range(self.repeat):
                t = time.perf_counter()
                torch_model(x)
                times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    def value(self, model: Any) -> float:
        from nniray.strategies.nas.base import sample_key
        key = sample_key(model.sample)
        if key not in self.cache:
            self.cache[key] = self.measure(model.build())
        return self.cache[key]

    def __call__(self, model: Any) -> bool:
        v = self.value(model)
        return v >= self.threshold if self.reverse else v <= self.threshold
