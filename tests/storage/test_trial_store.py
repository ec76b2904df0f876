"""The TrialStore read port, run over every backend (today: SQLite), against real files."""
from __future__ import annotations

import json
import math
import sqlite3
import time

import pytest

from nniray.storage import (ExperimentStore, MetricType, OptimizeMode, QueryError, SortOrder, StoreVersionError,
                            TrialQuery, TrialStatus)
from nniray.storage.sqlite_store import MIGRATIONS, SCHEMA


def _sqlite(tmp_path):
    return ExperimentStore(tmp_path)


BACKENDS = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path):
    s = BACKENDS[request.param](tmp_path)
    yield s
    s.close()


def fill(store, n=10, finals=True):
    """Trial i: x = i/10, opt = 'a' (odd) or 'b'; i PERIODICAL metrics; a dict final
    {default: (-1)^i * i, acc: n - i} for all but the last trial, which stays RUNNING."""
    for i in range(n):
        tid = f"trial{i:03d}"
        store.add_trial(tid, i, i, {"parameter_id": i, "parameter_source": "algorithm",
                                    "parameters": {"x": i / 10, "opt": "a" if i % 2 else "b", "dotted.name": i}},
                        status="RUNNING")
        store.update_trial(tid, start_time=1000.0 + i)
        for k in range(i):
            store.add_metric(tid, i, "PERIODICAL", k, {"default": k * 1.0, "loss": -k})
        if finals and i < n - 1:
            value = {"default": (-1) ** i * i, "acc": n - i}
            store.add_metric(tid, i, "FINAL", 0, value)
            store.update_trial(tid, final=value, status="SUCCEEDED" if i % 3 else "FAILED", end_time=1000.0 + 2 * i)


def ids(page):
    return [t.trial_id for t in page.items]


def test_page_sorted_by_final_puts_missing_values_last_in_both_orders(store):
    fill(store)
    desc = store.trials_page(TrialQuery(sort="final", order=SortOrder.DESC))
    assert [t.final_value for t in desc.items] == [8.0, 6.0, 4.0, 2.0, 0.0, -1.0, -3.0, -5.0, -7.0, None]
    asc = store.trials_page(TrialQuery(sort="final", order="asc"))
    assert [t.final_value for t in asc.items] == [-7.0, -5.0, -3.0, -1.0, 0.0, 2.0, 4.0, 6.0, 8.0, None]
    assert desc.total == asc.total == 10


def test_page_offsets_walk_the_same_order_without_gaps(store):
    fill(store, 23)
    for sort in ("final", "final.acc", "param.x", "duration", "sequenceId", "status", ):
        for order in ("asc", "desc"):
            whole = ids(store.trials_page(TrialQuery(sort=sort, order=order, limit=500)))
            pages = []
            for off in range(0, 23, 5):
                pages += ids(store.trials_page(TrialQuery(sort=sort, order=order, offset=off, limit=5)))
            assert pages == whole and len(set(whole)) == 23, (sort, order)
    assert store.trials_page(TrialQuery(offset=100)).items == []


def test_sort_by_dict_key_parameter_and_duration(store):
    fill(store)
    assert ids(store.trials_page(TrialQuery(sort="final.acc", order="asc")))[:3] == ["trial008", "trial007", "trial006"]
    assert ids(store.trials_page(TrialQuery(sort="param.x", order="desc")))[:2] == ["trial009", "trial008"]
    # a parameter whose name holds a dot is one key, not a path
    assert ids(store.trials_page(TrialQuery(sort="param.dotted.name", order="desc")))[0] == "trial009"
    by_duration = store.trials_page(TrialQuery(sort="duration", order="desc"))
    assert [t.duration for t in by_duration.items][:2] == [8.0, 7.0] and by_duration.items[-1].duration is None


def test_filters_by_status_id_and_parameter_value(store):
    fill(store)
    failed = store.trials_page(TrialQuery(statuses=(TrialStatus.FAILED,)))
    assert ids(failed) == ["trial000", "trial003", "trial006"] and failed.total == 3
    both = store.trials_page(TrialQuery(statuses=("FAILED", "RUNNING"), sort="final", order="desc"))
    assert ids(both) == ["trial006", "trial000", "trial003", "trial009"]
    assert ids(store.trials_page(TrialQuery(search="al00"))) == [f"trial00{i}" for i in range(10)]
    assert ids(store.trials_page(TrialQuery(search="7"))) == ["trial007"]  # id substring or sequence id
    assert ids(store.trials_page(TrialQuery(search="100%"))) == []  # LIKE wildcards are literal
    opt_a = store.trials_page(TrialQuery(params={"opt": "a"}, statuses=("SUCCEEDED",)))
    assert ids(opt_a) == ["trial001", "trial005", "trial007"] and opt_a.total == 3
    assert ids(store.trials_page(TrialQuery(params={"x": 0.3}))) == ["trial003"]
    assert store.trials_page(TrialQuery(params={"nosuch": 1})).total == 0


def test_page_lists_parameter_names_and_final_keys_as_columns(store):
    fill(store)
    page = store.trials_page(TrialQuery(limit=1))
    assert page.param_names == ["dotted.name", "opt", "x"] and page.final_keys == ["acc", "default"]


@pytest.mark.parametrize("bad", [dict(sort="bogus"), dict(limit=0), dict(limit=501), dict(offset=-1),
                                 dict(sort="param."), dict(limit=True)])
def test_bad_queries_name_the_field(bad):
    with pytest.raises(QueryError) as e:
        TrialQuery(**bad)
    assert next(iter(bad)).split(".")[0] in str(e.value)


def test_unknown_status_is_a_query_error(store):
    with pytest.raises(QueryError, match="status must be one of"):
        store.trials_page(TrialQuery(statuses=("DONE",)))


def test_counts_best_and_final_value(store):
    fill(store)
    assert store.counts_by_status() == {TrialStatus.SUCCEEDED: 6, TrialStatus.FAILED: 3, TrialStatus.RUNNING: 1}
    assert store.count() == 10 and store.count(("FAILED", "RUNNING")) == 4
    assert store.best_trial().trial_id == "trial008"
    assert store.best_trial(OptimizeMode.MINIMIZE).trial_id == "trial007"
    t = store.trial("trial004")
    assert t.final == {"default": 4, "acc": 6} and t.final_value == 4.0 and t.intermediate_count == 4
    assert t.status is TrialStatus.SUCCEEDED and t.parameters["opt"] == "b" and store.trial("nosuch") is None


def test_final_values_that_rank_as_nothing(store):
    store.add_trial("a", 0, 0, {"parameters": {}})
    store.add_trial("b", 1, 1, {"parameters": {}})
    store.add_trial("c", 2, 2, {"parameters": {}})
    store.update_trial("a", final=float("nan"))  # stored as Python's NaN text: not JSON for SQLite
    store.update_trial("b", final={"acc": 3})  # a dict without "default"
    store.update_trial("c", final=2.5)
    assert [store.trial(x).final_value for x in "abc"] == [None, None, 2.5]
    assert math.isnan(store.trial("a").final)
    assert store.best_trial().trial_id == "c"
    assert ids(store.trials_page(TrialQuery(sort="final.acc", order="desc"))) == ["b", "c", "a"]


def test_metrics_by_trial_type_range_and_latest(store):
    fill(store)
    m = store.trial_metrics("trial003")
    assert [(x.type, x.sequence) for x in m] == [(MetricType.PERIODICAL, 0), (MetricType.PERIODICAL, 1),
                                                  (MetricType.PERIODICAL, 2), (MetricType.FINAL, 0)]
    assert [x.value for x in store.trial_metrics("trial003", "FINAL")] == [{"default": -3, "acc": 7}]
    rng = store.metrics_in_sequence_range(2, 3)
    assert {x.trial_id for x in rng} == {"trial002", "trial003"} and len(rng) == 2 + 1 + 3 + 1
    latest = {x.trial_id: x for x in store.latest_metrics()}
    assert set(latest) == {f"trial{i:03d}" for i in range(10)}
    assert latest["trial003"].type is MetricType.FINAL and latest["trial009"].sequence == 8
    assert {k: [x.sequence for x in v] for k, v in store.finals_of(["trial001", "trial009"]).items()} == {"trial001": [0]}


def test_iterators_cross_batch_boundaries_in_order(store):
    fill(store, 25)
    assert [t.sequence_id for t in store.iter_trials(batch_size=4)] == list(range(25))
    assert [t.sequence_id for t in store.iter_trials(("FAILED",), batch_size=2)] == [0, 3, 6, 9, 12, 15, 18, 21]
    every = [m.id for m in store.iter_metrics(batch_size=7)]
    assert every == sorted(every) and len(every) == sum(range(25)) + 24
    assert len(list(store.iter_metrics("FINAL", batch_size=5))) == 24
    results = list(store.iter_completed_results(batch_size=3))
    assert [r["trialJobId"] for r in results] == [f"trial{i:03d}" for i in range(24)]
    assert results[2] == {"parameter": {"x": 0.2, "opt": "b", "dotted.name": 2}, "value": {"default": 2, "acc": 23},
                          "trialJobId": "trial002"}


def test_series_and_finals_are_thinned_to_the_point_budget(store):
    fill(store, 12)
    series = store.metric_series(["trial011", "trial002"], max_points=4)
    assert series["trial002"] == [(0, 0.0), (1, 1.0)]
    assert len(series["trial011"]) == 4 and series["trial011"][0] == (0, 0.0) and series["trial011"][-1] == (10, 10.0)
    assert store.metric_series(["trial011"], 50, key="loss")["trial011"][3] == (3, -3.0)
    total, pts = store.finals(max_points=5)
    assert total == 11 and len(pts) <= 5 and pts[0].sequence_id == 0
    total, pts = store.finals(max_points=100)
    assert [t.sequence_id for t in pts] == list(range(11))


def test_changes_feed_cursors(store):
    fill(store, 3)
    t0, m0 = store.cursors()
    assert store.changes_since(t0, m0).trials == [] and store.changes_since(t0, m0).metrics == []
    store.add_metric("trial002", 2, "PERIODICAL", 5, 1.5)
    store.update_trial("trial001", message="hello")
    ch = store.changes_since(t0, m0)
    # a new metric is in the metrics part only (it changes no trial column)
    assert [t.trial_id for t in ch.trials] == ["trial001"] and ch.trials[0].message == "hello"
    assert [(m.trial_id, m.value) for m in ch.metrics] == [("trial002", 1.5)]
    store.update_trial("trial002", status="SUCCEEDED")
    later = store.changes_since(ch.trial_cursor, ch.metric_cursor)
    assert [(t.trial_id, t.status, t.intermediate_count) for t in later.trials] == [("trial002", TrialStatus.SUCCEEDED, 3)]
    again = store.changes_since(later.trial_cursor, later.metric_cursor)
    assert again.trials == [] and again.metrics == []


def test_derived_columns_follow_writes_that_bypass_the_methods(store, tmp_path):
    """The counters are maintained by SQLite itself, so any writer (a batched one too) keeps them."""
    fill(store, 2)
    raw = sqlite3.connect(store.path)
    raw.executemany("INSERT INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp) VALUES(?,?,?,?,?,?)",
                    [("trial001", "1", "PERIODICAL", 10 + k, json.dumps(k), time.time()) for k in range(3)])
    raw.execute("UPDATE trials SET final=? WHERE trial_id='trial001'", (json.dumps({"default": 9, "new_key": 1}),))
    raw.commit()
    raw.close()
    t = store.trial("trial001")
    assert t.intermediate_count == 4 and t.final_value == 9.0
    assert "new_key" in store.final_keys()
    assert ids(store.trials_page(TrialQuery(sort="final.new_key", order="desc"))) == ["trial001", "trial000"]
    assert ids(store.trials_page(TrialQuery(sort="final.acc", order="desc"))) == ["trial000", "trial001"]


def test_legacy_dict_reads_keep_their_shape(store):
    fill(store, 3)
    d = store.get_trial("trial001")
    assert set(d) == {"trial_id", "sequence_id", "parameter_id", "hyper_params", "status", "submit_time",
                      "start_time", "end_time", "message", "final", "attempt", "node", "customized"}
    assert d["status"] == "SUCCEEDED" and d["final"] == {"default": -1, "acc": 2} and d["customized"] is False
    assert [t["trial_id"] for t in store.list_trials(("RUNNING",))] == ["trial002"]
    assert store.status_counts() == {"FAILED": 1, "SUCCEEDED": 1, "RUNNING": 1}
    assert [m["sequence"] for m in store.metrics("trial002", "PERIODICAL")] == [0, 1]
    assert store.intermediate_history("trial002") == [{"default": 0.0, "loss": 0}, {"default": 1.0, "loss": -1}]


def test_bad_status_write_is_refused(store):
    with pytest.raises(ValueError):
        store.add_trial("x", 0, 0, {"parameters": {}}, status="BOGUS")


def test_a_file_from_the_previous_schema_is_upgraded_and_backfilled(tmp_path):
    """A store written before the read path existed (no user_version): opening it, also read-only,
    adds the columns and fills them from the rows already there."""
    raw = sqlite3.connect(tmp_path / ExperimentStore.FILENAME)
    raw.executescript(SCHEMA)
    raw.execute("INSERT INTO trials(trial_id, sequence_id, parameter_id, hyper_params, status, submit_time, final) "
                "VALUES('old', 0, '0', ?, 'SUCCEEDED', 1.0, ?)",
                (json.dumps({"parameters": {"lr": 0.1}}), json.dumps({"default": 0.7, "f1": 0.5})))
    raw.executemany("INSERT INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp) VALUES(?,?,?,?,?,?)",
                    [("old", "0", "PERIODICAL", k, "0.5", 1.0) for k in range(3)] + [("old", "0", "FINAL", 0, "0.7", 2.0)])
    raw.commit()
    raw.close()
    ro = ExperimentStore(tmp_path, readonly=True)
    t = ro.trial("old")
    assert (t.intermediate_count, t.final_value) == (3, 0.7)
    assert ro.param_names() == ["lr"] and ro.final_keys() == ["default", "f1"]
    assert ids(ro.trials_page(TrialQuery(sort="param.lr"))) == ["old"]
    assert ro.trials_page(TrialQuery(params={"lr": 0.1})).total == 1
    assert ids(ro.trials_page(TrialQuery(sort="final.f1", order="desc"))) == ["old"]
    assert ro.latest_metrics()[0].type is MetricType.FINAL
    ro.close()
    rw = ExperimentStore(tmp_path)  # a second open does not migrate twice
    assert rw._db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    rw.add_metric("old", "0", "PERIODICAL", 3, 1.0)
    assert rw.trial("old").intermediate_count == 4
    rw.close()


def test_a_file_from_a_newer_nniray_is_refused(tmp_path):
    ExperimentStore(tmp_path).close()
    raw = sqlite3.connect(tmp_path / ExperimentStore.FILENAME)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreVersionError, match="upgrade nniray"):
        ExperimentStore(tmp_path, readonly=True)


def test_status_counts_follow_every_write(store):
    fill(store, 6)
    store.update_trial("trial005", status="USER_CANCELED")
    raw = sqlite3.connect(store.path)
    raw.execute("UPDATE trials SET status='EARLY_STOPPED' WHERE trial_id='trial001'")
    raw.execute("DELETE FROM trials WHERE trial_id='trial002'")
    raw.commit()
    raw.close()
    expect = {}
    for t in store.iter_trials():
        expect[t.status] = expect.get(t.status, 0) + 1
    assert store.counts_by_status() == expect and store.count() == 5
    assert store.count(("FAILED", "EARLY_STOPPED")) == expect[TrialStatus.FAILED] + 1


def test_sort_by_times_puts_missing_ones_last(store):
    fill(store, 5)
    store.update_trial("trial002", start_time=None)
    asc = ids(store.trials_page(TrialQuery(sort="startTime")))
    assert asc == ["trial000", "trial001", "trial003", "trial004", "trial002"]
    desc = ids(store.trials_page(TrialQuery(sort="endTime", order="desc")))
    assert desc[:4] == ["trial003", "trial002", "trial001", "trial000"] and desc[-1] == "trial004"
    assert ids(store.trials_page(TrialQuery(sort="status", limit=2))) == ["trial000", "trial003"]
