"""Shared plumbing of the core tuners (Random, TPE, Anneal, Evolution): classArgs checks,
search-space parsing, the observation history, ``import_data`` and seeded randomness.

Two choices made here shape every core tuner:

* **Randomness is derived per parameter id.**  ``rng_for(parameter_id)`` is a fresh
  ``numpy.random.Generator`` seeded from ``(seed, parameter_id)``.  A suggestion is therefore
  a pure function of the seed, the parameter id and the observations, so a tuner rebuilt by
  ``import_data`` (resume) continues exactly where the original would have, instead of
  replaying the random stream from the start and repeating its first points.
* **Observations are kept in the flat internal encoding** of :meth:`SearchSpace.flatten`
  (``{flat key: value}``, choices as option index, nested parameters under
  ``outer/option/name``), together with the *loss*: the reward, negated when maximizing,
  so every model minimizes.  ``receive_trial_result`` and ``import_data`` both go through
  :meth:`CoreTuner._observe`, which is what makes the two equivalent.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from nniray.search_space import SearchSpace, SearchSpaceError, check_supported, parse
from nniray.tuner import Tuner
from nniray.utils import MetricError, OptimizeMode, extract_scalar_reward, parse_optimize_mode

logger = logging.getLogger(__name__)


def check_seed(seed: Any) -> int:
    """A user seed, or a fresh random one when None; anything else names the argument."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def check_optimize_mode(mode: Any) -> OptimizeMode:
    # NNI's usage doc says 'maximize' (spec C2); parse_optimize_mode names the argument.
    return parse_optimize_mode(mode, default="maximize")


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {lo}{low}, {high}], got {value!r}")
    return float(value)


def id_seed(parameter_id: Any) -> int:
    """A stable non-negative integer for a parameter id (ints as is, anything else hashed)."""
    if isinstance(parameter_id, (int, np.integer)) and not isinstance(parameter_id, bool) and parameter_id >= 0:
        return int(parameter_id)
    import zlib
    return zlib.crc32(repr(parameter_id).encode()) + 2**40


@dataclass
class Observation:
    """One finished trial: its flat internal assignment and the loss (lower is better)."""

    flat: dict
    loss: float
    reward: float


class CoreTuner(Tuner):
    """Base of the core tuners.  Subclasses set ``algorithm_name`` and ``supported_types`` and
    implement ``_suggest(parameter_id, rng) -> flat assignment``."""

    algorithm_name = "?"
    supported_types: Iterable[str] | None = None  # None = every type
    supports_nested = True

    def __init__(self, optimize_mode: Any = "maximize", seed: int | None = None) -> None:
        self.optimize_mode = check_optimize_mode(optimize_mode)
        self.seed = check_seed(seed)
        self.space: SearchSpace | None = None
        self.observations: list[Observation] = []
        # flat assignments handed out, by parameter id (for results reported with parameters=None
        # and for Constant Liar / Evolution bookkeeping)
        self.suggested: dict[Any, dict] = {}

    # -- helpers -----------------------------------------------------------------------------
    def rng_for(self, parameter_id: Any, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, id_seed(parameter_id), stream])

    def loss_of(self, reward: float) -> float:
        return -reward if self.optimize_mode is OptimizeMode.Maximize else reward

    def _require_space(self) -> SearchSpace:
        if self.space is None:
            raise RuntimeError(f"{self.algorithm_name}: update_search_space() must be called before "
                               f"generate_parameters()")
        return self.space

    # -- Constant Liar (NNI's parallel_optimize for TPE, Random and Anneal) -----------------
    def _init_liar(self, parallel_optimize: Any, constant_liar_type: Any) -> None:
        if not isinstance(parallel_optimize, bool):
            raise ValueError(f"parallel_optimize must be true or false, got {parallel_optimize!r}")
        if constant_liar_type not in ("min", "max", "mean"):
            raise ValueError(f"constant_liar_type must be 'min', 'max' or 'mean', got {constant_liar_type!r}")
        self.parallel_optimize = parallel_optimize
        self.constant_liar_type = constant_liar_type

    def liar_loss(self) -> float | None:
        """The Constant Liar value as a loss (min/max/mean of the *reported* values, as NNI),
        or None before any result."""
        if not self.observations:
            return None
        rewards = [ob.reward for ob in self.observations]
        lie = {"min": min, "max": max, "mean": lambda r: sum(r) / len(r)}[self.constant_liar_type](rewards)
        return self.loss_of(lie)

    def pending_lies(self, exclude: Any = None) -> list[Observation]:
        """Pending (suggested, unreported) points as observations with the liar loss; empty
        unless ``parallel_optimize``."""
        if not getattr(self, "parallel_optimize", False) or not self.suggested or not self.observations:
            return []
        loss = self.liar_loss()
        return [Observation(f, loss, math.nan) for pid, f in self.suggested.items() if pid != exclude]

    # -- Tuner API -----------------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        space = parse(search_space)
        check_supported(space, self.algorithm_name, self.supported_types, nested=self.supports_nested)
        old = self.space
        self.space = space
        if old is not None:
            self._refit_history(old)
        self._on_space_changed()

    def _refit_history(self, old: SearchSpace) -> None:
        """Keep the observations that still fit the new space (re-encoded through it)."""
        kept = []
        for ob in self.observations:
            try:
                params = old.format(ob.flat)
                flat = self.space.flatten(params)
            except (SearchSpaceError, KeyError, IndexError, TypeError, ValueError):
                continue
            if self._fits(flat):
                kept.append(Observation(flat, ob.loss, ob.reward))
        if len(kept) != len(self.observations):
            logger.info("%s: search space changed; kept %d of %d observations", self.algorithm_name,
                        len(kept), len(self.observations))
        self.observations = kept
        self.suggested = {}

    def _on_space_changed(self) -> None:
        """Hook for subclasses (reset derived state)."""

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        space = self._require_space()
        flat = self._suggest(parameter_id, self.rng_for(parameter_id))
        self.suggested[parameter_id] = flat
        return space.format(flat)

    def _suggest(self, parameter_id: Any, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        reward = extract_scalar_reward(value)
        space = self._require_space()
        flat = self.suggested.pop(parameter_id, None)
        if flat is None or parameters is not None:
            try:
                flat = space.flatten(parameters)
            except (SearchSpaceError, TypeError, AttributeError):
                flat = None
        if flat is None or not self._fits(flat):
            # e.g. a trial started before a search-space update: not a reason to stop tuning
            logger.warning("%s: result of parameter id %r ignored: parameters %r do not fit the current "
                           "search space", self.algorithm_name, parameter_id, parameters)
            self.trial_end(parameter_id, False)
            return
        self._observe(parameter_id, flat, reward)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        self.suggested.pop(parameter_id, None)

    def import_data(self, data: list[dict]) -> None:
        """Feed finished trials (``[{"parameter": {...}, "value": ...}, ...]``) as if each had been
        received by ``receive_trial_result``; entries that do not fit the space are skipped."""
        space = self._require_space()
        n_ok = 0
        for i, entry in enumerate(data or []):
            try:
                params, value = entry["parameter"], entry["value"]
                reward = extract_scalar_reward(value)
                flat = space.flatten(params)
                if not self._fits(flat):
                    raise SearchSpaceError("value out of range")
            except (KeyError, TypeError, SearchSpaceError, MetricError) as e:
                logger.warning("%s: import_data skips entry %d (%s): %r", self.algorithm_name, i, e, entry)
                continue
            self._observe(None, flat, reward)
            n_ok += 1
        logger.info("%s: imported %d of %d trials", self.algorithm_name, n_ok, len(data or []))

    def _observe(self, parameter_id: Any, flat: dict, reward: float) -> None:
        self.observations.append(Observation(flat, self.loss_of(reward), reward))

    # -- range check ----------------------------------------------------------------------------
    def _fits(self, flat: dict) -> bool:
        """Whether every active value lies in its parameter's range (imported data may not)."""
        space = self.space
        for p in space.walk():
            if p.key not in flat:
                continue
            x = flat[p.key]
            if p.type == "choice":
                if not 0 <= int(x) < len(p.value):
                    return False
            elif p.type in ("randint", "uniform", "quniform", "loguniform", "qloguniform"):
                lo, hi = float(p.value[0]), float(p.value[1])
                if p.type == "randint":
                    if not (lo <= x < hi) or int(x) != x:
                        return False
                elif not lo <= x <= hi:
                    return False
            elif p.type in ("lognormal", "qlognormal") and x < 0:
                return False
            if isinstance(x, float) and not math.isfinite(x):
                return False
        return True


def active_keys(space: SearchSpace, flat: dict) -> list:
    """The parameters active under ``flat`` (top level plus the chosen branches), parents first."""
    out = []
    stack = list(reversed(space.params))
    while stack:
        p = stack.pop()
        out.append(p)
        if p.children:
            child = p.children[int(flat[p.key])]
            if child is not None:
                stack.extend(reversed(child.params))
    return out


def sample_flat(space: SearchSpace, rng: np.random.Generator, params=None) -> dict:
    """A prior sample as a flat assignment of the *active* parameters only."""
    out: dict = {}
    _sample_into(space.params if params is None else params, rng, out)
    return out


def _sample_into(params, rng: np.random.Generator, out: dict) -> None:
    for p in params:
        x = p.sample(rng)
        out[p.key] = x
        if p.children:
            child = p.children[x]
            if child is not None:
                _sample_into(child.params, rng, out)
