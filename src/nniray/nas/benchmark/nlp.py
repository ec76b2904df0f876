"""NAS-Bench-NLP queries (``nni.nas.benchmarks.nlp``)."""
from __future__ import annotations

from typing import Iterator

from .db import query

__all__ = ["query_nlp_trial_stats"]


def query_nlp_trial_stats(arch: dict | None, dataset: str | None, reduction: str | None = None,
                          include_intermediates: bool = False) -> Iterator[dict]:
    return query("nlp", {"arch": arch, "dataset": dataset}, reduction, include_intermediates)
