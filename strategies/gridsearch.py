"""Grid search: every combination of the grid, in a fixed order, then ``NoMoreTrialError``.

Grid per type (NNI's GridSearch support: choice (nested too), randint, quniform):

* ``choice``: every option in the listed order; a nested option (a dict with ``_name``)
  expands into the grid of its own sub-space.
* ``randint [lower, upper]``: every integer in ``[lower, upper)``.
* ``quniform [low, high, q]``: ``clip(k * q, low, high)`` for every integer k from
  ``round(low / q)`` to ``round(high / q)``, duplicates removed: exactly the values
  ``clip(round(uniform(low, high) / q) * q, low, high)`` can take (NNI's own enumeration,
  e.g. ``[0, 10, 2.5]`` → 0, 2.5, 5, 7.5, 10 and ``[2, 10, 5]`` → 2, 5, 10).

* every other type (uniform, loguniform, qloguniform, normal, qnormal, lognormal,
  qlognormal), as NNI 3.0 does: the search runs in *epochs*.  Epoch 0 takes the middle of
  the distribution (the 1/2 point of its CDF, on the log scale for log types), epoch 1 adds the
  1/4 and 3/4 points, epoch 2 the odd eighths, and so on; a grid point already generated in an
  earlier epoch is not generated again.  q types stop dividing once neighbouring points round
  to the same value, so a finite space still ends with ``NoMoreTrialError``; a truly continuous
  one goes on until ``maxTrialNumber`` or ``maxExperimentDuration``.

Order: the cartesian product over the keys in the order the search space lists them, the
first key varying slowest.  The grid is enumerated lazily, so a huge grid costs nothing up
front.  A run-time search-space update restarts the enumeration from the beginning of the
new grid, skipping any parameter set already handed out (or imported) exactly as it is.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
from typing import Any, Iterator

from nniray.search_space import Param, SearchSpace, SearchSpaceError, check_supported, parse
from nniray.tuner import NoMoreTrialError, Tuner

logger = logging.getLogger(__name__)

GRID_TYPES = ("choice", "randint", "quniform")
# Divided progressively (NNI 3.0's "epochs"); see the module docstring.
EPOCH_TYPES = ("uniform", "loguniform", "qloguniform", "normal", "qnormal", "lognormal", "qlognormal")


def _cdf_inverse(p: Param, x: float) -> float:
    """The value at fraction ``x`` of ``p``'s distribution (NNI 3.0's ``_cdf_inverse``)."""
    from scipy.special import erfinv
    v = p.value
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        y = float(v[0]) + float(v[1]) * math.sqrt(2) * float(erfinv(2 * x - 1))
        if p.type in ("lognormal", "qlognormal"):
            y = math.exp(min(y, 709.0))
    elif p.type in ("loguniform", "qloguniform"):
        y = math.exp(math.log(v[0]) + (math.log(v[1]) - math.log(v[0])) * x)
    else:
        y = float(v[0]) + (float(v[1]) - float(v[0])) * x
    return _tidy(p.quantize(y))


def epoch_fractions(epoch: int) -> list[float]:
    """The CDF fractions of epochs 0..``epoch`` in NNI's order: 1/2, 1/4, 3/4, 1/8, 3/8, ..."""
    out = [0.5]
    for e in range(1, epoch + 1):
        n = 2 ** (e + 1)
        out.extend(k / n for k in range(1, n, 2))
    return out


def epoch_values(p: Param, epoch: int) -> list:
    """The distinct values of a continuous parameter's grid up to ``epoch``."""
    out: list = []
    for x in epoch_fractions(epoch):
        y = _cdf_inverse(p, x)
        if y not in out:
            out.append(y)
    return out


def _tidy(x: float) -> float:
    """k * q without binary noise (0.1 * 3 → 0.3, not 0.30000000000000004)."""
    return float("%.15g" % x)


def param_grid_values(p: Param, epoch: int = 0) -> list:
    """The grid of one non-choice parameter (in increasing order; continuous types: the
    points of epochs 0..``epoch`` in NNI's order)."""
    if p.type in EPOCH_TYPES:
        return epoch_values(p, epoch)
    if p.type == "randint":
        return list(range(int(p.value[0]), int(p.value[1])))
    if p.type == "quniform":
        low, high, q = (float(v) for v in p.value)
        out: list = []
        for k in range(int(round(low / q)), int(round(high / q)) + 1):
            x = min(max(_tidy(k * q), low), high)
            if not out or x != out[-1]:
                out.append(x)
        return out
    raise SearchSpaceError(f"GridSearch cannot enumerate _type {p.type!r} (key {p.key!r})")


def _param_options(p: Param, epoch: int = 0) -> list[dict]:
    """The partial flat assignments one parameter (with its nested sub-space) contributes."""
    if p.type != "choice":
        return [{p.key: v} for v in param_grid_values(p, epoch)]
    out = []
    for i in range(len(p.value)):
        child = p.children[i] if p.children else None
        if child is None:
            out.append({p.key: i})
        else:
            for sub in grid_iter(child, epoch):
                d = {p.key: i}
                d.update(sub)
                out.append(d)
    return out


def grid_iter(space: SearchSpace, epoch: int = 0) -> Iterator[dict]:
    """Lazily enumerate the grid as flat assignments (first key slowest)."""
    per_param = [_param_options(p, epoch) for p in space.params]
    for combo in itertools.product(*per_param):
        flat: dict = {}
        for part in combo:
            flat.update(part)
        yield flat


def grid_point(per_param: list[list[dict]], index: int) -> dict:
    """The ``index``-th grid point in :func:`grid_iter`'s order (mixed-radix decoding, last
    key fastest), so the tuner's position is a plain integer (picklable, checkpointable)."""
    parts = []
    for options in reversed(per_param):
        index, r = divmod(index, len(options))
        parts.append(options[r])
    flat: dict = {}
    for part in reversed(parts):
        flat.update(part)
    return flat


def grid_size(space: SearchSpace, epoch: int = 0) -> int:
    n = 1
    for p in space.params:
        n *= len(_param_options(p, epoch))
    return n


def _canonical(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class GridSearchTuner(Tuner):
    """Exhaustive grid search (NNI's ``GridSearch``; no classArgs besides ``optimize_mode``,
    accepted for compatibility, and ``seed``, accepted for uniformity: the order is fixed)."""

    algorithm_name = "GridSearch"

    def __init__(self, optimize_mode: str | None = None, seed: int | None = None) -> None:
        # NNI 3.0: GridSearchTuner(optimize_mode=None); the order of a grid does not depend on it.
        from ._core_base import check_optimize_mode, check_seed
        self.optimize_mode = check_optimize_mode(optimize_mode or "maximize")
        self.seed = check_seed(seed)
        self.space: SearchSpace | None = None
        self._per_param: list[list[dict]] | None = None
        self._next = 0  # index of the next grid point to consider
        self._done: set[str] = set()
        self.size = 0
        self.epoch = 0

    def update_search_space(self, search_space: dict) -> None:
        space = parse(search_space)
        check_supported(space, self.algorithm_name, GRID_TYPES + EPOCH_TYPES, nested=True)
        self.space = space
        self.epoch = 0
        self._continuous = any(p.type in EPOCH_TYPES for p in space.walk())
        self._per_param = [_param_options(p) for p in space.params]
        self.size = grid_size(space)
        self._next = 0
        logger.info("GridSearch: %d grid points", self.size)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self._per_param is None:
            raise RuntimeError("GridSearch: update_search_space() must be called before generate_parameters()")
        while True:
            while self._next < self.size:
                params = self.space.format(grid_point(self._per_param, self._next))
                self._next += 1
                key = _canonical(params)
                if key in self._done:
                    continue
                self._done.add(key)
                return params
            if not self._next_epoch():
                raise NoMoreTrialError("GridSearch: every grid point has been generated")

    def _next_epoch(self) -> bool:
        """Divide the continuous parameters once more; False when nothing new appears."""
        if not self._continuous:
            return False
        per_param = [_param_options(p, self.epoch + 1) for p in self.space.params]
        size = 1
        for options in per_param:
            size *= len(options)
        if size == self.size:
            # NNI 3.0's end: an epoch that adds no new value (the q types round every new
            # point onto an old one) means the space is fully explored.
            return False
        self.epoch += 1
        self._per_param, self.size, self._next = per_param, size, 0
        logger.info("GridSearch: epoch %d, %d grid points", self.epoch, size)
        return True

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        """The grid order does not depend on results."""

    def import_data(self, data: list[dict]) -> None:
        """Mark imported parameter sets as done so that a resumed experiment does not rerun them."""
        n = 0
        for entry in data or []:
            try:
                self._done.add(_canonical(entry["parameter"]))
                n += 1
            except (KeyError, TypeError) as e:
                logger.warning("GridSearch: import_data skips %r (%s)", entry, e)
        logger.info("GridSearch: imported %d trials", n)
