"""NAS-Bench-101 queries (``nni.nas.benchmarks.nasbench101``) and its graph utilities."""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

import numpy as np

from .db import query

__all__ = ["query_nb101_trial_stats", "INPUT", "OUTPUT", "CONV3X3_BN_RELU", "CONV1X1_BN_RELU", "MAXPOOL3X3",
           "hash_module", "infer_num_vertices", "nasbench_format_to_architecture_repr"]

INPUT = "input"
OUTPUT = "output"
CONV3X3_BN_RELU = "conv3x3-bn-relu"
CONV1X1_BN_RELU = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"


def infer_num_vertices(architecture: dict) -> int:
    return max(int(k[5:]) for k in architecture if k.startswith("input")) + 1


def _matrix(architecture: dict, vertices: int) -> np.ndarray:
    m = np.zeros((vertices, vertices), dtype=bool)
    for i in range(1, vertices):
        for k in architecture[f"input{i}"]:
            m[k, i] = True
    return m


def _labeling(architecture: dict, vertices: int) -> list[str]:
    return [INPUT] + [architecture[f"op{i}"] for i in range(1, vertices - 1)] + [OUTPUT]


def _hash(matrix: np.ndarray, labeling: list[str]) -> str:
    """NAS-Bench-101's graph-invariant hash: isomorphic cells hash alike."""
    vertices = matrix.shape[0]
    in_edges, out_edges = matrix.sum(axis=0).tolist(), matrix.sum(axis=1).tolist()
    hashes = [hashlib.md5(str(h).encode()).hexdigest() for h in zip(out_edges, in_edges, labeling)]
    for _ in range(vertices):
        hashes = [hashlib.md5(("".join(sorted(hashes[w] for w in range(vertices) if matrix[w, v])) + "|"
                               + "".join(sorted(hashes[w] for w in range(vertices) if matrix[v, w])) + "|"
                               + hashes[v]).encode()).hexdigest() for v in range(vertices)]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


def hash_module(architecture: dict, vertices: int) -> str:
    return _hash(_matrix(architecture, vertices), _labeling(architecture, vertices))


def nasbench_format_to_architecture_repr(adjacency_matrix: Any, labeling: list[str]) -> tuple[int, dict]:
    m = np.asarray(adjacency_matrix)
    vertices = m.shape[0]
    arch: dict[str, Any] = {}
    for i in range(1, vertices - 1):
        arch[f"op{i}"] = labeling[i]
    for i in range(1, vertices):
        arch[f"input{i}"] = [k for k in range(i) if m[k, i]]
    return vertices, arch


def query_nb101_trial_stats(arch: dict | None, num_epochs: int | None, isomorphism: bool = True,
                            reduction: str | None = None, include_intermediates: bool = False) -> Iterator[dict]:
    filters: dict[str, Any] = {"num_epochs": num_epochs}
    if arch is not None:
        if isomorphism:
            filters["hash"] = hash_module(arch, infer_num_vertices(arch))
        else:
            filters["arch"] = arch
    return query("nb101", filters, reduction, include_intermediates)
