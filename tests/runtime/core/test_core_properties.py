"""Random event orders against ExperimentCore (hypothesis): whatever order replies arrive in,
no trial is counted twice, maxTrialNumber is never exceeded, no runner runs two trials, and
nothing reported is lost (every trial ends once, every final of a live attempt reaches the
algorithm once)."""
from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings, strategies as st

from nniray.runtime import commands as c
from nniray.runtime import events as e
from nniray.runtime.status import ExperimentStatus as S
from nniray.runtime.status import MetricType, TrialStatus as T

from core_harness import Harness


class World:
    """The shell and the cluster, simulated: runners start, trials run and end, the algorithm
    answers, each when the test's random draw says so."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.runners: dict[int, str] = {}  # slot -> "starting" | "ready"
        self.runs: dict[str, tuple[int, int]] = {}  # trial -> (attempt, slot) of the live run
        self.lost: list[tuple[str, int, int]] = []  # runs whose runner was retired: (trial, attempt, slot)
        self.stops: dict[str, T] = {}
        self.request: c.RequestTrials | None = None
        self.finals_sent: set[str] = set()  # trials whose live attempt reported a final while running
        self.rejected: set[str] = set()
        self.seq: Counter = Counter()
        self.max_concurrency = h.core.limits.concurrency
        self.max_trials = h.core.limits.max_trials
        self.finished = False

    def send(self, ev, dt=0.0) -> None:
        for cmd in self.h.send(ev, dt):
            self.apply(cmd)
        self.check()

    def apply(self, cmd) -> None:
        if isinstance(cmd, c.StartRunner):
            assert cmd.slot not in self.runners, f"runner {cmd.slot} started twice"
            self.runners[cmd.slot] = "starting"
        elif isinstance(cmd, c.RetireRunner):
            self.runners.pop(cmd.slot, None)
            for tid, (att, slot) in list(self.runs.items()):
                if slot == cmd.slot:
                    del self.runs[tid]
                    self.lost.append((tid, att, slot))
        elif isinstance(cmd, c.DispatchTrial):
            assert self.runners.get(cmd.slot) == "ready", f"dispatch to runner {cmd.slot} that is not ready"
            assert all(s != cmd.slot for _, s in self.runs.values()), f"runner {cmd.slot} given two trials"
            assert cmd.trial_id not in self.runs
            self.runs[cmd.trial_id] = (cmd.attempt, cmd.slot)
            self.stops.pop(cmd.trial_id, None)
        elif isinstance(cmd, c.StopTrial):
            if cmd.trial_id in self.runs:
                self.stops[cmd.trial_id] = cmd.status
        elif isinstance(cmd, c.RequestTrials):
            assert self.request is None, "two requests in flight"
            self.request = cmd
        elif isinstance(cmd, c.Finish):
            self.finished = True

    def check(self) -> None:
        assert len(self.runs) <= self.max_concurrency
        created = self.h.writes(c.TrialCreated)
        if self.max_trials is not None:
            assert len(created) <= self.max_trials

    # -- actions
    def ready(self, slot: int) -> None:
        self.runners[slot] = "ready"
        self.send(e.RunnerReady(slot))

    def answer(self, n: int, no_more: bool) -> None:
        req, self.request = self.request, None
        jobs = tuple(e.Job({"parameter_id": p, "parameter_source": "algorithm", "parameters": {"p": p}})
                     for p in range(req.parameter_ids[0] if req.parameter_ids else 0,
                                    (req.parameter_ids[0] if req.parameter_ids else 0) + n))
        self.send(e.AlgorithmAnswered(jobs, no_more=no_more, request_id=req.request_id))

    def end(self, tid: str, how: str) -> None:
        att, slot = self.runs.pop(tid)
        if how == "lost":
            self.runners.pop(slot, None)
            self.send(e.RunnerLost(slot))
            self.send(e.TrialEnded(tid, slot, e.Outcome.RUNNER_LOST, attempt=att))
            return
        status = self.stops.pop(tid, None) or {"ok": T.SUCCEEDED, "fail": T.FAILED, "stuck": T.SYS_CANCELED}[how]
        if how == "stuck":
            self.runners.pop(slot, None)
        self.send(e.TrialEnded(tid, slot, e.Outcome.FINISHED, status, retire_runner=how == "stuck", attempt=att))

    def deliver_lost(self) -> None:
        tid, att, slot = self.lost.pop(0)
        self.send(e.TrialEnded(tid, slot, e.Outcome.RUNNER_LOST, attempt=att))

    def metric(self, tid: str, final: bool, stale: bool, bad: bool) -> None:
        att, _ = self.runs[tid]
        if bad:
            self.rejected.add(tid)
            self.send(e.MetricRejected(tid, "bad record"))
            return
        kind = MetricType.FINAL if final else MetricType.PERIODICAL
        a = att - 1 if stale and att > 0 else att
        if final and a == att and tid in self.h.core.running:
            self.finals_sent.add(tid)
        self.seq[(tid, kind)] += 1
        self.send(e.MetricArrived(tid, kind, self.seq[(tid, kind)], 0.5, attempt=a))


ACTIONS = ["ready", "answer", "end", "metric", "tick", "update", "kill", "verdict", "lost", "idle_lost"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(1, 3), st.one_of(st.none(), st.integers(1, 8)), st.integers(0, 2), st.booleans())
def test_invariants_hold_for_any_event_order(data, concurrency, max_trials, retries, stop_at_end):
    h = Harness(concurrency=concurrency, max_trials=max_trials, max_retries=retries, max_trial_seconds=50.0)
    w = World(h)
    w.send(e.Started())
    for _ in range(data.draw(st.integers(0, 60), label="steps")):
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        if action == "ready" and any(s == "starting" for s in w.runners.values()):
            w.ready(data.draw(st.sampled_from(sorted(k for k, s in w.runners.items() if s == "starting"))))
        elif action == "answer" and w.request is not None:
            w.answer(data.draw(st.integers(0, w.request.count + 1)), data.draw(st.booleans()))
        elif action == "end" and w.runs:
            w.end(data.draw(st.sampled_from(sorted(w.runs))), data.draw(st.sampled_from(["ok", "fail", "lost",
                                                                                          "stuck"])))
        elif action == "metric" and w.runs:
            w.metric(data.draw(st.sampled_from(sorted(w.runs))), data.draw(st.booleans()), data.draw(st.booleans()),
                     data.draw(st.integers(0, 9)) == 0)
        elif action == "tick":
            w.send(e.Tick(), dt=data.draw(st.sampled_from([0.1, 1.0, 90.0])))
        elif action == "update":
            if data.draw(st.booleans()):
                n = data.draw(st.integers(1, 4))
                w.max_concurrency = max(w.max_concurrency, n)
                w.send(e.UpdateRequested("trialConcurrency", n))
            elif w.max_trials is not None:
                w.max_trials += data.draw(st.integers(0, 3))
                w.send(e.UpdateRequested("maxTrialNumber", w.max_trials))
        elif action == "kill" and (w.runs or h.core.retry):
            w.send(e.KillRequested(data.draw(st.sampled_from(sorted(set(w.runs) | {t.trial_id for t in
                                                                                    h.core.retry})))))
        elif action == "verdict" and w.runs:
            w.send(e.AssessorVerdict(data.draw(st.sampled_from(sorted(w.runs))), False))
        elif action == "lost" and w.lost:
            w.deliver_lost()
        elif action == "idle_lost":
            idle = sorted(k for k, s in w.runners.items() if s == "ready" and all(sl != k for _, sl in w.runs.values()))
            if idle:
                slot = data.draw(st.sampled_from(idle))
                del w.runners[slot]
                w.send(e.RunnerLost(slot))
    # Drain: the algorithm says no more, every runner starts, every trial ends.
    if stop_at_end:
        w.send(e.StopRequested())
    for _ in range(500):
        if w.lost:
            w.deliver_lost()
        elif w.request is not None:
            w.answer(0, True)
        elif w.runs:
            w.end(sorted(w.runs)[0], "ok")
        elif any(s == "starting" for s in w.runners.values()):
            w.ready(min(k for k, s in w.runners.items() if s == "starting"))
        else:
            break
    core = h.core
    assert not w.runs and not core.running and not core.retry
    assert core.status in ((S.STOPPED, S.DONE) if stop_at_end else (S.DONE,)), core.status
    if stop_at_end:
        assert w.finished
    created = [x.trial_id for x in h.writes(c.TrialCreated)]
    seqs = sorted(x.sequence_id for x in h.writes(c.TrialCreated))
    assert len(set(created)) == len(created), "a trial id created twice"
    assert seqs == list(range(len(seqs))), "sequence ids are not 0..n-1 once each"
    if w.max_trials is not None:
        assert len(created) <= w.max_trials
    ended = Counter(x.trial_id for x in h.writes(c.TrialFinished))
    assert ended == Counter(created), "a trial ended twice or never"
    told_end = Counter(x.trial_id for x in h.log if isinstance(x, c.ReportTrialEnd))
    assert told_end == Counter(created), "the algorithm heard a trial end twice or never"
    finals = Counter(x.trial_id for x in h.log if isinstance(x, c.ReportFinal))
    assert all(n == 1 for n in finals.values()), "a final reached the algorithm twice"
    assert w.finals_sent <= set(finals), "a final of a live attempt never reached the algorithm"
    for w_ in h.writes(c.TrialFinished):
        if w_.trial_id in w.rejected:
            assert w_.status is T.FAILED and "bad record" in w_.message
