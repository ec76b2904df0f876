"""Hyperband advisor (NNI's ``Hyperband``): successive halving over brackets of random configs.

An advisor (``MsgDispatcherBase``) rather than a tuner, because it both proposes configurations
and decides which of them continue.  With ``s_max = floor(log_eta(R))``, bracket ``s``
(``s = s_max … 0``) starts ``n = ceil((s_max+1)/(s+1) * eta^s)`` random configurations with budget
``r = R * eta^-s``; after round ``i`` finishes, the best ``floor(n / eta^(i+1))`` run again with
budget ``floor(r * eta^(i+1))``.  Every trial receives its round's budget as the extra key
``TRIAL_BUDGET`` and must use it to decide how long to run (epochs, mini-batches, ...).

Parameter ids are strings ``"<s>_<i>_<k>"`` (bracket, round, config number), as in NNI, so each
result routes back to its bracket and round.  A config keeps its number ``k`` when promoted.

One execution of Hyperband runs the ``s_max + 1`` brackets once (the budget ``(s_max+1)B`` of the
API doc); when every bracket is finished the advisor answers requests with ``NoMoreTrialJobs``.
While it waits for a round to finish it sends nothing: the runtime asks again when a trial ends.

Multi-phase trials are served as in NNI: a ``REQUEST_PARAMETER`` metric ends the trial's current
configuration and the next one is sent with ``SendTrialJobParameter`` (at once, or as soon as one
is available; such requests are served before new trials).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import nniray
from nniray.runtime.msg_dispatcher_base import CommandType, MetricType, MsgDispatcherBase
from nniray.search_space import SearchSpace, SearchSpaceError, parse
from nniray.utils import OptimizeMode, extract_scalar_reward, parse_optimize_mode

_logger = logging.getLogger(__name__)

TRIAL_BUDGET = "TRIAL_BUDGET"
# Guards floor/ceil against float error (log(81, 3) = 3.9999999999999996).
_EPS = 1e-6


# ------------------------------------------------------------------------------------------
# Bracket arithmetic (shared with BOHB)
# ------------------------------------------------------------------------------------------

def compute_s_max(ratio: float, eta: int) -> int:
    """``floor(log_eta(ratio))``: the largest bracket index (``ratio`` = R, or max/min budget)."""
    return int(math.floor(math.log(ratio) / math.log(eta) + _EPS))


def bracket_n_r(s: int, s_max: int, eta: int, max_budget: float) -> tuple[int, float]:
    """Configs and (unrounded) budget of round 0 of bracket ``s``."""
    n = int(math.ceil((s_max + 1) * eta ** s / (s + 1) - _EPS))
    return n, max_budget / eta ** s


def round_n_r(n: int, r: float, eta: int, i: int) -> tuple[int, int]:
    """Configs and integer budget of round ``i`` (NNI floors both)."""
    return int(math.floor(n / eta ** i + _EPS)), int(math.floor(r * eta ** i + _EPS))


def bracket_table(max_budget: float, eta: int, min_budget: float = 1) -> dict[int, list[tuple[int, int]]]:
    """``{s: [(n_i, r_i) for each round i]}`` for brackets ``s_max … 0``."""
    s_max = compute_s_max(max_budget / min_budget, eta)
    table = {}
    for s in range(s_max, -1, -1):
        n, r = bracket_n_r(s, s_max, eta, max_budget)
        table[s] = [round_n_r(n, r, eta, i) for i in range(s + 1)]
    return table


def make_parameter_id(s: int, i: int, k: int) -> str:
    return f"{s}_{i}_{k}"


def split_parameter_id(parameter_id: Any) -> tuple[int, int, int] | None:
    """``"s_i_k"`` → ``(s, i, k)``; None for ids this advisor did not create."""
    parts = str(parameter_id).split("_")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return None


@dataclass
class _Round:
    configs: dict[str, dict]                     # parameter id -> parameters (with TRIAL_BUDGET)
    perf: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (sequence, value)
    ended: set = field(default_factory=set)


class Bracket:
    """One successive-halving run: its rounds, the results, and promotion.

    ``perf`` keeps the latest metric of each config: a FINAL result beats every intermediate
    one (sequence = +inf), as in NNI.  A config that ended without any metric ranks last.
    """

    def __init__(self, s: int, s_max: int, eta: int, max_budget: float, optimize_mode: OptimizeMode):
        self.s, self.s_max, self.eta = s, s_max, eta
        self.n, self.r = bracket_n_r(s, s_max, eta, max_budget)
        self.optimize_mode = optimize_mode
        self.rounds: list[_Round] = []

    # -- shape -------------------------------------------------------------------------------
    def n_r(self, i: int) -> tuple[int, int]:
        return round_n_r(self.n, self.r, self.eta, i)

    @property
    def all_rounds_created(self) -> bool:
        return len(self.rounds) > self.s

    @property
    def finished(self) -> bool:
        """Every round created and every trial of the last round ended."""
        return self.all_rounds_created and len(self.rounds[-1].ended) >= len(self.rounds[-1].configs)

    # -- rounds ------------------------------------------------------------------------------
    def start(self, make_config: Callable[[], dict], next_k: Callable[[], int]) -> list[tuple[str, dict]]:
        """Create round 0 with ``n`` fresh configurations."""
        assert not self.rounds
        n0, r0 = self.n_r(0)
        configs = {}
        for _ in range(n0):
            params = dict(make_config())
            params[TRIAL_BUDGET] = r0
            configs[make_parameter_id(self.s, 0, next_k())] = params
        self.rounds.append(_Round(configs))
        return list(configs.items())

    def report(self, i: int, parameter_id: str, sequence: float, value: float) -> None:
        if i >= len(self.rounds) or parameter_id not in self.rounds[i].configs:
            return
        perf = self.rounds[i].perf
        if parameter_id not in perf or perf[parameter_id][0] < sequence:
            perf[parameter_id] = (sequence, value)

    def trial_end(self, i: int, parameter_id: str) -> list[tuple[str, dict]]:
        """Record the end of a trial; when it completes round ``i`` return the promoted configs."""
        if i >= len(self.rounds) or parameter_id not in self.rounds[i].configs:
            return []
        rnd = self.rounds[i]
        rnd.ended.add(parameter_id)
        if len(rnd.ended) < len(rnd.configs) or i != len(self.rounds) - 1 or self.all_rounds_created:
            return []
        return self._promote(i)

    def ranked(self, i: int) -> list[str]:
        """Ids of round ``i``, best first; ties keep creation order (stable sort)."""
        rnd = self.rounds[i]
        worst = -math.inf if self.optimize_mode is OptimizeMode.Maximize else math.inf
        sign = -1.0 if self.optimize_mode is OptimizeMode.Maximize else 1.0
        return sorted(rnd.configs, key=lambda pid: sign * rnd.perf.get(pid, (0, worst))[1])

    def _promote(self, i: int) -> list[tuple[str, dict]]:
        next_n, next_r = self.n_r(i + 1)
        configs = {}
        for pid in self.ranked(i)[:next_n]:
            params = dict(self.rounds[i].configs[pid])
            params[TRIAL_BUDGET] = next_r
            _, _, k = split_parameter_id(pid)
            configs[make_parameter_id(self.s, i + 1, k)] = params
        self.rounds.append(_Round(configs))
        return list(configs.items())


# ------------------------------------------------------------------------------------------
# Shared checks
# ------------------------------------------------------------------------------------------

def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer (``27`` or ``27.0``) ≥ ``minimum``, else an error naming the classArg."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value)) and float(value) == int(value) and int(value) >= minimum
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def decode_value(value: Any) -> Any:
    """Metric values arrive as JSON text (the advisor protocol); accept decoded ones too."""
    if isinstance(value, (str, bytes)):
        return nniray.load(value)
    return value


# ------------------------------------------------------------------------------------------
# The advisor
# ------------------------------------------------------------------------------------------

class SuccessiveHalvingAdvisor(MsgDispatcherBase):
    """The advisor protocol around a set of brackets; subclasses decide when a bracket opens
    and where its configurations come from (random for Hyperband, a KDE model for BOHB)."""

    advisor_name = "Hyperband"

    def __init__(self, optimize_mode: Any, eta: Any, max_budget: int, s_max: int, seed: int | None) -> None:
        super().__init__()
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        self.eta = positive_int("eta", eta, minimum=2)
        self.max_budget = max_budget
        self.s_max = s_max
        self._rng = np.random.default_rng(seed)
        self.space: SearchSpace | None = None
        self.brackets: list[Bracket] = []
        self._owner: dict[str, tuple[Bracket, int]] = {}  # parameter id -> (bracket, round)
        self._pending: list[tuple[str, dict]] = []  # configs ready to run, oldest first
        self._k = 0
        # Multi-phase trials: the configuration each trial job runs now, and the requests for a
        # next configuration that had to wait for one.
        self._job_pid: dict[Any, str] = {}
        self._unsatisfied: list[dict] = []

    # -- protocol ---------------------------------------------------------------------------
    def handle_initialize(self, data: Any) -> None:
        self.handle_update_search_space(data)
        self.send(CommandType.Initialized, "")

    def handle_update_search_space(self, data: Any) -> None:
        self.space = self._check_space(parse(data))

    def _check_space(self, space: SearchSpace) -> SearchSpace:
        if any(p.name == TRIAL_BUDGET for p in space.params):
            raise SearchSpaceError(f"search space key {TRIAL_BUDGET!r} is reserved: {self.advisor_name} adds it to "
                                   f"every trial's parameters; rename that hyperparameter")
        return space

    def handle_request_trial_jobs(self, data: int) -> None:
        self._serve_unsatisfied()
        sent = 0
        for _ in range(int(data)):
            job = self._next_job()
            if job is None:
                break
            pid, params = job
            self.send(CommandType.NewTrialJob, nniray.dump(
                {"parameter_id": pid, "parameter_source": "algorithm", "parameters": params}))
            sent += 1
        if sent == 0 and self.is_done():
            self.send(CommandType.NoMoreTrialJobs, nniray.dump(
                {"parameter_id": None, "parameter_source": "algorithm", "parameters": ""}))

    def handle_report_metric_data(self, data: dict) -> None:
        mtype = data.get("type")
        if mtype == MetricType.REQUEST_PARAMETER:
            self._handle_request_parameter(data)
            return
        if mtype not in (MetricType.FINAL, MetricType.PERIODICAL):
            raise ValueError(f"metric type must be FINAL, PERIODICAL or REQUEST_PARAMETER, got {mtype!r}")
        pid = str(data.get("parameter_id"))
        if pid not in self._owner:
            return  # a customized trial or one from another experiment: not ours to rank
        if data.get("trial_job_id") is not None:
            self._job_pid[data["trial_job_id"]] = pid
        bracket, i = self._owner[pid]
        value = extract_scalar_reward(decode_value(data["value"]))
        # FINAL and PERIODICAL sequences are independent: a final result always wins.
        seq = math.inf if mtype == MetricType.FINAL else float(data.get("sequence") or 0)
        bracket.report(i, pid, seq, value)
        self._on_metric(bracket, i, pid, mtype, value)

    def handle_trial_end(self, data: dict) -> None:
        hyper = data.get("hyper_params")
        pid = decode_value(hyper).get("parameter_id") if hyper is not None else data.get("parameter_id")
        # A multi-phase trial ends the configuration it runs now, not the one it started with.
        pid = self._job_pid.pop(data.get("trial_job_id"), str(pid))
        self._unsatisfied = [u for u in self._unsatisfied if u["trial_job_id"] != data.get("trial_job_id")]
        self._end_config(pid, data.get("event"))
        self._serve_unsatisfied()

    def _end_config(self, pid: str, event: Any) -> None:
        if pid not in self._owner:
            return
        bracket, i = self._owner[pid]
        if pid in bracket.rounds[i].ended:
            return  # a repeated end event must not count twice
        self._on_trial_end(bracket, i, pid, event)
        self._add_pending(bracket, i + 1, bracket.trial_end(i, pid))

    def _handle_request_parameter(self, data: dict) -> None:
        """Multi-phase: the trial finished its configuration and asks for the next one."""
        job_id = data.get("trial_job_id")
        if job_id is None:
            raise ValueError("a REQUEST_PARAMETER metric needs the trial_job_id of the asking trial")
        current = self._job_pid.pop(job_id, None) or (str(data["parameter_id"]) if data.get("parameter_id") is not None
                                                      else None)
        if current is not None:
            self._end_config(current, "REQUEST_PARAMETER")
        self._unsatisfied.append({"trial_job_id": job_id, "parameter_index": data.get("parameter_index")})
        self._serve_unsatisfied()

    def _serve_unsatisfied(self) -> None:
        """Give waiting multi-phase trials their next configuration before any new trial."""
        while self._unsatisfied:
            job = self._next_job()
            if job is None:
                return
            request = self._unsatisfied.pop(0)
            pid, params = job
            self._job_pid[request["trial_job_id"]] = pid
            self.send(CommandType.SendTrialJobParameter, nniray.dump(
                {"parameter_id": pid, "parameter_source": "algorithm", "parameters": params,
                 "trial_job_id": request["trial_job_id"], "parameter_index": request["parameter_index"]}))

    def handle_import_data(self, data: list) -> None:
        """As NNI: Hyperband does not rebuild bracket state from imported trials."""

    def handle_add_customized_trial(self, data: Any) -> None:
        """Customized trials are not part of any bracket; their results are ignored."""

    # -- state --------------------------------------------------------------------------------
    def is_done(self) -> bool:
        raise NotImplementedError

    def _may_open_bracket(self) -> bool:
        raise NotImplementedError

    def _next_s(self) -> int:
        raise NotImplementedError

    def _make_config(self, budget: int) -> dict:
        raise NotImplementedError

    def _next_job(self) -> tuple[str, dict] | None:
        if not self._pending and self._may_open_bracket():
            self._open_bracket(self._next_s())
        return self._pending.pop(0) if self._pending else None

    def _open_bracket(self, s: int) -> None:
        if self.space is None:
            raise RuntimeError(f"{self.advisor_name} got a trial request before handle_initialize (no search space)")
        bracket = Bracket(s, self.s_max, self.eta, self.max_budget, self.optimize_mode)
        self.brackets.append(bracket)
        _, r0 = bracket.n_r(0)
        self._add_pending(bracket, 0, bracket.start(lambda: self._make_config(r0), self._new_k))

    def _add_pending(self, bracket: Bracket, i: int, items: list[tuple[str, dict]]) -> None:
        for pid, _ in items:
            self._owner[pid] = (bracket, i)
        self._pending.extend(items)

    def _new_k(self) -> int:
        self._k += 1
        return self._k - 1

    # Hooks for BOHB.
    def _on_metric(self, bracket: Bracket, i: int, pid: str, mtype: str, value: float) -> None:
        pass

    def _on_trial_end(self, bracket: Bracket, i: int, pid: str, event: Any) -> None:
        pass


class Hyperband(SuccessiveHalvingAdvisor):
    """Hyperband advisor.

    Parameters
    ----------
    optimize_mode : 'maximize' (default) or 'minimize'
    R : int, default 60
        Maximum budget of one trial (epochs, mini-batches, ...): the largest ``TRIAL_BUDGET``.
    eta : int, default 3
        ``(eta-1)/eta`` of the configurations are discarded after each round.
    exec_mode : 'parallelism' (default) or 'serial'
        ``parallelism`` starts the next bracket whenever the runtime asks for more trials than
        the open brackets can give; ``serial`` starts a bracket only after the previous one has
        finished (at most one unfinished bracket).
    seed : int, optional
        Seed of the random configuration sampler (nniray addition).

    Search space: every type, nested choices included (configurations are plain random samples).
    """

    advisor_name = "Hyperband"

    def __init__(self, optimize_mode: str = "maximize", R: int = 60, eta: int = 3,
                 exec_mode: str = "parallelism", seed: int | None = None):
        R = positive_int("R", R)
        eta_ = positive_int("eta", eta, minimum=2)
        super().__init__(optimize_mode, eta_, R, compute_s_max(R, eta_), seed)
        self.R = R
        if exec_mode not in ("parallelism", "serial"):
            raise ValueError(f"exec_mode must be 'parallelism' or 'serial', got {exec_mode!r}")
        self.exec_mode = exec_mode
        self._s_next = self.s_max  # brackets open in the order s_max, ..., 0

    def is_done(self) -> bool:
        """Every bracket of this Hyperband execution was created and has finished."""
        return self._s_next < 0 and not self._pending and all(b.finished for b in self.brackets)

    def _may_open_bracket(self) -> bool:
        if self._s_next < 0:
            return False
        return self.exec_mode == "parallelism" or not self.brackets or self.brackets[-1].finished

    def _next_s(self) -> int:
        s, self._s_next = self._s_next, self._s_next - 1
        return s

    def _make_config(self, budget: int) -> dict:
        return self.space.sample(self._rng)
