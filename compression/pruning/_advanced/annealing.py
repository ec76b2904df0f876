"""Simulated annealing over per-layer sparsity allocations (AutoCompress, arXiv 1907.03141).

An *allocation* gives each prunable layer a sparse ratio.  Every allocation the search visits
prunes the same number of weights overall (``sum(numel_i * s_i) == target * sum(numel_i)``), and
the ratios are handed out in size order, so a layer with more weights never gets a lower ratio
than a smaller layer (the "guided" prior of the paper: big layers tolerate more pruning).

The schedule follows NNI:

* the temperature starts at ``start_temperature`` and is multiplied by ``cool_down_rate`` each
  time a perturbed allocation is *accepted*; the search ends once it falls below
  ``stop_temperature`` (the v2.5 guide writes ``<`` for the loop condition, which cannot be meant:
  start=100 > stop=20);
* a perturbation adds ``U(-m, m)`` to every ratio with ``m = T / start * perturbation_magnitude``,
  then rescales to the overall target;
* a better score is always accepted, a worse one with probability ``exp(-|Δ| / T)``.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

__all__ = ["rescale_allocation", "assign_by_size", "random_allocation", "perturb_allocation",
           "AnnealingSchedule", "temperature_schedule"]


def rescale_allocation(sparsities: Sequence[float], numels: Sequence[int], target: float) -> Optional[np.ndarray]:
    """Scale ``sparsities`` so that the weighted total equals ``target``; None if nothing is pruned."""
    s = np.asarray(sparsities, dtype=float)
    n = np.asarray(numels, dtype=float)
    pruned = float((s * n).sum())
    if pruned <= 0:
        return None
    return s * (target * n.sum() / pruned)


def assign_by_size(sparsities: Sequence[float], numels: Sequence[int]) -> np.ndarray:
    """Hand the ratios out in size order: the smallest ratio to the smallest layer, and so on.
    Returns the ratios in the order of ``numels``."""
    order = np.argsort(np.asarray(numels), kind="stable")
    out = np.empty(len(numels), dtype=float)
    out[order] = np.sort(np.asarray(sparsities, dtype=float))
    return out


def _valid(alloc: Optional[np.ndarray], max_ratios: np.ndarray) -> bool:
    return alloc is not None and bool(np.all(alloc >= 0)) and bool(np.all(alloc <= max_ratios))


def _size_ordered_rescale(raw: np.ndarray, numels: np.ndarray, target: float) -> Optional[np.ndarray]:
    # sort first, then rescale: the rescaled total is computed on the allocation actually used
    return rescale_allocation(assign_by_size(raw, numels), numels, target)


def random_allocation(numels: Sequence[int], target: float, rng: np.random.Generator,
                      max_ratios: Optional[Sequence[float]] = None, max_tries: int = 10000) -> np.ndarray:
    """A random valid allocation with the given overall ``target`` ratio.

    Draws uniform ratios in ``[low, 1)``, raising ``low`` a little after every failed draw (as NNI
    does) so that a feasible, fairly even allocation is found quickly.
    """
    numels = np.asarray(numels, dtype=float)
    caps = _caps(max_ratios, len(numels))
    if target == 0:
        return np.zeros(len(numels))
    _check_feasible(numels, target, caps)
    low = 0.0
    for _ in range(max_tries):
        low = (1 - low) * 0.05 + low
        alloc = _size_ordered_rescale(rng.uniform(low, 1, len(numels)), numels, target)
        if _valid(alloc, caps):
            return alloc
    # a uniform allocation is always valid when the problem is feasible and caps are equal
    uniform = np.full(len(numels), target)
    if _valid(uniform, caps):
        return uniform
    raise RuntimeError("could not find a sparsity allocation within max_sparse_ratio; lower sparse_ratio")


def perturb_allocation(current: np.ndarray, numels: Sequence[int], target: float, magnitude: float,
                       rng: np.random.Generator, max_ratios: Optional[Sequence[float]] = None,
                       max_tries: int = 10000) -> np.ndarray:
    """A random neighbour of ``current`` with the same overall ratio (see the module docstring)."""
    numels = np.asarray(numels, dtype=float)
    caps = _caps(max_ratios, len(numels))
    if target == 0:
        return np.zeros(len(numels))
    for _ in range(max_tries):
        raw = np.clip(current + rng.uniform(-magnitude, magnitude, len(current)), 0, None)
        alloc = _size_ordered_rescale(raw, numels, target)
        if _valid(alloc, caps):
            return alloc
    return np.array(current, dtype=float)


def _caps(max_ratios, n) -> np.ndarray:
    # a ratio of exactly 1 would remove a whole layer: keep strictly below unless the user allows it
    if max_ratios is None:
        return np.full(n, 1.0 - 1e-6)
    return np.minimum(np.asarray(max_ratios, dtype=float), 1.0 - 1e-6)


def _check_feasible(numels: np.ndarray, target: float, caps: np.ndarray) -> None:
    if (caps * numels).sum() < target * numels.sum() - 1e-9:
        raise ValueError(f"overall sparse_ratio {target:.4f} cannot be reached with max_sparse_ratio caps "
                         f"{caps.tolist()}; lower sparse_ratio or raise max_sparse_ratio")


def temperature_schedule(start_temperature: float = 100, stop_temperature: float = 20,
                         cool_down_rate: float = 0.9) -> List[float]:
    """Temperatures at which a perturbation is evaluated when every perturbation is accepted:
    ``start, start*r, start*r^2, ...`` while ``>= stop``."""
    temps, t = [], float(start_temperature)
    while t >= stop_temperature:
        temps.append(t)
        t *= cool_down_rate
    return temps


class AnnealingSchedule:
    """Temperature, perturbation size and the acceptance rule of the search.

    ``patience`` bounds how many rejections in a row are tolerated at one temperature before it
    cools anyway: NNI loops forever if nothing is ever accepted (e.g. a score on a scale where
    ``exp(-|Δ|/T)`` is ~0), which a library must not do.
    """

    def __init__(self, start_temperature: float = 100, stop_temperature: float = 20, cool_down_rate: float = 0.9,
                 perturbation_magnitude: float = 0.35, optimize_mode: str = "maximize", patience: int = 10):
        if not start_temperature > stop_temperature > 0:
            raise ValueError(f"need start_temperature > stop_temperature > 0, got {start_temperature} and {stop_temperature}")
        if not 0 < cool_down_rate < 1:
            raise ValueError(f"cool_down_rate must be in (0, 1), got {cool_down_rate}")
        if not perturbation_magnitude > 0:
            raise ValueError(f"perturbation_magnitude must be > 0, got {perturbation_magnitude}")
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        self.start_temperature = float(start_temperature)
        self.stop_temperature = float(stop_temperature)
        self.cool_down_rate = float(cool_down_rate)
        self.perturbation_magnitude = float(perturbation_magnitude)
        self.optimize_mode = optimize_mode
        self.patience = patience
        self.temperature = float(start_temperature)
        self._rejections = 0

    @property
    def finished(self) -> bool:
        return self.temperature < self.stop_temperature

    @property
    def magnitude(self) -> float:
        return self.temperature / self.start_temperature * self.perturbation_magnitude

    def better(self, a: float, b: float) -> bool:
        return a > b if self.optimize_mode == "maximize" else a < b

    def accept(self, new_score: float, current_score: float, rng: np.random.Generator) -> bool:
        """Decide on a candidate and advance the schedule (cool on acceptance)."""
        if self.better(new_score, current_score):
            accepted = True
        else:
            accepted = rng.uniform(0, 1) < math.exp(-abs(new_score - current_score) / self.temperature)
        if accepted:
            self._rejections = 0
            self.temperature *= self.cool_down_rate
        else:
            self._rejections += 1
            if self._rejections >= self.patience:
                self._rejections = 0
                self.temperature *= self.cool_down_rate
        return accepted
