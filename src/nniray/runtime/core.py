"""``ExperimentCore``: the experiment's state machine, plain Python (no Ray, no I/O, no clock).

It takes :mod:`events <nniray.runtime.events>` and returns :mod:`commands
<nniray.runtime.commands>`; the controller actor is the shell that turns Ray replies into
events and runs the commands.  Everything that decides *what happens next* lives here, so it
is tested by replaying event orders (tests/runtime/core/), races included:

- the status machine (INITIALIZED → RUNNING → NO_MORE_TRIAL → DONE; STOPPING → STOPPED; ERROR),
- the limits (``maxTrialNumber``, ``maxExperimentDuration``, ``maxTrialDuration``),
- retries (a trial whose runner died runs again, same id and parameters, as its next attempt,
  on the first free runner) and the time-out backstop,
- the runner pool size, and which trial runs where,
- write-before-act: each command that acts (dispatch, a trial's end told to the algorithm,
  releasing the experiment) follows, in the same list, the :class:`Persist` that records it.

Time comes in with each event (``handle(event, now)``), so a test controls it.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from nniray.runtime import commands as c
from nniray.runtime import events as e
from nniray.runtime.status import RESUMABLE, ExperimentStatus, MetricType, TrialStatus

S = ExperimentStatus
# The runner enforces maxTrialDuration itself; the core's backstop (for a runner that cannot:
# its node is gone, or the trial ignores signals) replaces the runner this much later.
TIMEOUT_GRACE_SECONDS = 30.0
DURATION_SAVE_SECONDS = 1.0
_ENDED_KEPT = 1024  # recently ended trials remembered for late metrics


@dataclass
class Limits:
    concurrency: int
    max_trials: int | None = None
    max_duration: float | None = None  # seconds of execDuration
    max_trial_seconds: float | None = None
    max_retries: int = 0

    def __post_init__(self) -> None:
        check_update("trialConcurrency", self.concurrency)
        if self.max_trials is not None:
            check_update("maxTrialNumber", self.max_trials)


@dataclass
class TrialState:
    trial_id: str
    sequence_id: int
    hyper_params: dict
    slot: int | None
    attempt: int
    start: float
    history: list = field(default_factory=list)
    final_seen: bool = False
    notes: list = field(default_factory=list)
    failed_reason: str | None = None  # a malformed metric: the trial ends FAILED whatever it says
    timed_out: bool = False


@dataclass
class _Slot:
    ready: bool = False
    busy: str | None = None


@dataclass
class _Request:
    request_id: int
    count: int
    busy: bool  # a trial was running or waiting for a retry when the request went out
    changes: int  # the core's change counter when it went out


def check_update(field_name: str, value: Any) -> Any:
    """The run-time-updatable fields and their rules; raises ValueError naming the field."""
    if field_name == "trialConcurrency":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"trialConcurrency must be an integer >= 1, got {value!r}")
    elif field_name == "maxTrialNumber":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"maxTrialNumber must be an integer >= 1, got {value!r}")
    elif field_name == "maxExperimentDuration":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value >= 0):
            raise ValueError(f"maxExperimentDuration must be a duration >= 0, got {value!r}")
    elif field_name != "searchSpace":
        raise ValueError(f"cannot update {field_name!r}; updatable: trialConcurrency, maxTrialNumber, "
                         f"maxExperimentDuration, searchSpace")
    return value


class ExperimentCore:
    def __init__(self, limits: Limits, new_trial_id: Callable[[], str], *, now: float,
                 status: ExperimentStatus = S.INITIALIZED, next_sequence: int = 0, exhausted: bool = False,
                 exec_duration: float = 0.0, errors: tuple = ()) -> None:
        self.limits = limits
        self._new_trial_id = new_trial_id
        self.status = S(status)
        self.next_sequence = next_sequence
        self.exhausted = exhausted
        self.exec_duration = float(exec_duration)
        self.errors: list[str] = list(errors)
        self.running: dict[str, TrialState] = {}
        self.retry: list[TrialState] = []  # runner died; waiting for a free runner
        self.queue: list[dict] = []  # jobs from the algorithm waiting for a runner
        self.slots: dict[int, _Slot] = {}
        self._ended: OrderedDict[str, TrialState] = OrderedDict()
        self._tick = now
        self._duration_saved = now
        self._started = False
        self._stopping = False
        self._final_after_stop: ExperimentStatus | None = None
        self._finished = False
        self._request: _Request | None = None
        self._request_seq = 0
        # It answered short and nothing changed since it was asked: ask again after a change
        # (a trial end, a final result, an update, a tick), not in a loop.
        self._algorithm_quiet = False
        self._changes = 0
        self._out: list = []
        self._after_persist: list = []  # acts waiting for the next Persist

    # ================================================================================ queries
    @property
    def stopping(self) -> bool:
        return self._stopping

    def trial(self, trial_id: str) -> TrialState | None:
        return self.running.get(trial_id) or next((t for t in self.retry if t.trial_id == trial_id), None)

    def accepts_final(self, trial_id: str, attempt: int | None) -> bool:
        """Whether a FINAL of this trial and attempt would be its result (the first final of
        its current attempt): the shell records the trial's result column only then."""
        t = self.running.get(trial_id) or self._ended.get(trial_id)
        if t is None:
            return True  # a trial the core does not know (recovery): the store decides
        if trial_id in self.running and attempt is not None and attempt != t.attempt:
            return False
        return not t.final_seen

    def exec_duration_at(self, now: float) -> float:
        live = self.status in (S.RUNNING, S.NO_MORE_TRIAL) and not self._finished
        return self.exec_duration + (max(0.0, now - self._tick) if live else 0.0)

    @property
    def finished(self) -> bool:
        """Stopped for good: everything was released."""
        return self._finished

    def busy_slots(self) -> dict[int, str]:
        return {i: s.busy for i, s in self.slots.items() if s.busy is not None}

    # ================================================================================ entry point
    def handle(self, event: Any, now: float) -> list:
        """Apply ``event`` at time ``now``; return the commands to run, in order."""
        self._out = []
        self._account(now)
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"ExperimentCore cannot handle {type(event).__name__}")
        handler(self, event, now)
        self._schedule(now)
        out, self._out = self._out, []
        return out

    # ================================================================================ lifecycle
    def _on_started(self, ev: e.Started, now: float) -> None:
        # Idempotent: after a restart several callers may start the controller at once.
        if self._started or self._stopping:
            return
        self._started = True
        if self.status is S.INITIALIZED or (ev.resume and self.status in RESUMABLE):
            self._set_status(S.RUNNING)

    def _on_failed(self, ev: e.Failed, now: float) -> None:
        self.errors.append(ev.reason)
        if self._finished:
            return
        self._stopping = True
        if self._final_after_stop is not None:
            self._final_after_stop = S.ERROR
        if self.status is S.ERROR:
            self._persist(c.StatusChanged(S.ERROR, tuple(self.errors)))
        self._set_status(S.ERROR)
        self._cancel_all(now, TrialStatus.SYS_CANCELED, "experiment error")

    def _on_stop(self, ev: e.StopRequested, now: float) -> None:
        if self._stopping and self._final_after_stop is not None:
            return
        # A finished experiment keeps its status (DONE stays DONE, ERROR keeps its reason).
        final = self.status if self.status in (S.DONE, S.ERROR) else S.STOPPED
        self._stopping = True
        self._final_after_stop = final
        if final is S.STOPPED:
            self._set_status(S.STOPPING)
        self._cancel_all(now, TrialStatus.USER_CANCELED, "experiment stopped")

    def _on_stop_deadline(self, ev: e.StopDeadline, now: float) -> None:
        if self._final_after_stop is None:
            return
        writes = []
        for t in list(self.running.values()):
            writes.append(self._end_trial(t, TrialStatus.USER_CANCELED, now, "experiment stopped"))
        if writes:
            self._persist(*writes)

    def _cancel_all(self, now: float, status: TrialStatus, message: str) -> None:
        writes = [self._end_retry(t, status, now, message) for t in list(self.retry)]
        if writes:
            self._persist(*writes)
        self.queue.clear()
        for t in self.running.values():
            self._out.append(c.StopTrial(t.trial_id, t.slot, status, message))

    def _on_update(self, ev: e.UpdateRequested, now: float) -> None:
        value = check_update(ev.field, ev.value)
        if ev.field == "trialConcurrency":
            self.limits.concurrency = value
        elif ev.field == "maxTrialNumber":
            self.limits.max_trials = value
        elif ev.field == "maxExperimentDuration":
            self.limits.max_duration = None if value is None else float(value)
        elif ev.field == "searchSpace":
            self.exhausted = False
            self._persist(c.MetaChanged("exhausted", False))
        self._changed()
        # Raised limits bring a finished experiment back (NNI: the manager resumes).
        if self.status in (S.NO_MORE_TRIAL, S.DONE) and not self._stopping and self._can_create():
            self._set_status(S.RUNNING)

    def _on_kill(self, ev: e.KillRequested, now: float) -> None:
        t = self.running.get(ev.trial_id)
        if t is not None:
            self._out.append(c.StopTrial(t.trial_id, t.slot, TrialStatus(ev.status), ev.message))
            return
        for t in list(self.retry):  # waiting for a runner: nothing to stop, it just ends
            if t.trial_id == ev.trial_id:
                self._persist(self._end_retry(t, TrialStatus(ev.status), now, ev.message))

    def _on_tick(self, ev: e.Tick, now: float) -> None:
        self._changed()
        lim = self.limits.max_trial_seconds
        if lim is None:
            return
        for t in self.running.values():
            if not t.timed_out and t.slot is not None and now - t.start > lim + TIMEOUT_GRACE_SECONDS:
                t.timed_out = True
                self._out.append(c.RetireRunner(t.slot))

    # ================================================================================ runners
    def _on_runner_ready(self, ev: e.RunnerReady, now: float) -> None:
        s = self.slots.get(ev.slot)
        if s is not None:
            s.ready = True

    def _on_runner_lost(self, ev: e.RunnerLost, now: float) -> None:
        s = self.slots.get(ev.slot)
        if s is not None and s.busy is None:
            del self.slots[ev.slot]

    def _on_recovered_runner(self, ev: e.RecoveredRunner, now: float) -> None:
        self.slots.setdefault(ev.slot, _Slot())

    def _on_recovered_trial(self, ev: e.RecoveredTrial, now: float) -> None:
        t = TrialState(ev.trial_id, ev.sequence_id, ev.hyper_params, ev.slot, ev.attempt, ev.start_time,
                       list(ev.history))
        self.running[t.trial_id] = t
        self.slots[ev.slot] = _Slot(ready=True, busy=t.trial_id)
        self.next_sequence = max(self.next_sequence, ev.sequence_id + 1)

    def _on_trial_ended(self, ev: e.TrialEnded, now: float) -> None:
        t = self.running.get(ev.trial_id)
        if t is None or t.slot != ev.slot or (ev.attempt is not None and ev.attempt != t.attempt):
            return  # already handled (a re-sent outcome, or a stale attempt's)
        self._changed()
        end = ev.end_time if ev.end_time is not None else now
        if ev.outcome is not e.Outcome.FINISHED:
            self._drop_slot(ev.slot)
            if t.timed_out:
                status, message = TrialStatus.SYS_CANCELED, (f"exceeded maxTrialDuration "
                                                            f"({self.limits.max_trial_seconds:g}s) and did not stop")
            elif t.failed_reason is None and t.attempt < self.limits.max_retries and not self._stopping:
                del self.running[t.trial_id]
                t.slot = None
                self.retry.append(t)
                return
            else:
                status, message = TrialStatus.FAILED, ev.message or "trial runner died"
        else:
            status, message = ev.status, ev.message
            if ev.retire_runner:
                self._drop_slot(ev.slot)
            else:
                self.slots[ev.slot].busy = None
        if t.failed_reason is not None:
            status = TrialStatus.FAILED
        self._persist(self._end_trial(t, status, end, message))
        if ev.outcome is e.Outcome.FINISHED and not ev.retire_runner:
            self._out.append(c.AckTrial(t.trial_id, ev.slot))

    def _drop_slot(self, slot: int) -> None:
        if self.slots.pop(slot, None) is not None:
            self._out.append(c.RetireRunner(slot))

    # ================================================================================ metrics
    def _on_metric(self, ev: e.MetricArrived, now: float) -> None:
        t = self.running.get(ev.trial_id)
        if t is None:
            t = self._ended.get(ev.trial_id)
            if t is None or ev.type is MetricType.PERIODICAL:
                return  # stored; an unknown trial's result reaches the tuner on its next rebuild
        elif ev.attempt is not None and ev.attempt != t.attempt:
            return  # a dead attempt's late report: stored with its attempt, not counted
        if ev.type is MetricType.PERIODICAL:
            t.history.append(ev.value)
            if not self._stopping:
                self._out.append(c.ReportIntermediate(t.trial_id, t.hyper_params, ev.value, ev.sequence,
                                                      tuple(t.history)))
            return
        self._changed()
        if t.final_seen:
            return  # one final result per trial reaches the algorithm (the first)
        t.final_seen = True
        self._out.append(c.ReportFinal(t.trial_id, t.hyper_params, ev.value, ev.sequence))

    def _on_metric_rejected(self, ev: e.MetricRejected, now: float) -> None:
        t = self.running.get(ev.trial_id)
        if t is None:
            self._persist(c.TrialNote(ev.trial_id, ev.reason))
            return
        if t.failed_reason is not None:
            return
        t.failed_reason = ev.reason
        t.notes.append(ev.reason)
        self._persist(c.TrialNote(t.trial_id, ev.reason))
        self._out.append(c.StopTrial(t.trial_id, t.slot, TrialStatus.FAILED, ev.reason))

    def _on_verdict(self, ev: e.AssessorVerdict, now: float) -> None:
        t = self.running.get(ev.trial_id)
        if not ev.good and t is not None and not self._stopping:
            self._out.append(c.StopTrial(t.trial_id, t.slot, TrialStatus.EARLY_STOPPED,
                                         "stopped early by the assessor"))

    # ================================================================================ algorithm
    def _on_answer(self, ev: e.AlgorithmAnswered, now: float) -> None:
        req = None
        if ev.request_id is not None and self._request is not None and ev.request_id == self._request.request_id:
            req, self._request = self._request, None
        for tid in ev.stop:
            self._on_kill(e.KillRequested(tid), now)
        if self._stopping:
            return
        self.queue.extend(j.hyper_params if isinstance(j, e.Job) else j for j in ev.jobs)
        busy_then = req.busy if req is not None else True
        empty_end = (req is not None and not ev.jobs and ev.empty_means_no_more and not busy_then
                     and not self.running and not self.retry)
        if (ev.no_more or empty_end) and not self.exhausted:
            self.exhausted = True
            self._persist(c.MetaChanged("exhausted", True))
        elif req is not None and len(ev.jobs) < req.count and req.changes == self._changes:
            self._algorithm_quiet = True

    # ================================================================================ scheduling
    def _schedule(self, now: float) -> None:
        if self._finished:
            return
        if self._stopping:
            if self._final_after_stop is None:  # ERROR: keep no idle runner
                for i in sorted(i for i, s in self.slots.items() if s.busy is None):
                    self._drop_slot(i)
            self._maybe_finish(now)
            return
        if not self._started:
            return
        if self.status is S.RUNNING and not self._can_create():
            self._set_status(S.NO_MORE_TRIAL)
        self._size_pool()
        self._dispatch_retries(now)
        if self.status is S.RUNNING:
            self._dispatch_new(now)
        if self.status is S.NO_MORE_TRIAL and not self.running and not self.retry:
            self._set_status(S.DONE, c.MetaChanged("end_time", now), c.MetaChanged("exec_duration",
                                                                                  self.exec_duration))
            for i in sorted(self.slots):
                self._drop_slot(i)

    def _can_create(self) -> bool:
        lim = self.limits
        if lim.max_trials is not None and self.next_sequence >= lim.max_trials:
            return False
        if lim.max_duration is not None and self.exec_duration >= lim.max_duration:
            return False
        return not self.exhausted or bool(self.queue)

    def _size_pool(self) -> None:
        if self.status not in (S.RUNNING, S.NO_MORE_TRIAL):
            return
        want = self.limits.concurrency if (self.status is S.RUNNING or self.retry) else len(self.running)
        for i in range(want):
            if i not in self.slots:
                self.slots[i] = _Slot()
                self._out.append(c.StartRunner(i))
        for i in sorted(self.slots, reverse=True):  # retire idle runners beyond the concurrency
            if len(self.slots) <= want:
                break
            if self.slots[i].busy is None:
                self._drop_slot(i)

    def _idle(self) -> list[int]:
        return sorted(i for i, s in self.slots.items() if s.ready and s.busy is None)

    def _dispatch_retries(self, now: float) -> None:
        # First: a retry is a trial already counted, it must not wait behind new ones.
        idle = self._idle()
        while self.retry and idle:
            t = self.retry.pop(0)
            slot = idle.pop(0)
            t.attempt += 1
            t.slot, t.start, t.history, t.timed_out = slot, now, [], False
            self.running[t.trial_id] = t
            self.slots[slot].busy = t.trial_id
            self._persist(c.TrialRestarted(t.trial_id, t.attempt, slot, now))
            self._out.append(c.DispatchTrial(t.trial_id, t.sequence_id, t.hyper_params, slot, t.attempt))

    def _free(self) -> int:
        lim = self.limits
        free = min(lim.concurrency - len(self.running) - len(self.retry), len(self._idle()))
        if lim.max_trials is not None:
            free = min(free, lim.max_trials - self.next_sequence)
        return max(free, 0)

    def _dispatch_new(self, now: float) -> None:
        free = self._free()
        idle = self._idle()
        while free > 0 and self.queue:
            self._create_trial(self.queue.pop(0), idle.pop(0), now)
            free -= 1
        if free > 0 and self._request is None and not self.exhausted and not self._algorithm_quiet:
            self._request_seq += 1
            self._request = _Request(self._request_seq, free, bool(self.running or self.retry), self._changes)
            ids = tuple(range(self.next_sequence, self.next_sequence + free))
            self._out.append(c.RequestTrials(self._request_seq, free, ids))
        if not self._can_create():
            self._set_status(S.NO_MORE_TRIAL)

    def _create_trial(self, hyper_params: dict, slot: int, now: float) -> None:
        tid = self._new_trial_id()
        seq = self.next_sequence
        self.next_sequence += 1
        t = TrialState(tid, seq, hyper_params, slot, 0, now)
        self.running[tid] = t
        self.slots[slot].busy = tid
        self._persist(c.TrialCreated(tid, seq, hyper_params, slot, now))
        self._out.append(c.DispatchTrial(tid, seq, hyper_params, slot, 0))

    def _maybe_finish(self, now: float) -> None:
        if self.running or self._final_after_stop is None:
            return
        self._finished = True
        final = self._final_after_stop
        self.status = final
        # A DONE experiment recorded its end when it finished: a later stop must not move it.
        ended = () if final is S.DONE else (c.MetaChanged("end_time", now),
                                            c.MetaChanged("exec_duration", self.exec_duration))
        self._persist(c.StatusChanged(final, tuple(self.errors)), *ended)
        self._out.append(c.Finish(final))

    # ================================================================================ helpers
    def _end_trial(self, t: TrialState, status: TrialStatus, end: float, message: str) -> c.TrialFinished:
        self.running.pop(t.trial_id, None)
        if t.slot is not None and t.slot in self.slots and self.slots[t.slot].busy == t.trial_id:
            self.slots[t.slot].busy = None
        self._remember(t)
        notes = [n for n in t.notes if n != message] + ([message] if message else [])
        self._after_persist.append(c.ReportTrialEnd(t.trial_id, t.hyper_params, status))
        return c.TrialFinished(t.trial_id, status, end, "; ".join(notes))

    def _end_retry(self, t: TrialState, status: TrialStatus, end: float, message: str) -> c.TrialFinished:
        self.retry.remove(t)
        self._remember(t)
        self._after_persist.append(c.ReportTrialEnd(t.trial_id, t.hyper_params, status))
        return c.TrialFinished(t.trial_id, status, end, message)

    def _changed(self) -> None:
        self._changes += 1
        self._algorithm_quiet = False

    def _remember(self, t: TrialState) -> None:
        self._ended[t.trial_id] = t
        while len(self._ended) > _ENDED_KEPT:
            self._ended.popitem(last=False)

    def _persist(self, *writes: Any) -> None:
        """Record ``writes``, then run what they justify (a trial's end reaches the algorithm
        only once it is stored)."""
        self._out.append(c.Persist(tuple(writes)))
        follow, self._after_persist = self._after_persist, []
        self._out.extend(follow)

    def _set_status(self, status: ExperimentStatus, *extra: Any) -> None:
        if status is self.status:
            return
        self.status = status
        self._persist(c.StatusChanged(status, tuple(self.errors) if status is S.ERROR else ()), *extra)

    def _account(self, now: float) -> None:
        if self.status in (S.RUNNING, S.NO_MORE_TRIAL) and not self._finished:
            self.exec_duration += max(0.0, now - self._tick)
            if now - self._duration_saved > DURATION_SAVE_SECONDS:
                self._duration_saved = now
                self._out.append(c.Persist((c.MetaChanged("exec_duration", self.exec_duration),)))
        self._tick = now


_HANDLERS: dict[type, Callable] = {
    e.Started: ExperimentCore._on_started, e.Failed: ExperimentCore._on_failed,
    e.StopRequested: ExperimentCore._on_stop, e.StopDeadline: ExperimentCore._on_stop_deadline,
    e.UpdateRequested: ExperimentCore._on_update, e.KillRequested: ExperimentCore._on_kill,
    e.Tick: ExperimentCore._on_tick, e.RunnerReady: ExperimentCore._on_runner_ready,
    e.RunnerLost: ExperimentCore._on_runner_lost, e.RecoveredRunner: ExperimentCore._on_recovered_runner,
    e.RecoveredTrial: ExperimentCore._on_recovered_trial, e.TrialEnded: ExperimentCore._on_trial_ended,
    e.MetricArrived: ExperimentCore._on_metric, e.MetricRejected: ExperimentCore._on_metric_rejected,
    e.AssessorVerdict: ExperimentCore._on_verdict, e.AlgorithmAnswered: ExperimentCore._on_answer,
}
