"""NDS queries (``nni.nas.benchmarks.nds``)."""
from __future__ import annotations

from typing import Iterator

from .db import query

__all__ = ["query_nds_trial_stats"]

NONE = "none"
SKIP_CONNECT = "skip_connect"
AVG_POOL_3X3 = "avg_pool_3x3"
MAX_POOL_3X3 = "max_pool_3x3"
MAX_POOL_5X5 = "max_pool_5x5"
MAX_POOL_7X7 = "max_pool_7x7"
CONV_1X1 = "conv_1x1"
CONV_3X3 = "conv_3x3"
CONV_3X1_1X3 = "conv_3x1_1x3"
CONV_7X1_1X7 = "conv_7x1_1x7"
DIL_CONV_3X3 = "dil_conv_3x3"
DIL_CONV_5X5 = "dil_conv_5x5"
SEP_CONV_3X3 = "sep_conv_3x3"
SEP_CONV_5X5 = "sep_conv_5x5"
SEP_CONV_7X7 = "sep_conv_7x7"
DIL_SEP_CONV_3X3 = "dil_sep_conv_3x3"


def query_nds_trial_stats(model_family: str | None, proposer: str | None, generator: str | None,
                          model_spec: dict | None, cell_spec: dict | None, dataset: str | None,
                          num_epochs: float | None = None, reduction: str | None = None,
                          include_intermediates: bool = False) -> Iterator[dict]:
    return query("nds", {"model_family": model_family, "proposer": proposer, "generator": generator,
                         "model_spec": model_spec, "cell_spec": cell_spec, "dataset": dataset,
                         "num_epochs": num_epochs}, reduction, include_intermediates)
