"""NAS-Bench-201 queries (``nni.nas.benchmarks.nasbench201``)."""
from __future__ import annotations

from typing import Iterator

from .db import query

__all__ = ["query_nb201_trial_stats", "NONE", "SKIP_CONNECT", "CONV_1X1", "CONV_3X3", "AVG_POOL_3X3"]

NONE = "none"
SKIP_CONNECT = "skip_connect"
CONV_1X1 = "conv_1x1"
CONV_3X3 = "conv_3x3"
AVG_POOL_3X3 = "avg_pool_3x3"


def query_nb201_trial_stats(arch: dict | None, num_epochs: int | None, dataset: str | None,
                            reduction: str | None = None, include_intermediates: bool = False) -> Iterator[dict]:
    return query("nb201", {"arch": arch, "num_epochs": num_epochs, "dataset": dataset}, reduction,
                 include_intermediates)
