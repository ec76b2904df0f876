"""The converters from runner replies to events: where untrusted trial output is checked."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from nniray.runtime import events as e
from nniray.runtime.status import MetricType, TrialStatus as T


def rec(**kw):
    base = {"trial_id": "abcde", "type": "FINAL", "sequence": 0, "value": 0.5, "parameter_id": 3}
    base.update(kw)
    return base


def test_a_good_final_becomes_a_metric_event():
    ev = e.metric_event(rec(attempt=1, timestamp=12.5))
    assert ev == e.MetricArrived("abcde", MetricType.FINAL, 0, 0.5, 3, 1, 12.5)


def test_an_attempt_less_record_is_the_current_attempt():
    assert e.metric_event(rec()).attempt is None


@pytest.mark.parametrize("value,words", [
    (int("9" * 400), "float"),                  # OverflowError in float(): the controller used to wedge
    (float("nan"), "JSON"), (float("inf"), "JSON"),
    ("high", "not a number"), ({"acc": 1}, "default"), (True, "not a number"), ([1, 2], "not a number"),
])
def test_a_bad_final_is_rejected_with_the_reason(value, words):
    ev = e.metric_event(rec(value=value))
    assert isinstance(ev, e.MetricRejected) and ev.trial_id == "abcde"
    assert words in ev.reason


def test_an_int_too_long_to_print_is_still_rejected_cleanly():
    ev = e.metric_event(rec(value=10 ** 5000))
    assert isinstance(ev, e.MetricRejected)


@pytest.mark.parametrize("raw", [rec(type="BOGUS"), rec(sequence=-1), rec(sequence="1"), rec(sequence=True),
                                 rec(attempt="x"), rec(type="PERIODICAL", value=float("nan"))])
def test_a_malformed_record_is_rejected(raw):
    assert isinstance(e.metric_event(raw), e.MetricRejected)


@pytest.mark.parametrize("raw", [None, 5, [], {"type": "FINAL"}, {"trial_id": 7}])
def test_a_record_naming_no_trial_is_dropped(raw):
    assert e.metric_event(raw) is None


def test_a_periodical_may_be_any_json():
    ev = e.metric_event(rec(type="PERIODICAL", value={"loss": 1, "acc": [1, 2]}, timestamp="bad"))
    assert isinstance(ev, e.MetricArrived) and ev.timestamp is None


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["trial_id", "type", "sequence", "value", "attempt", "timestamp",
                                        "parameter_id"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                                    lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=3), x,
                                                                                        max_size=3),
                                    max_leaves=8)))
def test_no_record_can_make_the_converter_raise(raw):
    ev = e.metric_event(raw)
    assert ev is None or isinstance(ev, (e.MetricArrived, e.MetricRejected))
    if isinstance(ev, e.MetricArrived) and ev.type is MetricType.FINAL:
        v = ev.value["default"] if isinstance(ev.value, dict) else ev.value
        assert math.isfinite(float(v))


def test_outcomes_are_typed():
    assert e.outcome_event({"trial_id": "a", "status": "SUCCEEDED", "end_time": 3.0}, 1, 0) == \
        e.TrialEnded("a", 1, e.Outcome.FINISHED, T.SUCCEEDED, "", 3.0, False, 0)
    assert e.outcome_event({"trial_id": "a", "status": "UNKNOWN"}, 1).outcome is e.Outcome.NOT_FOUND
    assert e.outcome_event({"trial_id": "a", "status": "RUNNER_DIED", "message": "x"}, 1).outcome is \
        e.Outcome.RUNNER_LOST
    ev = e.outcome_event({"trial_id": "a", "status": "SYS_CANCELED", "retire_runner": True}, 2)
    assert ev.retire_runner and ev.status is T.SYS_CANCELED


@pytest.mark.parametrize("status", ["RUNNING", "WAITING", "weird", None])
def test_an_outcome_with_a_non_final_status_fails_the_trial(status):
    ev = e.outcome_event({"trial_id": "a", "status": status}, 0)
    assert ev.status is T.FAILED and "runner reported status" in ev.message


def test_an_outcome_naming_no_trial_is_dropped():
    assert e.outcome_event({"status": "SUCCEEDED"}, 0) is None
