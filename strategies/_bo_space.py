"""Unit-cube view of a flat numeric search space, shared by the model-based tuners.

Every parameter is mapped to [0, 1] with :meth:`Param.to_unit` (log scale for log types,
index order for choice and randint).  Model-based tuners work on these unit vectors; this
module snaps a vector to a legal configuration (rounding integers, choices and q-types), so
the model only ever sees points that a trial can really run, and decodes it back to the
trial's parameter dict with :meth:`SearchSpace.format`.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from nniray.search_space import Param, SearchSpace, check_supported, parse

# A q-type or integer with more grid values than this is optimised as continuous and only
# snapped at the end: a discrete neighbour search over hundreds of values would be wasted work.
_MAX_DISCRETE_LEVELS = 64


class UnitSpace:
    """Encoder between a parsed flat search space and rows of a ``(n, d)`` unit matrix."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.params: list[Param] = list(space.params)
        self.keys = [p.key for p in self.params]
        self.dim = len(self.params)
        bounds = [p._internal_bounds() for p in self.params]
        self._lo = np.array([b[0] for b in bounds], dtype=float)
        self._hi = np.array([b[1] for b in bounds], dtype=float)
        self._is_log = np.array([p.is_log for p in self.params])
        self.n_levels = np.array([_levels(p) for p in self.params], dtype=float)
        # Dimensions searched by neighbour steps instead of gradients.
        self.discrete = np.array([0 < n <= _MAX_DISCRETE_LEVELS for n in self.n_levels], dtype=bool)

    # -- encoding ------------------------------------------------------------------------
    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """A trial's parameter dict → unit vector (through :meth:`SearchSpace.flatten`)."""
        flat = self.space.flatten(params)
        return np.array([p.to_unit(flat[p.key]) for p in self.params], dtype=float)

    def decode(self, u: np.ndarray) -> dict:
        """Unit vector → the parameter dict exactly as the trial gets it."""
        return self.space.format({p.key: p.from_unit(float(x)) for p, x in zip(self.params, u)})

    def snap(self, U: np.ndarray) -> np.ndarray:
        """Round every row to the unit vector of the legal value it decodes to (vectorised
        :meth:`Param.from_unit` followed by :meth:`Param.to_unit`)."""
        U = np.clip(np.asarray(U, dtype=float), 0.0, 1.0)
        out = U.copy()
        for j, p in enumerate(self.params):
            lo, hi = self._lo[j], self._hi[j]
            if hi == lo:
                out[..., j] = 0.5
                continue
            t = p.type
            if t in ("choice", "randint"):
                v = np.clip(np.round(lo + U[..., j] * (hi - lo)), lo, hi)
                out[..., j] = (v - lo) / (hi - lo)
            elif t in ("quniform", "qloguniform"):
                q = float(p.value[2])
                x = lo + U[..., j] * (hi - lo)
                if t == "qloguniform":
                    x = np.exp(x)
                x = np.clip(np.round(x / q) * q, float(p.value[0]), float(p.value[1]))
                xv = np.log(x) if t == "qloguniform" else x
                out[..., j] = (xv - lo) / (hi - lo)
        return out

    def neighbours(self, u: np.ndarray) -> np.ndarray:
        """Legal points one grid step away from ``u`` in one discrete dimension."""
        rows = []
        for j in np.flatnonzero(self.discrete):
            p = self.params[j]
            for step in (-1, 1):
                v = _step_value(p, p.from_unit(float(u[j])), step)
                if v is None:
                    continue
                w = u.copy()
                w[j] = p.to_unit(v)
                rows.append(w)
        return np.array(rows).reshape(-1, self.dim)


def _levels(p: Param) -> int:
    """How many distinct values ``p`` can take (0 for continuous)."""
    t, v = p.type, p.value
    if t == "choice":
        return len(v)
    if t == "randint":
        return int(v[1]) - int(v[0])
    if t == "quniform":
        return int(math.floor((float(v[1]) - float(v[0])) / float(v[2]))) + 2
    if t == "qloguniform":
        return int(math.floor((float(v[1]) - float(v[0])) / float(v[2]))) + 2
    return 0


def _step_value(p: Param, x: Any, step: int) -> Any:
    """The legal value one step from ``x`` (index for choice), or None past a bound."""
    t, v = p.type, p.value
    if t == "choice":
        y = int(x) + step
        return y if 0 <= y < len(v) else None
    if t == "randint":
        y = int(x) + step
        return y if int(v[0]) <= y < int(v[1]) else None
    q = float(v[2])
    y = p.quantize(float(x) + step * q)
    return None if y == float(x) else y


def parse_numeric(search_space: Any, algorithm: str, types: Sequence[str]) -> UnitSpace:
    """Parse and refuse what a numeric, non-nested model cannot handle (by algorithm and key)."""
    space = parse(search_space)
    check_supported(space, algorithm, types, nested=False, numeric_choice_only=True)
    return UnitSpace(space)
