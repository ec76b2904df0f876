"""``nniray.nas.benchmark`` (also ``nniray.nas.benchmarks``): NNI's NAS-benchmark query API on
SQLite databases with NNI's schema (see :mod:`.db`)."""
from .db import BenchmarkNotFound, benchmark_dir  # noqa: F401
from .nasbench101 import query_nb101_trial_stats  # noqa: F401
from .nasbench201 import query_nb201_trial_stats  # noqa: F401
from .nds import query_nds_trial_stats  # noqa: F401
from .nlp import query_nlp_trial_stats  # noqa: F401

__all__ = ["query_nb101_trial_stats", "query_nb201_trial_stats", "query_nds_trial_stats", "query_nlp_trial_stats",
           "benchmark_dir", "BenchmarkNotFound"]
