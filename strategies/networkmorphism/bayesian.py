"""Bayesian optimisation over architectures (Autokeras, Jin et al. 2019, as in NNI).

* Distance between two networks = edit distance of their main-path Conv/Dense layer lists
  (substituting width a by b costs |a−b|/max(a,b), inserting or deleting a layer costs 1;
  a Conv never matches a Dense) + the cost of matching their skip connections (Hungarian
  assignment; an unmatched connection costs 1).
* Kernel k(a, b) = exp(−d(a, b)²); the Gram matrix is projected onto the PSD cone (eigenvalues
  clipped at 0) because an edit distance does not make this kernel positive definite in general
  (Autokeras uses a Bourgain embedding for the same purpose).  Targets are standardised.
* Acquisition = UCB (mean + beta·std) on the internal maximisation scale.
* The acquisition is optimised by simulated annealing over morphisms starting from the trained
  models (temperature 1 → ``t_min``, ×0.9 per step); a child remembers the trained model it
  descends from (its "father").
"""
from __future__ import annotations

import heapq
import math
from itertools import count
from typing import Callable, Sequence

import numpy as np

from .graph import Graph, NetworkDescriptor
from .graph_transformer import transform

KERNEL_LAMBDA = 1.0  # weight of the skip-connection distance
ANNEAL_ALPHA = 0.9
N_NEIGHBOURS = 8


# -- distance -------------------------------------------------------------------------------------

def _layer_cost(a: tuple, b: tuple) -> float:
    if a[0] != b[0]:
        return 1.0
    return abs(a[1] - b[1]) / max(a[1], b[1], 1)


def layers_distance(xs: Sequence[tuple], ys: Sequence[tuple]) -> float:
    n, m = len(xs), len(ys)
    prev = [float(j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [float(i)] + [0.0] * m
        for j in range(1, m + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + _layer_cost(xs[i - 1], ys[j - 1]))
        prev = cur
    return prev[m]


def _skip_cost(a: tuple, b: tuple) -> float:
    if a[2] != b[2]:
        return 1.0
    len_a, len_b = abs(a[1] - a[0]), abs(b[1] - b[0])
    den = max(a[0], b[0]) + max(len_a, len_b)
    return (abs(a[0] - b[0]) + abs(len_a - len_b)) / den if den else 0.0


def skips_distance(xs: Sequence[tuple], ys: Sequence[tuple]) -> float:
    if not xs or not ys:
        return float(abs(len(xs) - len(ys)))
    from scipy.optimize import linear_sum_assignment
    cost = np.array([[_skip_cost(a, b) for b in ys] for a in xs])
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].sum() + abs(len(xs) - len(ys)))


def edit_distance(a: NetworkDescriptor, b: NetworkDescriptor) -> float:
    return layers_distance(a.layers, b.layers) + KERNEL_LAMBDA * skips_distance(a.skip_connections, b.skip_connections)


def distance_matrix(xs: Sequence[NetworkDescriptor], ys: Sequence[NetworkDescriptor]) -> np.ndarray:
    return np.array([[edit_distance(x, y) for y in ys] for x in xs], dtype=float).reshape(len(xs), len(ys))


# -- Gaussian process ----------------------------------------------------------------------------------

class IncrementalGaussianProcess:
    """GP regression with the edit-distance kernel; refit from scratch on every ``fit`` (n is
    the number of trained models, small)."""

    def __init__(self, alpha: float = 1e-6):
        self.alpha = alpha
        self.x: list[NetworkDescriptor] = []
        self.y: list[float] = []
        self._fitted = False

    @property
    def first_fitted(self) -> bool:
        return self._fitted

    def fit(self, xs: Sequence[NetworkDescriptor], ys: Sequence[float]) -> None:
        self.x.extend(xs)
        self.y.extend(float(v) for v in ys)
        y = np.asarray(self.y)
        self._mu, self._sd = float(y.mean()), float(y.std()) or 1.0
        k = np.exp(-distance_matrix(self.x, self.x) ** 2)
        w, v = np.linalg.eigh((k + k.T) / 2)
        k = (v * np.clip(w, 0, None)) @ v.T + self.alpha * np.eye(len(self.x))
        k[np.diag_indices_from(k)] += 1e-8
        self._l = np.linalg.cholesky(k)
        yn = (y - self._mu) / self._sd
        self._alpha_vec = np.linalg.solve(self._l.T, np.linalg.solve(self._l, yn))
        self._fitted = True

    def predict(self, xs: Sequence[NetworkDescriptor]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std on the standardised scale."""
        ks = np.exp(-distance_matrix(xs, self.x) ** 2)
        mean = ks @ self._alpha_vec
        v = np.linalg.solve(self._l, ks.T)
        var = np.clip(1.0 - np.sum(v * v, axis=0), 1e-12, None)
        return mean, np.sqrt(var)


# -- optimiser -------------------------------------------------------------------------------------------

class BayesianOptimizer:
    """Picks the next architecture.  ``maximize``: larger metric is better (internally the
    metric is negated for minimisation)."""

    def __init__(self, t_min: float, beta: float, maximize: bool, rng: np.random.Generator,
                 max_model_size: int | None = None):
        self.t_min, self.beta, self.sign = t_min, beta, 1.0 if maximize else -1.0
        self.rng = rng
        self.max_model_size = max_model_size
        self.gpr = IncrementalGaussianProcess()
        self.search_tree: dict[int, list[int]] = {}

    def fit(self, descriptors: Sequence[NetworkDescriptor], metrics: Sequence[float]) -> None:
        self.gpr.fit(descriptors, [self.sign * m for m in metrics])

    def acq(self, graphs: Sequence[Graph]) -> np.ndarray:
        mean, std = self.gpr.predict([g.extract_descriptor() for g in graphs])
        return mean + self.beta * std

    def add_child(self, father_id: int, model_id: int) -> None:
        self.search_tree.setdefault(father_id, []).append(model_id)
        self.search_tree.setdefault(model_id, [])

    def generate(self, history: Sequence[tuple[int, float]], load_graph: Callable[[int], Graph],
                 seen: Sequence[NetworkDescriptor]) -> tuple[Graph | None, int | None]:
        """Simulated annealing from the trained models (``history``: (model_id, metric)).
        Returns (graph, father model id), or (None, None) when nothing new was found."""
        if not self.gpr.first_fitted or not history:
            return None, None
        seen_keys = {d.key() for d in seen}
        tie = count()
        mu, sd = self.gpr._mu, self.gpr._sd  # compare trained metrics on the acquisition's scale
        pq = [(-(self.sign * m - mu) / sd, next(tie), mid, load_graph(mid)) for mid, m in history]
        heapq.heapify(pq)
        t, opt_acq = 1.0, -math.inf
        best: tuple[Graph | None, int | None] = (None, None)
        while pq and t > self.t_min:
            neg_value, _, father_id, graph = heapq.heappop(pq)
            value = -neg_value
            ap = math.exp(min((value - opt_acq) / t, 1.0)) if opt_acq > -math.inf else math.e
            if ap >= self.rng.uniform(0, 1):
                children = [c for c in transform(graph, self.rng, N_NEIGHBOURS, self.max_model_size)
                            if c.extract_descriptor().key() not in seen_keys]
                if children:
                    acqs = self.acq(children)
                    for child, a in zip(children, acqs):
                        seen_keys.add(child.extract_descriptor().key())
                        heapq.heappush(pq, (-float(a), next(tie), father_id, child))
                        if a > opt_acq:
                            opt_acq, best = float(a), (child, father_id)
            t *= ANNEAL_ALPHA
        return best
