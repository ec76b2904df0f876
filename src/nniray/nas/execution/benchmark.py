"""The benchmark execution engine: trials look the architecture up instead of training it.

``RetiariiExeConfig(execution_engine='benchmark', benchmark='nasbench201-cifar100')``: each
trial maps its architecture dict to the benchmark's ``arch`` (see below), picks one matching
record at random (several seeds were trained), and reports the record's per-epoch validation
accuracy as intermediate results and its final validation accuracy as the final result.

* NAS-Bench-201: the space's ``NasBench201Cell`` labels ``{cell}__{j}_{i}`` give edges ``i_j``
  (candidate names must be NB201's op names); 200 epochs.
* NAS-Bench-101: a ``NasBench101Cell``'s ``{cell}/num_nodes``, ``{cell}/op{i}``, ``{cell}/input{i}``
  give ``op{i}``/``input{i}`` of its vertices; 108 epochs, matched by graph hash.
"""
from __future__ import annotations

import random
import re
from typing import Any

__all__ = ["BenchmarkEvaluator", "BENCHMARKS", "nb201_arch", "nb101_arch"]

BENCHMARKS = {
    "nasbench201-cifar10": ("nb201", "cifar10-valid"), "nasbench201-cifar100": ("nb201", "cifar100"),
    "nasbench201-imagenet16": ("nb201", "imagenet16-120"), "nasbench101": ("nb101", None),
}


def nb201_arch(sample: dict) -> dict:
    arch = {}
    for key, value in sample.items():
        m = re.match(r"^(.*)__(\d+)_(\d+)$", key)
        if m:
            arch[f"{m.group(3)}_{m.group(2)}"] = value
    if not arch:
        raise KeyError(f"no NasBench201Cell edge labels ('<cell>__<j>_<i>') in the architecture {sorted(sample)}")
    return arch


def nb101_arch(sample: dict) -> dict:
    prefix = next((k[: -len("/num_nodes")] for k in sample if k.endswith("/num_nodes")), None)
    if prefix is None:
        raise KeyError(f"no NasBench101Cell labels ('<cell>/num_nodes') in the architecture {sorted(sample)}")
    n = int(sample[f"{prefix}/num_nodes"])
    arch: dict[str, Any] = {f"op{i}": sample[f"{prefix}/op{i}"] for i in range(1, n - 1)}
    arch.update({f"input{i}": list(sample[f"{prefix}/input{i}"]) for i in range(1, n)})
    return arch


class BenchmarkEvaluator:
    """Looks architectures up in a NAS-benchmark database (no training)."""

    uses_sample = True

    def __init__(self, benchmark: str, seed: int | None = None) -> None:
        if benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
        self.benchmark = benchmark
        self.rng = random.Random(seed)

    def lookup(self, sample: dict) -> dict:
        from nniray.nas.benchmark import query_nb101_trial_stats, query_nb201_trial_stats
        kind, dataset = BENCHMARKS[self.benchmark]
        if kind == "nb201":
            rows = list(query_nb201_trial_stats(nb201_arch(sample), 200, dataset, include_intermediates=True))
        else:
            rows = list(query_nb101_trial_stats(nb101_arch(sample), 108, include_intermediates=True))
        if not rows:
            raise LookupError(f"architecture {sample} is not in the {self.benchmark} database")
        return self.rng.choice(rows)

    def evaluate_sample(self, sample: dict) -> float:
        import nniray
        row = self.lookup(sample)
        for inter in row.get("intermediates", []):
            if inter.get("valid_acc") is not None:
                nniray.report_intermediate_result(inter["valid_acc"])
        nniray.report_final_result(row["valid_acc"])
        return row["valid_acc"]
