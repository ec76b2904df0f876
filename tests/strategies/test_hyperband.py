"""Hyperband: bracket arithmetic and full runs through the advisor protocol."""
from __future__ import annotations

import math

import pytest

import nniray
from nniray.runtime.msg_dispatcher_base import CommandType, MetricType
from nniray.search_space import SearchSpaceError
from nniray.strategies.hyperband import TRIAL_BUDGET, Hyperband, bracket_table, compute_s_max
from nniray.utils import MetricError

SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "opt": {"_type": "choice", "_value": ["adam", "sgd"]},
    "units": {"_type": "randint", "_value": [8, 64]},
    "lr": {"_type": "qloguniform", "_value": [0.001, 1, 0.001]},
    "w": {"_type": "normal", "_value": [0, 1]},
}


# -- bracket arithmetic ---------------------------------------------------------------------

def test_bracket_table_r81_eta3_exact():
    # s_max = 4; n = ceil((s_max+1)/(s+1) * eta^s), r = R * eta^-s, round i keeps floor(n/eta^i)
    # with budget floor(r*eta^i).  This is what NNI's code (and Li et al.'s paper) compute.
    assert bracket_table(81, 3) == {
        4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        3: [(34, 3), (11, 9), (3, 27), (1, 81)],
        2: [(15, 9), (5, 27), (1, 81)],
        1: [(8, 27), (2, 81)],
        0: [(5, 81)],
    }


def test_bracket_table_agrees_with_nni_doc_table_where_the_doc_is_consistent():
    # NNI's doc table (R=81, eta=3).  Its round-0 n for s=3,2,1 (27, 9, 6) contradicts its own
    # formula; every budget r, the round counts and the s=4 and s=0 brackets match exactly.
    doc = {
        4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        3: [(27, 3), (9, 9), (3, 27), (1, 81)],
        2: [(9, 9), (3, 27), (1, 81)],
        1: [(6, 27), (2, 81)],
        0: [(5, 81)],
    }
    ours = bracket_table(81, 3)
    assert ours.keys() == doc.keys()
    for s in doc:
        assert [r for _, r in ours[s]] == [r for _, r in doc[s]]  # budgets
        assert len(ours[s]) == len(doc[s]) == s + 1                 # "bucket 4 has 5 rounds"
    assert ours[4] == doc[4] and ours[0] == doc[0]
    assert ours[1][1] == doc[1][1] and [row[-1] for row in ours.values()] == [row[-1] for row in doc.values()]


def test_default_r60_table_and_s_max():
    assert compute_s_max(60, 3) == 3
    assert compute_s_max(81, 3) == 4  # log(81, 3) is 3.9999999999999996 in floating point
    assert bracket_table(60, 3) == {
        3: [(27, 2), (9, 6), (3, 20), (1, 60)],
        2: [(12, 6), (4, 20), (1, 60)],
        1: [(6, 20), (2, 60)],
        0: [(4, 60)],
    }


# -- a fake runtime -------------------------------------------------------------------------

class Driver:
    """Drives an advisor through the MsgDispatcherBase protocol like the runtime does."""

    def __init__(self, advisor, objective):
        self.adv = advisor
        self.objective = objective
        self.started: list[dict] = []
        self.no_more = False
        self.adv.handle_initialize(SPACE)
        assert self.adv.drain() == [(CommandType.Initialized, "")]

    def request(self, n: int) -> list[dict]:
        self.adv.handle_request_trial_jobs(n)
        jobs = []
        for cmd, data in self.adv.drain():
            if cmd == CommandType.NoMoreTrialJobs:
                self.no_more = True
            else:
                assert cmd == CommandType.NewTrialJob
                job = nniray.load(data)
                assert job["parameter_source"] == "algorithm"
                jobs.append(job)
        assert len(jobs) <= n
        self.started += jobs
        return jobs

    def finish(self, job: dict, value=None, report=True, event="SUCCEEDED"):
        if report:
            v = self.objective(job["parameters"]) if value is None else value
            self.adv.handle_report_metric_data({
                "parameter_id": job["parameter_id"], "trial_job_id": f"t{job['parameter_id']}",
                "type": MetricType.FINAL, "sequence": 0, "value": nniray.dump(v)})
        self.adv.handle_trial_end({"trial_job_id": f"t{job['parameter_id']}", "event": event,
                                   "hyper_params": nniray.dump(job)})

    def run(self, concurrency: int, max_steps: int = 100000) -> None:
        running: list[dict] = []
        for _ in range(max_steps):
            running += self.request(concurrency - len(running))
            if self.no_more:
                assert not running
                return
            assert running, "advisor sent nothing while nothing runs"
            self.finish(running.pop(0))
        raise AssertionError("run did not end")


def objective(p):
    return p["x"]


def test_protocol_initialize_and_request_exactly_n():
    d = Driver(Hyperband(R=9, eta=3, seed=0), objective)
    jobs = d.request(4)
    assert len(jobs) == 4
    for job in jobs:
        assert isinstance(job["parameter_id"], str)
        s, i, k = map(int, job["parameter_id"].split("_"))
        assert (s, i) == (2, 0)
        assert job["parameters"][TRIAL_BUDGET] == 1
        assert set(job["parameters"]) == set(SPACE) | {TRIAL_BUDGET}
        assert 8 <= job["parameters"]["units"] < 64 and isinstance(job["parameters"]["units"], int)


@pytest.mark.parametrize("exec_mode", ["parallelism", "serial"])
def test_full_run_promotes_top_one_over_eta(exec_mode):
    hb = Hyperband(R=27, eta=3, seed=1, exec_mode=exec_mode)
    d = Driver(hb, objective)
    d.run(concurrency=5)
    table = bracket_table(27, 3)
    assert len(d.started) == sum(n for rounds in table.values() for n, _ in rounds)
    by_round: dict[tuple[int, int], list[dict]] = {}
    for job in d.started:
        s, i, _ = map(int, job["parameter_id"].split("_"))
        by_round.setdefault((s, i), []).append(job)
    for s, rounds in table.items():
        for i, (n, r) in enumerate(rounds):
            jobs = by_round[(s, i)]
            assert len(jobs) == n
            assert all(j["parameters"][TRIAL_BUDGET] == r for j in jobs)
            if i:
                # the promoted configs are exactly the best n of the previous round, same config number
                prev = sorted(by_round[(s, i - 1)], key=lambda j: -j["parameters"]["x"])[:n]
                assert sorted(j["parameter_id"].split("_")[2] for j in jobs) == \
                    sorted(j["parameter_id"].split("_")[2] for j in prev)
                prev_params = {j["parameter_id"].split("_")[2]: j["parameters"] for j in prev}
                for j in jobs:
                    p = dict(prev_params[j["parameter_id"].split("_")[2]])
                    p[TRIAL_BUDGET] = r
                    assert j["parameters"] == p
    assert hb.is_done()


def test_minimize_promotes_smallest():
    hb = Hyperband(R=9, eta=3, seed=2, optimize_mode="minimize")
    d = Driver(hb, objective)
    jobs = d.request(9)
    for job in jobs:
        d.finish(job)
    promoted = d.request(9)
    best = sorted(jobs, key=lambda j: j["parameters"]["x"])[:3]
    assert {j["parameter_id"].split("_")[2] for j in promoted[:3]} == {j["parameter_id"].split("_")[2] for j in best}
    assert all(j["parameter_id"].startswith("2_1_") for j in promoted[:3])


def test_serial_waits_for_the_bracket_and_parallelism_does_not():
    for mode, expect_next_bracket in (("serial", False), ("parallelism", True)):
        d = Driver(Hyperband(R=9, eta=3, seed=0, exec_mode=mode), objective)
        first = d.request(9)
        assert len(first) == 9
        more = d.request(3)
        if expect_next_bracket:
            assert [j["parameter_id"].split("_")[0] for j in more] == ["1", "1", "1"]
        else:
            assert more == [] and not d.no_more  # nothing now, but not done


def test_serial_opens_next_bracket_only_after_last_round_ends():
    d = Driver(Hyperband(R=9, eta=3, seed=0, exec_mode="serial"), objective)
    for job in d.request(9):
        d.finish(job)
    round1 = d.request(9)
    assert [j["parameter_id"][:4] for j in round1] == ["2_1_"] * 3
    for job in round1:
        d.finish(job)
    last = d.request(9)
    assert len(last) == 1 and last[0]["parameter_id"].startswith("2_2_")
    assert d.request(1) == []
    d.finish(last[0])
    nxt = d.request(1)
    assert nxt[0]["parameter_id"].startswith("1_0_")


def test_failed_trial_counts_as_worst_and_round_completes():
    d = Driver(Hyperband(R=9, eta=3, seed=3), objective)
    jobs = d.request(9)
    best = max(jobs, key=lambda j: j["parameters"]["x"])
    for job in jobs:
        # the best config fails without any result: it must not be promoted
        d.finish(job, report=job is not best, event="FAILED" if job is best else "SUCCEEDED")
    promoted = [j for j in d.request(9) if j["parameter_id"].startswith("2_1_")]
    assert len(promoted) == 3
    assert best["parameter_id"].split("_")[2] not in {j["parameter_id"].split("_")[2] for j in promoted}


def test_intermediate_result_ranks_when_no_final_and_final_wins():
    hb = Hyperband(R=3, eta=3, seed=0)  # s_max=1: bracket 1 has 3 configs at budget 1
    d = Driver(hb, objective)
    a, b, c = d.request(3)
    report = hb.handle_report_metric_data
    # a: intermediate 0.9 then final 0.1 -> 0.1; b: only intermediates, latest 0.5; c: final 0.3
    report({"parameter_id": a["parameter_id"], "trial_job_id": "a", "type": MetricType.PERIODICAL, "sequence": 0,
            "value": "0.9"})
    report({"parameter_id": a["parameter_id"], "trial_job_id": "a", "type": MetricType.FINAL, "sequence": 0,
            "value": "0.1"})
    report({"parameter_id": b["parameter_id"], "trial_job_id": "b", "type": MetricType.PERIODICAL, "sequence": 1,
            "value": "0.5"})
    report({"parameter_id": b["parameter_id"], "trial_job_id": "b", "type": MetricType.PERIODICAL, "sequence": 0,
            "value": "0.95"})  # out of order: older sequence does not overwrite
    report({"parameter_id": c["parameter_id"], "trial_job_id": "c", "type": MetricType.FINAL, "sequence": 0,
            "value": nniray.dump({"default": 0.3, "other": 1})})
    for job in (a, b, c):
        d.finish(job, report=False)
    (promoted,) = d.request(1)
    assert promoted["parameter_id"].split("_")[2] == b["parameter_id"].split("_")[2]


def test_duplicate_trial_end_counts_once_and_unknown_ids_are_ignored():
    d = Driver(Hyperband(R=9, eta=3, seed=0), objective)
    jobs = d.request(9)
    d.finish(jobs[0])
    d.finish(jobs[0], report=False)
    d.adv.handle_report_metric_data({"parameter_id": 17, "trial_job_id": "x", "type": MetricType.FINAL,
                                     "sequence": 0, "value": "1.0"})
    d.adv.handle_trial_end({"trial_job_id": "x", "event": "SUCCEEDED",
                            "hyper_params": nniray.dump({"parameter_id": "customized", "parameters": {}})})
    for job in jobs[1:8]:
        d.finish(job)
    assert [j for j in d.request(9) if j["parameter_id"].startswith("2_1_")] == []  # 8 of 9 ended
    d.finish(jobs[8])
    assert len([j for j in d.request(9) if j["parameter_id"].startswith("2_1_")]) == 3


def test_no_more_trial_jobs_only_when_everything_finished():
    d = Driver(Hyperband(R=3, eta=3, seed=0), objective)
    running = d.request(10)
    assert len(running) == 5  # bracket 1 (3 configs at 1) and bracket 0 (2 configs at 3)
    for job in running[:-1]:
        d.finish(job)
    extra = d.request(10)  # bracket 1's promoted config
    assert len(extra) == 1 and not d.no_more
    d.finish(running[-1])
    assert d.request(10) == [] and not d.no_more  # the promoted config still runs
    d.finish(extra[0])
    assert d.request(10) == [] and d.no_more


def test_seed_reproducible():
    a = Driver(Hyperband(R=9, seed=5), objective).request(9)
    b = Driver(Hyperband(R=9, seed=5), objective).request(9)
    assert a == b


def test_bad_class_args_and_space():
    with pytest.raises(ValueError, match="exec_mode"):
        Hyperband(exec_mode="fast")
    with pytest.raises(ValueError, match="eta must be an integer >= 2"):
        Hyperband(eta=1)
    with pytest.raises(ValueError, match="R must be an integer"):
        Hyperband(R=2.5)
    with pytest.raises(ValueError, match="optimize_mode"):
        Hyperband(optimize_mode="max")
    with pytest.raises(SearchSpaceError, match="TRIAL_BUDGET"):
        Hyperband().handle_initialize({"TRIAL_BUDGET": {"_type": "choice", "_value": [1]}})
    with pytest.raises(SearchSpaceError):
        Hyperband().handle_initialize({"x": {"_type": "uniform", "_value": [1, 0]}})


def test_bad_metric_is_a_clear_error():
    d = Driver(Hyperband(R=9, seed=0), objective)
    job = d.request(1)[0]
    with pytest.raises(MetricError, match="default"):
        d.adv.handle_report_metric_data({"parameter_id": job["parameter_id"], "trial_job_id": "t",
                                         "type": MetricType.FINAL, "sequence": 0, "value": nniray.dump({"acc": 1})})


def test_registry_builds_it():
    from nniray.strategies.registry import create_algorithm
    adv = create_algorithm("advisor", "Hyperband", {"R": 27, "eta": 3, "optimize_mode": "minimize"})
    assert isinstance(adv, Hyperband) and adv.s_max == 3 and math.isclose(adv.R, 27)


def test_multi_phase_trial_runs_configs_one_after_another():
    hb = Hyperband(R=3, eta=3, seed=0)  # bracket 1: 3 configs at 1 -> 1 at 3; bracket 0: 2 at 3
    hb.handle_initialize(SPACE)
    hb.drain()
    hb.handle_request_trial_jobs(1)
    (cmd, data), = hb.drain()
    assert cmd == CommandType.NewTrialJob
    first = nniray.load(data)
    current, seen, index = first, [first["parameter_id"]], 0
    while True:
        hb.handle_report_metric_data({"parameter_id": current["parameter_id"], "trial_job_id": "T", "sequence": 0,
                                      "type": MetricType.FINAL, "value": nniray.dump(current["parameters"]["x"])})
        index += 1
        hb.handle_report_metric_data({"parameter_id": current["parameter_id"], "trial_job_id": "T",
                                      "type": MetricType.REQUEST_PARAMETER, "parameter_index": index, "value": ""})
        out = hb.drain()
        if not out:
            break
        (cmd, data), = out
        assert cmd == CommandType.SendTrialJobParameter
        current = nniray.load(data)
        assert current["trial_job_id"] == "T" and current["parameter_index"] == index
        seen.append(current["parameter_id"])
    assert [p.rsplit("_", 1)[0] for p in seen] == ["1_0", "1_0", "1_0", "1_1", "0_0", "0_0"]
    hb.handle_trial_end({"trial_job_id": "T", "event": "SUCCEEDED", "hyper_params": nniray.dump(first)})
    assert hb.is_done() and hb._unsatisfied == []
    hb.handle_request_trial_jobs(1)
    assert [c for c, _ in hb.drain()] == [CommandType.NoMoreTrialJobs]
