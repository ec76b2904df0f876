"""ExperimentCore, one transition at a time, without Ray: events in, commands out."""
from __future__ import annotations

import pytest

from nniray.runtime import commands as c
from nniray.runtime import events as e
from nniray.runtime.core import TIMEOUT_GRACE_SECONDS, ExperimentCore, Limits
from nniray.runtime.status import ExperimentStatus as S
from nniray.runtime.status import MetricType, TrialStatus as T

from core_harness import Harness, of


def running_two(h: Harness) -> list[str]:
    """Start; runners get ready one by one and each is given a trial."""
    h.start()
    cmds = h.answer() + h.answer()
    return [d.trial_id for d in h.dispatched(cmds)]


# ---------------------------------------------------------------------------------------- start
def test_start_runs_and_sizes_the_runner_pool_to_the_concurrency():
    h = Harness(concurrency=3)
    cmds = h.send(e.Started())
    assert h.status is S.RUNNING
    assert of(c.Persist, cmds)[0].writes == (c.StatusChanged(S.RUNNING),)
    assert [x.slot for x in of(c.StartRunner, cmds)] == [0, 1, 2]
    assert not of(c.RequestTrials, cmds)  # no runner is ready yet


def test_the_algorithm_is_asked_once_for_the_ready_runners():
    h = Harness(concurrency=2)
    h.send(e.Started())
    assert of(c.RequestTrials, h.send(e.RunnerReady(0))) == [c.RequestTrials(1, 1, (0,))]
    # Runner 1 gets ready while the first request is out: no second request until it is answered.
    assert not of(c.RequestTrials, h.send(e.RunnerReady(1)))
    cmds = h.answer()
    assert [(d.trial_id, d.sequence_id, d.slot) for d in h.dispatched(cmds)] == [("t000", 0, 0)]
    assert of(c.RequestTrials, cmds) == [c.RequestTrials(2, 1, (1,))]


def test_dispatch_writes_the_trial_row_first():
    h = Harness()
    h.start()
    cmds = h.answer()
    assert isinstance(cmds[0], c.Persist) and isinstance(cmds[0].writes[0], c.TrialCreated)
    cmds += h.answer()
    created = h.writes(c.TrialCreated, cmds)
    assert [(w.trial_id, w.sequence_id) for w in created] == [("t000", 0), ("t001", 1)]
    assert [d.attempt for d in h.dispatched(cmds)] == [0, 0]


def test_a_second_start_after_a_restart_does_nothing():
    """Race: after a controller restart the driver's poll and the runners' reports both call
    start(); only one may start the runner pool and ask the algorithm."""
    h = Harness()
    first = h.start()
    assert of(c.StartRunner, first)
    assert h.send(e.Started()) == []
    assert h.send(e.Started(resume=True)) == []
    assert len(of(c.RequestTrials, h.log)) == 1


def test_a_late_second_start_of_a_resume_does_not_undo_no_more_trial():
    h = Harness(status=S.STOPPED, concurrency=1, max_trials=1)
    h.start(resume=True)
    h.answer()
    assert h.status is S.NO_MORE_TRIAL
    assert h.send(e.Started(resume=True)) == [] and h.status is S.NO_MORE_TRIAL


def test_resume_restarts_a_finished_experiment_and_a_restart_does_not():
    h = Harness(status=S.STOPPED, next_sequence=5)
    h.send(e.Started(resume=False))
    assert h.status is S.STOPPED
    h2 = Harness(status=S.DONE, next_sequence=5)
    h2.start(resume=True)
    assert h2.status is S.RUNNING
    assert h2.pending_request().parameter_ids == (5,)  # sequence ids continue


def test_a_restart_continues_a_running_experiment():
    h = Harness(status=S.RUNNING, next_sequence=3)
    h.start()
    assert h.status is S.RUNNING and h.pending_request().parameter_ids == (3,)


# ---------------------------------------------------------------------------------------- trial end
def test_a_trial_end_is_written_then_acknowledged_then_told_to_the_algorithm():
    h = Harness()
    a, b = running_two(h)
    cmds = h.end(a, T.SUCCEEDED, message="")
    kinds = [type(x) for x in cmds]
    assert kinds[0] is c.Persist and c.AckTrial in kinds
    assert cmds[0].writes == (c.TrialFinished(a, T.SUCCEEDED, h.now, ""),)
    # The slot is free again: the next request comes after the trial end in the same list
    # (PBT's synchronous steps rely on the tuner hearing trial_end before generate).
    assert kinds.index(c.ReportTrialEnd) < kinds.index(c.RequestTrials)


def test_a_duplicate_outcome_counts_once():
    h = Harness()
    a, _ = running_two(h)
    h.end(a)
    assert h.send(e.TrialEnded(a, 0, e.Outcome.FINISHED, T.SUCCEEDED)) == []
    assert len(h.writes(c.TrialFinished)) == 1


def test_failed_status_and_message_are_kept():
    h = Harness()
    a, _ = running_two(h)
    cmds = h.end(a, T.FAILED, message="exit code 1")
    assert h.writes(c.TrialFinished, cmds) == [c.TrialFinished(a, T.FAILED, h.now, "exit code 1")]
    assert of(c.ReportTrialEnd, cmds)[0].status is T.FAILED


def test_a_runner_that_cannot_run_again_is_replaced_not_acknowledged():
    h = Harness()
    a, _ = running_two(h)
    cmds = h.end(a, T.SYS_CANCELED, retire_runner=True, message="did not stop")
    assert of(c.RetireRunner, cmds) == [c.RetireRunner(0)]
    assert not of(c.AckTrial, cmds)
    assert of(c.StartRunner, cmds) == [c.StartRunner(0)]


# ---------------------------------------------------------------------------------------- limits
def test_max_trial_number_is_never_exceeded_and_ends_done():
    h = Harness(concurrency=2, max_trials=3)
    running_two(h)
    assert h.status is S.RUNNING
    cmds = h.end("t000")
    assert h.pending_request().count == 1
    cmds = h.answer()
    assert h.status is S.NO_MORE_TRIAL  # three created; two still running
    assert of(c.Persist, cmds)[-1].writes == (c.StatusChanged(S.NO_MORE_TRIAL),)
    h.end("t001")
    assert not of(c.RequestTrials, h.log[-5:])
    cmds = h.end("t002")
    assert h.status is S.DONE
    done = [w for w in h.writes(c.StatusChanged, cmds)]
    assert done == [c.StatusChanged(S.DONE)]
    # Runners are retired as trials end once no new trial can come, the last one at DONE.
    assert of(c.RetireRunner, cmds) and h.core.slots == {}
    assert len(h.writes(c.TrialCreated)) == 3


def test_a_request_never_asks_beyond_max_trial_number():
    h = Harness(concurrency=4, max_trials=2)
    h.start()
    assert h.pending_request().count == 1  # one runner was ready when asked
    h.answer()
    assert h.pending_request().count == 1
    h.answer()
    assert h.status is S.NO_MORE_TRIAL and len(h.writes(c.TrialCreated)) == 2


def test_too_many_jobs_in_an_answer_are_not_all_run():
    h = Harness(concurrency=2, max_trials=2)
    h.start()
    req = h.pending_request()
    jobs = tuple(e.Job({"parameter_id": i, "parameters": {}}) for i in range(5))
    h.send(e.AlgorithmAnswered(jobs, request_id=req.request_id))
    assert len(h.writes(c.TrialCreated)) == 2


def test_max_experiment_duration_stops_new_trials_but_lets_running_ones_end():
    h = Harness(max_duration=10.0)
    a, b = running_two(h)
    h.send(e.Tick(), dt=4.0)
    assert h.status is S.RUNNING and h.core.exec_duration == pytest.approx(4.0)
    h.send(e.Tick(), dt=7.0)
    assert h.status is S.NO_MORE_TRIAL
    h.end(a, dt=1.0)
    cmds = h.end(b, dt=1.0)
    assert h.status is S.DONE and not of(c.RequestTrials, cmds)
    # execDuration stops counting at DONE
    h.send(e.Tick(), dt=100.0)
    assert h.core.exec_duration == pytest.approx(13.0)


def test_exec_duration_is_persisted_at_most_once_a_second():
    h = Harness()
    h.start()
    for _ in range(10):
        h.send(e.Tick(), dt=0.25)
    saved = [w for w in h.writes(c.MetaChanged) if w.key == "exec_duration"]
    assert 2 <= len(saved) <= 3


def test_max_trial_duration_backstop_replaces_the_runner_and_cancels_the_trial():
    h = Harness(max_trial_seconds=5.0, max_retries=3)
    a, b = running_two(h)
    assert not of(c.RetireRunner, h.send(e.Tick(), dt=5.0 + TIMEOUT_GRACE_SECONDS - 1))
    cmds = h.send(e.Tick(), dt=2.0)
    assert sorted(x.slot for x in of(c.RetireRunner, cmds)) == [0, 1]
    assert not of(c.RetireRunner, h.send(e.Tick(), dt=1.0))  # once
    cmds = h.end(a, outcome=e.Outcome.RUNNER_LOST, message="actor died")
    # Not retried: the trial, not the runner, was the problem.
    assert [w.status for w in h.writes(c.TrialFinished, cmds)] == [T.SYS_CANCELED]
    assert "maxTrialDuration" in h.writes(c.TrialFinished, cmds)[0].message


# ---------------------------------------------------------------------------------------- retries
def test_a_lost_runner_fails_the_trial_without_retries():
    h = Harness(max_retries=0)
    a, _ = running_two(h)
    cmds = h.end(a, outcome=e.Outcome.RUNNER_LOST, message="trial runner died: node gone")
    assert h.writes(c.TrialFinished, cmds) == [c.TrialFinished(a, T.FAILED, h.now, "trial runner died: node gone")]
    assert of(c.RetireRunner, cmds) == [c.RetireRunner(0)] and of(c.StartRunner, cmds) == [c.StartRunner(0)]


def test_a_retry_runs_at_once_on_the_first_free_runner_as_the_next_attempt():
    h = Harness(max_retries=1)
    a, b = running_two(h)
    cmds = h.end(a, outcome=e.Outcome.RUNNER_LOST)
    assert not h.writes(c.TrialFinished, cmds)  # not ended: it will run again
    assert of(c.StartRunner, cmds) == [c.StartRunner(0)]
    assert not of(c.RequestTrials, cmds)  # the retry takes the slot, not a new trial
    # The other trial (b) is still running: the retry does not wait for it.
    cmds = h.send(e.RunnerReady(0))
    assert h.writes(c.TrialRestarted, cmds) == [c.TrialRestarted(a, 1, 0, h.now)]
    assert h.dispatched(cmds) == [c.DispatchTrial(a, 0, h.core.running[a].hyper_params, 0, 1)]
    assert b in h.core.running
    # A second loss exhausts the retries.
    cmds = h.end(a, outcome=e.Outcome.RUNNER_LOST, message="died again")
    assert [w.status for w in h.writes(c.TrialFinished, cmds)] == [T.FAILED]
    assert len(h.writes(c.TrialCreated)) == 2  # counted once


def test_a_retry_goes_before_new_trials_even_when_a_runner_frees_up_first():
    h = Harness(max_retries=1)
    a, b = running_two(h)
    h.end(a, outcome=e.Outcome.RUNNER_LOST)
    cmds = h.end(b)  # runner 1 frees up before runner 0 is replaced
    assert [(d.trial_id, d.attempt, d.slot) for d in h.dispatched(cmds)] == [(a, 1, 1)]
    assert not of(c.RequestTrials, cmds)


def test_a_stale_attempt_metrics_and_outcome_are_not_counted():
    h = Harness(max_retries=1)
    a, _ = running_two(h)
    h.send(e.MetricArrived(a, MetricType.PERIODICAL, 0, 0.1, attempt=0))
    h.end(a, outcome=e.Outcome.RUNNER_LOST)
    h.send(e.RunnerReady(0))
    # Late reports of attempt 0 arrive after attempt 1 started.
    assert h.send(e.MetricArrived(a, MetricType.PERIODICAL, 1, 0.2, attempt=0)) == []
    assert h.final(a, 0.9, attempt=0) == []
    assert h.send(e.TrialEnded(a, 0, e.Outcome.FINISHED, T.SUCCEEDED, attempt=0)) == []
    cmds = h.send(e.MetricArrived(a, MetricType.PERIODICAL, 0, 0.3, attempt=1))
    assert of(c.ReportIntermediate, cmds)[0].history == (0.3,)  # this attempt's history only
    assert of(c.ReportFinal, h.final(a, 0.7, attempt=1))[0].value == 0.7
    assert a in h.core.running


def test_no_retry_while_stopping():
    h = Harness(max_retries=2)
    a, b = running_two(h)
    h.send(e.StopRequested())
    cmds = h.end(a, outcome=e.Outcome.RUNNER_LOST)
    assert [w.status for w in h.writes(c.TrialFinished, cmds)] == [T.FAILED]


def test_a_kill_of_a_trial_waiting_for_its_retry_ends_it():
    h = Harness(max_retries=1, concurrency=1)
    h.start()
    h.answer()
    h.end("t000", outcome=e.Outcome.RUNNER_LOST)
    cmds = h.send(e.KillRequested("t000"))
    assert [w.status for w in h.writes(c.TrialFinished, cmds)] == [T.USER_CANCELED]
    assert of(c.ReportTrialEnd, cmds)
    assert not h.dispatched(h.send(e.RunnerReady(0)))[:0]


# ---------------------------------------------------------------------------------------- metrics
def test_one_final_per_trial_reaches_the_algorithm():
    h = Harness()
    a, _ = running_two(h)
    assert of(c.ReportFinal, h.final(a, 0.5, seq=0)) == [c.ReportFinal(a, h.core.running[a].hyper_params, 0.5, 0)]
    assert h.final(a, 0.6, seq=1) == []


def test_intermediates_carry_the_history_for_the_assessor():
    h = Harness()
    a, _ = running_two(h)
    for i, v in enumerate([0.1, 0.2, 0.3]):
        cmds = h.send(e.MetricArrived(a, MetricType.PERIODICAL, i, v))
    assert of(c.ReportIntermediate, cmds)[0].history == (0.1, 0.2, 0.3)


def test_a_final_that_arrives_just_after_its_trial_ended_still_reaches_the_algorithm():
    h = Harness()
    a, _ = running_two(h)
    h.end(a)
    assert of(c.ReportFinal, h.final(a, 0.4))


def test_a_metric_of_an_unknown_trial_is_ignored():
    h = Harness()
    running_two(h)
    assert h.final("nobody", 0.4) == []


def test_a_malformed_metric_fails_its_trial_with_the_reason():
    h = Harness()
    a, _ = running_two(h)
    cmds = h.send(e.MetricRejected(a, "final result rejected: too big"))
    assert h.writes(c.TrialNote, cmds) == [c.TrialNote(a, "final result rejected: too big")]
    assert of(c.StopTrial, cmds) == [c.StopTrial(a, 0, T.FAILED, "final result rejected: too big")]
    # The trial had already exited 0: it still ends FAILED, with the reason once.
    cmds = h.end(a, T.SUCCEEDED)
    assert h.writes(c.TrialFinished, cmds) == [c.TrialFinished(a, T.FAILED, h.now, "final result rejected: too big")]


def test_assessor_bad_verdict_stops_the_trial_early():
    h = Harness()
    a, b = running_two(h)
    assert h.send(e.AssessorVerdict(a, True)) == []
    assert of(c.StopTrial, h.send(e.AssessorVerdict(a, False))) == [
        c.StopTrial(a, 0, T.EARLY_STOPPED, "stopped early by the assessor")]
    h.send(e.StopRequested())
    assert not of(c.StopTrial, h.send(e.AssessorVerdict(b, False)))


# ---------------------------------------------------------------------------------------- algorithm
def test_no_more_trials_ends_the_experiment_once_running_trials_finish():
    h = Harness()
    a, b = running_two(h)
    h.end(a)
    cmds = h.answer(0, no_more=True)
    assert h.status is S.NO_MORE_TRIAL and c.MetaChanged("exhausted", True) in h.writes(c.MetaChanged, cmds)
    h.end(b)
    assert h.status is S.DONE


def test_an_empty_answer_while_trials_run_is_not_the_end():
    """PBT between synchronous steps: empty while the step's trials run."""
    h = Harness()
    a, b = running_two(h)
    h.end(a)
    cmds = h.answer(0)
    assert h.status is S.RUNNING and not h.core.exhausted
    assert not of(c.RequestTrials, cmds)  # quiet until something changes
    cmds = h.end(b)
    req = of(c.RequestTrials, cmds)
    assert req and req[0].count == 2
    # Nothing runs: now an empty answer is the end.
    h.answer(0)
    assert h.status is S.DONE


def test_trial_end_racing_generate_does_not_end_pbt_early():
    """The race fixed in b89b7f9: the last trial of a step ends while a generate() asked
    when it was still running is in flight.  The empty answer must not end the experiment:
    it was asked while a trial ran, and the trial end went to the tuner before the next ask."""
    h = Harness(concurrency=2)
    a, b = running_two(h)
    h.end(a)
    in_flight = h.pending_request()  # asked while b ran
    cmds = h.end(b)
    assert of(c.ReportTrialEnd, cmds) and not of(c.RequestTrials, cmds)
    h.answer(0, request=in_flight)  # the tuner had not seen b's end: empty
    assert h.status is S.RUNNING and not h.core.exhausted
    nxt = h.pending_request()
    assert nxt.request_id != in_flight.request_id and nxt.count == 2
    cmds = h.answer(2, request=nxt)  # next step
    assert len(h.dispatched(cmds)) == 2 and h.status is S.RUNNING


def test_advisor_extra_jobs_wait_for_a_runner_and_unprompted_jobs_run():
    h = Harness(concurrency=1)
    h.start()
    req = h.pending_request()
    jobs = tuple(e.Job({"parameter_id": i, "parameter_source": "algorithm", "parameters": {}}) for i in range(3))
    cmds = h.send(e.AlgorithmAnswered(jobs, empty_means_no_more=False, request_id=req.request_id))
    assert len(h.dispatched(cmds)) == 1 and len(h.core.queue) == 2
    # NO while jobs are queued: they still run.
    h.send(e.AlgorithmAnswered((), no_more=True, empty_means_no_more=False))
    assert h.status is S.RUNNING
    h.end("t000")
    h.end("t001")
    assert h.status is S.NO_MORE_TRIAL
    h.end("t002")
    assert h.status is S.DONE and len(h.writes(c.TrialCreated)) == 3


def test_an_advisor_empty_answer_is_not_the_end():
    h = Harness(concurrency=1)
    h.start()
    h.send(e.AlgorithmAnswered((), empty_means_no_more=False, request_id=h.pending_request().request_id))
    assert h.status is S.RUNNING and not h.core.exhausted


def test_an_algorithm_kill_stops_the_trial():
    h = Harness()
    a, _ = running_two(h)
    cmds = h.send(e.AlgorithmAnswered((), stop=(a,), empty_means_no_more=False))
    assert of(c.StopTrial, cmds) == [c.StopTrial(a, 0, T.USER_CANCELED, "killed by user")]


# ---------------------------------------------------------------------------------------- stop / error
def test_stop_cancels_running_trials_then_releases_everything():
    h = Harness()
    a, b = running_two(h)
    cmds = h.send(e.StopRequested())
    assert h.status is S.STOPPING
    assert sorted(x.trial_id for x in of(c.StopTrial, cmds)) == [a, b]
    assert all(x.status is T.USER_CANCELED for x in of(c.StopTrial, cmds))
    h.end(a, T.USER_CANCELED, message="experiment stopped")
    assert h.status is S.STOPPING
    cmds = h.end(b, T.USER_CANCELED)
    assert h.status is S.STOPPED and of(c.Finish, cmds) == [c.Finish(S.STOPPED)]
    assert h.send(e.StopRequested()) == [] or not of(c.Finish, h.log[-1:])


def test_stop_deadline_records_unfinished_trials_as_canceled():
    h = Harness()
    a, b = running_two(h)
    h.send(e.StopRequested())
    cmds = h.send(e.StopDeadline(), dt=10)
    assert sorted(w.trial_id for w in h.writes(c.TrialFinished, cmds)) == [a, b]
    assert of(c.Finish, cmds) == [c.Finish(S.STOPPED)]
    assert h.send(e.TrialEnded(a, 0, e.Outcome.FINISHED, T.USER_CANCELED)) == []


def test_stop_of_a_done_experiment_stays_done():
    h = Harness(max_trials=1, concurrency=1)
    h.start()
    h.answer()
    h.end("t000")
    assert h.status is S.DONE
    cmds = h.send(e.StopRequested())
    assert h.status is S.DONE and of(c.Finish, cmds) == [c.Finish(S.DONE)]


def test_stop_before_start_finishes_at_once():
    h = Harness()
    cmds = h.send(e.StopRequested())
    assert of(c.Finish, cmds) == [c.Finish(S.STOPPED)]
    assert h.send(e.Started()) == []


def test_failure_goes_to_error_with_the_reason_and_cancels_trials():
    h = Harness()
    a, b = running_two(h)
    cmds = h.send(e.Failed("store write failed: database or disk is full"))
    assert h.status is S.ERROR
    assert h.writes(c.StatusChanged, cmds) == [c.StatusChanged(S.ERROR, ("store write failed: database or disk is full",))]
    assert all(x.status is T.SYS_CANCELED for x in of(c.StopTrial, cmds)) and len(of(c.StopTrial, cmds)) == 2
    cmds = h.end(a, T.SYS_CANCELED)
    assert not of(c.RequestTrials, cmds) and not h.dispatched(cmds)
    cmds = h.send(e.Failed("again"))
    assert h.writes(c.StatusChanged, cmds)[0].errors == ("store write failed: database or disk is full", "again")
    # Stopping an experiment in ERROR keeps ERROR.
    h.send(e.StopRequested())
    cmds = h.end(b, T.SYS_CANCELED)
    assert h.status is S.ERROR and of(c.Finish, cmds) == [c.Finish(S.ERROR)]


def test_setup_failure_before_start_is_error_and_start_does_not_undo_it():
    h = Harness()
    h.send(e.Failed("algorithm setup failed: boom"))
    assert h.status is S.ERROR
    assert h.send(e.Started(resume=True)) == [] and h.status is S.ERROR


# ---------------------------------------------------------------------------------------- updates
def test_raising_concurrency_starts_runners_and_lowering_retires_idle_ones():
    h = Harness(concurrency=2)
    a, b = running_two(h)
    cmds = h.send(e.UpdateRequested("trialConcurrency", 4))
    assert [x.slot for x in of(c.StartRunner, cmds)] == [2, 3]
    h.ready_new_runners(cmds)
    h.answer()
    h.answer()
    assert len(h.core.running) == 4
    cmds = h.send(e.UpdateRequested("trialConcurrency", 1))
    assert not of(c.RetireRunner, cmds)  # all busy
    cmds = h.end("t003")
    assert of(c.RetireRunner, cmds) == [c.RetireRunner(3)]
    assert not of(c.RequestTrials, cmds)


def test_raising_max_trial_number_after_done_runs_again():
    h = Harness(max_trials=1, concurrency=1)
    h.start()
    h.answer()
    h.end("t000")
    assert h.status is S.DONE
    cmds = h.send(e.UpdateRequested("maxTrialNumber", 2))
    assert h.status is S.RUNNING and of(c.StartRunner, cmds)
    h.ready_new_runners(cmds)
    cmds = h.answer()
    assert [d.sequence_id for d in h.dispatched(cmds)] == [1]


def test_a_new_search_space_brings_an_exhausted_tuner_back():
    h = Harness(concurrency=1)
    h.start()
    h.answer(0, no_more=True)
    assert h.status is S.DONE
    cmds = h.send(e.UpdateRequested("searchSpace", {"x": {"_type": "choice", "_value": [1]}}))
    assert h.status is S.RUNNING and c.MetaChanged("exhausted", False) in h.writes(c.MetaChanged, cmds)


@pytest.mark.parametrize("field,value", [("trialConcurrency", 0), ("trialConcurrency", True),
                                         ("trialConcurrency", 1.5), ("maxTrialNumber", 0),
                                         ("maxExperimentDuration", -1), ("maxExperimentDuration", float("nan")),
                                         ("trialCommand", "x")])
def test_bad_updates_are_refused_naming_the_field(field, value):
    h = Harness()
    h.start()
    with pytest.raises(ValueError, match=field if field != "trialCommand" else "cannot update"):
        h.send(e.UpdateRequested(field, value))


def test_kill_stops_a_running_trial_and_ignores_unknown_ones():
    h = Harness()
    a, _ = running_two(h)
    assert of(c.StopTrial, h.send(e.KillRequested(a))) == [c.StopTrial(a, 0, T.USER_CANCELED, "killed by user")]
    assert h.send(e.KillRequested("nobody")) == []


# ---------------------------------------------------------------------------------------- recovery
def test_recovered_trials_and_runners_are_adopted_not_restarted():
    h = Harness(status=S.RUNNING, next_sequence=2, concurrency=3)
    h.send(e.RecoveredTrial("old01", 4, {"parameter_id": 4, "parameters": {}}, 1, 0, 0.0, (0.1,)))
    h.send(e.RecoveredRunner(0))
    cmds = h.send(e.Started())
    assert [x.slot for x in of(c.StartRunner, cmds)] == [2]  # 0 is adopted, 1 runs old01
    assert h.core.next_sequence == 5
    h.send(e.RunnerReady(0))
    assert h.pending_request().parameter_ids == (5,)
    cmds = h.send(e.TrialEnded("old01", 1, e.Outcome.FINISHED, T.SUCCEEDED))
    assert h.writes(c.TrialFinished, cmds)[0].trial_id == "old01"


def test_an_unknown_command_type_is_a_programming_error():
    core = ExperimentCore(Limits(1), lambda: "x", now=0.0)
    with pytest.raises(TypeError):
        core.handle(object(), 0.0)
