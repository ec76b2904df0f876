"""Population Based Training (NNI's ``PBTTuner``).

A population of ``population_size`` members trains in synchronous steps.  Each trial is one
member running one step: its parameters carry the hyperparameters plus
``load_checkpoint_dir`` (where to load the model from) and ``save_checkpoint_dir`` (where to
save it), both ``<all_checkpoint_dir>/<member index>/<step>``.  Step 0 loads from and saves to
the same (not yet existing) directory, so the trial starts from scratch.

When every member has finished step ``i`` (a final result, or a failure which ranks last), the
population is ranked and step ``i+1`` is built:

- exploit: each of the bottom ``fraction`` members copies a random top-``fraction`` member:
  it loads that member's step-``i`` checkpoint and takes its hyperparameters;
- explore (NNI 3.0's rule): with probability ``resample_probability`` a copied hyperparameter
  is resampled from its prior; otherwise it moves up or down (at random) by ``factor`` times its
  range (uniform/loguniform, in log space for the latter), by one unit (randint, choice index,
  q types) or by ``factor`` sigmas (normal/lognormal), clipped to the type's domain.  With the
  older ``factors`` classArg (NNI 2.x docs: ``(1.2, 0.8)``), numbers are multiplied by a
  random factor instead and choices resampled.  Every value stays inside its type's domain;
- every other member keeps its hyperparameters and continues from its own checkpoint.

While a step is still running the tuner has nothing to give: ``generate_parameters`` raises
``NoMoreTrialError`` and ``generate_multiple_parameters`` returns an empty list.  That is a
"not now", not "done": the runtime must ask again when a trial ends (``waiting_for_step`` tells
the two apart); PBT never ends the experiment by itself.
"""
from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nniray.search_space import Param, SearchSpace, SearchSpaceError, check_supported, parse
from nniray.tuner import NoMoreTrialError, Tuner
from nniray.utils import MetricError, OptimizeMode, extract_scalar_reward, parse_optimize_mode

_logger = logging.getLogger(__name__)

LOAD_KEY = "load_checkpoint_dir"
SAVE_KEY = "save_checkpoint_dir"


def default_checkpoint_dir() -> str:
    """``<NNI_LOG_DIRECTORY or ~/nniray>/checkpoint`` (NNI: ``~/nni/checkpoint``)."""
    base = os.environ.get("NNI_LOG_DIRECTORY") or os.path.join(os.path.expanduser("~"), "nniray")
    return os.path.join(base, "checkpoint")


@dataclass
class Member:
    index: int
    hyper_parameters: dict       # search-space values only
    load_dir: str
    save_dir: str
    parameter_id: Any = None     # the trial running this member's current step
    score: float | None = None
    done: bool = False

    def trial_parameters(self) -> dict:
        params = copy.deepcopy(self.hyper_parameters)
        params[LOAD_KEY] = self.load_dir
        params[SAVE_KEY] = self.save_dir
        return params


class PBTTuner(Tuner):
    """Population Based Training tuner.

    Parameters
    ----------
    optimize_mode : 'maximize' (default) or 'minimize'
        NNI's usage doc lists it as required; its code defaults to 'maximize', as here.
    all_checkpoint_dir : str, optional
        Directory shared by all trials (shared storage when trials run on several machines).
        Default ``<NNI_LOG_DIRECTORY or ~/nniray>/checkpoint``.  Trials create the directories
        they save to.
    population_size : int, default 10
        Members of the population: trials per step.
    factor : float, default 0.2
        NNI 3.0's perturbation size (a fraction of the range, or of sigma).
    resample_probability : float, default 0.25
        NNI 3.0's probability of resampling a hyperparameter instead of perturbing it.
    fraction : float, default 0.2
        Fraction of the population that is "top" (copied) and "bottom" (replaced); (0, 0.5].
    factors : tuple of float, optional
        NNI 2.x docs' multiplicative factors (e.g. ``(1.2, 0.8)``); when given, they replace
        ``factor``/``resample_probability``.
    seed : int, optional
        Seed of the initial sampling and of exploit/explore (nniray addition).

    Search space: every type except nested choice.
    """

    def __init__(self, optimize_mode: str = "maximize", all_checkpoint_dir: str | None = None,
                 population_size: int = 10, factor: float = 0.2, resample_probability: float = 0.25,
                 fraction: float = 0.2, factors: Any = None, seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        if all_checkpoint_dir is None:
            all_checkpoint_dir = default_checkpoint_dir()
        if not isinstance(all_checkpoint_dir, (str, os.PathLike)) or not str(all_checkpoint_dir):
            raise ValueError(f"all_checkpoint_dir must be a directory path, got {all_checkpoint_dir!r}")
        self.all_checkpoint_dir = os.path.abspath(os.path.expanduser(str(all_checkpoint_dir)))
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 1:
            raise ValueError(f"population_size must be a positive integer, got {population_size!r}")
        self.population_size = population_size
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number such as 0.2, got {factor!r}")
        self.factor = float(factor)
        if (isinstance(resample_probability, bool) or not isinstance(resample_probability, (int, float))
                or not 0 <= resample_probability <= 1):
            raise ValueError(f"resample_probability must be a number in [0, 1], got {resample_probability!r}")
        self.resample_probability = float(resample_probability)
        if factors is not None:
            if isinstance(factors, (int, float)) and not isinstance(factors, bool):
                factors = (factors,)
            try:
                factors = tuple(float(f) for f in factors)
            except (TypeError, ValueError):
                raise ValueError(f"factors must be a list of positive numbers such as [1.2, 0.8], got {factors!r}") from None
            if not factors or not all(math.isfinite(f) and f > 0 for f in factors):
                raise ValueError(f"factors must be a list of positive numbers such as [1.2, 0.8], got {factors!r}")
        self.factors = factors
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
            raise ValueError(f"fraction must be in (0, 0.5] (the top and bottom fractions must not overlap), "
                             f"got {fraction!r}")
        self.fraction = float(fraction)
        self._rng = np.random.default_rng(seed)
        self.space: SearchSpace | None = None
        self.population: list[Member] = []
        self.step = 0
        self._running: dict[Any, Member] = {}

    # -- Tuner API ----------------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        space = parse(search_space)
        check_supported(space, "PBTTuner", None, nested=False)
        for key in (LOAD_KEY, SAVE_KEY):
            if any(p.name == key for p in space.params):
                raise SearchSpaceError(f"search space key {key!r} is reserved: PBTTuner adds it to every trial's "
                                       f"parameters; rename that hyperparameter")
        first = self.space is None
        self.space = space
        if first:  # NNI builds the population here; a later update only affects new samples
            self.population = [self._new_member(i, space.sample(self._rng)) for i in range(self.population_size)]

    def _new_member(self, index: int, hyper_parameters: dict) -> Member:
        d = self._dir(index, self.step)
        return Member(index, hyper_parameters, load_dir=d, save_dir=d)

    def _dir(self, index: int, step: int) -> str:
        return os.path.join(self.all_checkpoint_dir, str(index), str(step))

    @property
    def waiting_for_step(self) -> bool:
        """True while every member of the current step has been handed out and the step is
        still running: an empty answer then means "ask again later", not "done"."""
        return bool(self.population) and all(m.parameter_id is not None for m in self.population)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("PBTTuner.generate_parameters called before update_search_space")
        for member in self.population:
            if member.parameter_id is None:
                member.parameter_id = parameter_id
                self._running[parameter_id] = member
                return member.trial_parameters()
        raise NoMoreTrialError(f"PBT step {self.step} is running ({self._unfinished()} of {self.population_size} "
                               f"members unfinished); the next step starts when they end")

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        member = self._running.get(parameter_id)
        if member is None:
            return  # a customized trial, or a repeated report
        member.score = extract_scalar_reward(value)
        self._finish(member)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        member = self._running.get(parameter_id)
        if member is None:
            return
        self._finish(member)  # without a final result its score stays None: it ranks last

    def import_data(self, data: list[dict]) -> int | None:
        """Resume: rebuild the population from the last step that every member finished, as
        NNI 3.0's ``PBTTuner.import_data`` does.

        Records are ``{"parameter": trial parameters, "value": final result}``; the member and
        step come from ``save_checkpoint_dir`` (``.../<member>/<step>``).  As in NNI: a record
        without ``save_checkpoint_dir`` abandons the whole import, a record without a value
        ranks last, and the import is abandoned when a checkpoint directory of the resumed step
        does not exist.  Returns the step the population continues from (None: not imported).
        """
        if self._running:
            _logger.warning("PBTTuner: import_data during a running step is not supported; ignored")
            return None
        by_step: dict[int, dict[int, tuple[dict, float | None]]] = {}
        for n, record in enumerate(data):
            params = record.get("parameter") if isinstance(record, dict) else None
            if not isinstance(params, dict) or SAVE_KEY not in params:
                _logger.warning("PBTTuner: import record %d has no parameter.%s; data import abandoned", n, SAVE_KEY)
                return None
            save = os.path.normpath(str(params[SAVE_KEY]))
            try:
                step, index = int(os.path.basename(save)), int(os.path.basename(os.path.dirname(save)))
            except ValueError:
                _logger.warning("PBTTuner: import record %d: %s is not .../<member>/<step>; skipped", n, save)
                continue
            try:
                score = extract_scalar_reward(record.get("value"))
            except MetricError:
                score = None
            by_step.setdefault(step, {})[index] = (params, score)
        complete = [s for s, members in by_step.items()
                    if set(members) >= set(range(self.population_size))]
        if not complete:
            _logger.warning("PBTTuner: no step finished by all %d members in the imported data; starting fresh",
                            self.population_size)
            return None
        step = max(complete)
        for i in range(self.population_size):
            save = str(by_step[step][i][0][SAVE_KEY])
            if not os.path.isdir(save):
                _logger.warning("PBTTuner: save_checkpoint_dir %s does not exist; data will not be resumed", save)
                return None
        self.step = step
        self.population = []
        for i in range(self.population_size):
            params, score = by_step[step][i]
            hyper = {k: v for k, v in params.items() if k not in (LOAD_KEY, SAVE_KEY)}
            self.population.append(Member(i, hyper, str(params.get(LOAD_KEY, "")), str(params[SAVE_KEY]),
                                          parameter_id=("imported", i), score=score, done=True))
        self._next_step()
        return self.step

    # -- steps -------------------------------------------------------------------------------------
    def _unfinished(self) -> int:
        return sum(not m.done for m in self.population)

    def _finish(self, member: Member) -> None:
        if member.done:
            return
        member.done = True
        self._running.pop(member.parameter_id, None)
        if all(m.done for m in self.population):
            self._next_step()

    def ranked(self) -> list[Member]:
        """Members best first; members without a score last; ties keep member order."""
        sign = -1.0 if self.optimize_mode is OptimizeMode.Maximize else 1.0
        return sorted(self.population, key=lambda m: (m.score is None, sign * (m.score or 0.0)))

    def _next_step(self) -> None:
        """Exploit and explore, then hand out step ``step + 1``."""
        ranked = self.ranked()
        cutoff = int(math.ceil(self.fraction * len(ranked) - 1e-9))
        tops = ranked[:cutoff]
        bottoms = {m.index for m in ranked[len(ranked) - cutoff:]} if cutoff else set()
        self.step += 1
        new_population = []
        for member in sorted(self.population, key=lambda m: m.index):
            if member.index in bottoms:
                top = tops[int(self._rng.integers(len(tops)))]
                hyper = self.explore(top.hyper_parameters)
                load = top.save_dir
                _logger.info("PBT step %d: member %d copies member %d", self.step, member.index, top.index)
            else:
                hyper, load = member.hyper_parameters, member.save_dir
            new_population.append(Member(member.index, hyper, load, self._dir(member.index, self.step)))
        self.population = new_population

    def explore(self, hyper_parameters: dict) -> dict:
        """Perturbed copy: numbers times a random factor (clipped to the space), choices resampled."""
        out = copy.deepcopy(hyper_parameters)
        for p in self.space.params:
            if p.name in out:
                out[p.name] = self._perturb(p, out[p.name])
        return out

    def _perturb(self, p: Param, value: Any) -> Any:
        if self.factors is None:
            return self._perturb_nni(p, value)
        if p.type == "choice":
            return p.value[int(self._rng.integers(len(p.value)))]
        factor = self.factors[int(self._rng.integers(len(self.factors)))]
        x = float(value) * factor
        # Rounding can undo a small factor (3 * 1.2 -> 3): then move one unit in its direction.
        unit = 1.0 if p.type == "randint" else p.q
        if unit and factor != 1.0 and round(x / unit) == round(float(value) / unit):
            x = float(value) + math.copysign(unit, factor - 1.0) * (1 if value >= 0 else -1)
        return to_domain(p, x)

    def _perturb_nni(self, p: Param, value: Any) -> Any:
        """NNI 3.0's ``perturbation``: resample, else one step up or down, clipped to the domain."""
        rng = self._rng
        if rng.random() < self.resample_probability:
            drawn = p.sample(rng)
            return p.value[drawn] if p.type == "choice" else to_domain(p, drawn)
        up = rng.random() > 0.5
        sign = 1.0 if up else -1.0
        t, v = p.type, p.value
        if t == "choice":
            idx = _choice_position(p, value)
            return p.value[min(max(idx + int(sign), 0), len(p.value) - 1)]
        x = float(value)
        if t == "randint":
            x += sign
        elif t == "uniform":
            x += sign * (float(v[1]) - float(v[0])) * self.factor
        elif t == "loguniform":
            x = math.exp(math.log(max(x, float(v[0]))) + sign * (math.log(v[1]) - math.log(v[0])) * self.factor)
        elif t in ("quniform", "qloguniform"):
            x = (round(x / float(v[2])) + sign) * float(v[2])
        elif t == "normal":
            x += sign * float(v[1]) * self.factor
        elif t == "lognormal":
            x = math.exp(math.log(max(x, 1e-300)) + sign * float(v[1]) * self.factor)
        else:  # qnormal, qlognormal: one q up or down
            x += sign * float(v[2])
        return to_domain(p, x)


def _choice_position(p: Param, value: Any) -> int:
    for i, opt in enumerate(p.value):
        if opt == value:
            return i
    return 0


def to_domain(p: Param, x: float) -> Any:
    """The nearest legal value of ``p``'s type: randint an int in [lower, upper), bounded types
    clipped to [low, high], log-normal types non-negative, q types on the q grid."""
    if p.type == "randint":
        lo, hi = int(p.value[0]), int(p.value[1]) - 1
        return int(min(max(round(x), lo), hi))
    if p.type in ("lognormal", "qlognormal"):
        x = max(x, 0.0)  # exp(...) is never negative; a step below 0 stops at 0
    x = p.quantize(x)  # rounds to q and clips the bounded types to [low, high]
    if p.type == "qlognormal" and x < 0:
        x = 0.0
    return x
