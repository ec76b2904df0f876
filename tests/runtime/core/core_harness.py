"""A scripted shell for ExperimentCore: sends events, keeps every command, checks the rules
that hold for every command list (write before act)."""
from __future__ import annotations

import itertools

from nniray.runtime import commands as c
from nniray.runtime import events as e
from nniray.runtime.core import ExperimentCore, Limits
from nniray.runtime.status import ExperimentStatus, MetricType, TrialStatus


def check_write_before_act(cmds: list) -> None:
    """Every dispatch follows the write of its trial row, every trial end told to the algorithm
    follows the write of that end, releasing follows the final status, in the same list."""
    written: list = []
    for cmd in cmds:
        if isinstance(cmd, c.Persist):
            written.extend(cmd.writes)
        elif isinstance(cmd, c.DispatchTrial):
            assert any(isinstance(w, (c.TrialCreated, c.TrialRestarted)) and w.trial_id == cmd.trial_id
                       for w in written), f"dispatch of {cmd.trial_id} before its row was written: {cmds}"
        elif isinstance(cmd, c.ReportTrialEnd):
            assert any(isinstance(w, c.TrialFinished) and w.trial_id == cmd.trial_id and w.status == cmd.status
                       for w in written), f"trial end of {cmd.trial_id} told before it was written: {cmds}"
        elif isinstance(cmd, c.Finish):
            assert any(isinstance(w, c.StatusChanged) and w.status == cmd.status for w in written)


class Harness:
    def __init__(self, concurrency=2, max_trials=None, max_duration=None, max_trial_seconds=None, max_retries=0,
                 **kw):
        ids = (f"t{i:03d}" for i in itertools.count())
        self.now = 0.0
        self.core = ExperimentCore(Limits(concurrency, max_trials, max_duration, max_trial_seconds, max_retries),
                                   lambda: next(ids), now=self.now, **kw)
        self.log: list = []

    def send(self, ev, dt: float = 0.0) -> list:
        self.now += dt
        cmds = self.core.handle(ev, self.now)
        check_write_before_act(cmds)
        self.log.extend(cmds)
        return cmds

    # -- shortcuts
    def start(self, resume=False) -> list:
        cmds = self.send(e.Started(resume))
        for cmd in cmds:
            if isinstance(cmd, c.StartRunner):
                cmds += self.send(e.RunnerReady(cmd.slot))
        return cmds

    def ready_new_runners(self, cmds: list) -> list:
        out = []
        for cmd in cmds:
            if isinstance(cmd, c.StartRunner):
                out += self.send(e.RunnerReady(cmd.slot))
        return out

    def answer(self, n: int | None = None, request=None, **kw) -> list:
        req = request or self.pending_request()
        n = req.count if n is None else n
        jobs = tuple(e.Job({"parameter_id": pid, "parameter_source": "algorithm", "parameters": {"x": pid}})
                     for pid in req.parameter_ids[:n])
        return self.send(e.AlgorithmAnswered(jobs, request_id=req.request_id, **kw))

    def pending_request(self) -> c.RequestTrials:
        reqs = [x for x in self.log if isinstance(x, c.RequestTrials)]
        assert reqs, "no request was made"
        return reqs[-1]

    def end(self, trial_id: str, status=TrialStatus.SUCCEEDED, outcome=e.Outcome.FINISHED, dt=0.0, **kw) -> list:
        slot = self.core.running[trial_id].slot
        return self.send(e.TrialEnded(trial_id, slot, outcome, status, **kw), dt)

    def final(self, trial_id: str, value=0.5, seq=0, attempt=None) -> list:
        return self.send(e.MetricArrived(trial_id, MetricType.FINAL, seq, value, attempt=attempt))

    def dispatched(self, cmds=None) -> list[c.DispatchTrial]:
        return [x for x in (self.log if cmds is None else cmds) if isinstance(x, c.DispatchTrial)]

    def writes(self, kind, cmds=None) -> list:
        return [w for x in (self.log if cmds is None else cmds) if isinstance(x, c.Persist) for w in x.writes
                if isinstance(w, kind)]

    @property
    def status(self) -> ExperimentStatus:
        return self.core.status


def of(kind, cmds) -> list:
    return [x for x in cmds if isinstance(x, kind)]
