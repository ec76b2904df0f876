"""The web server of a real running experiment (`nniray create`: a daemon with Ray), route by
route: the token flow the CLI uses, a customized trial, a kill, the UI's routes on live data,
logs and trial files (also a trial directory replaced by a symlink out), then a read-only view.

The tests run in file order on one shared experiment (daemon launches are the slow part)."""
from __future__ import annotations

import json
import os
import stat
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))

from cli_helpers import TOKENS, Cli, free_port, rest, wait_status, write_experiment  # noqa: E402

MAX_TRIALS = 8


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    root = tmp_path_factory.mktemp("webdaemon")
    cli = Cli(root / "home", root)
    cfg = write_experiment(root / "proj", name="webapi", max_trials=MAX_TRIALS, concurrency=2, sleep=1.0)
    port = free_port()
    r = cli("create", "--config", str(cfg), "--port", str(port))
    try:
        assert r.returncode == 0, r.stderr
        exp_id = r.stdout.split("The experiment id is ")[1].split()[0]
        yield {"cli": cli, "port": port, "id": exp_id, "dir": root / "proj" / "exps" / exp_id, "root": root,
               "stdout": r.stdout}
    finally:
        cli.stop_all()


def until(fn, timeout=120.0, every=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def test_the_token_is_stored_privately_and_guards_changes(exp):
    tok_file = exp["dir"] / "token"
    assert tok_file.is_file() and stat.S_IMODE(os.stat(tok_file).st_mode) == 0o600
    token = tok_file.read_text().strip()
    assert TOKENS[exp["port"]] == token and len(token) >= 24
    assert f"http://127.0.0.1:{exp['port']}/?token={token}" in exp["stdout"]  # printed with the URL
    put = "/experiment?update_type=TRIAL_CONCURRENCY"
    code, body = rest(exp["port"], "PUT", put, {"params": {"trialConcurrency": 2}}, token="not-it")
    assert code == 401 and "token" in body["error"]
    code, _ = rest(exp["port"], "PUT", put, {"params": {"trialConcurrency": 2}})
    assert code == 200
    # the CLI finds the token by itself
    r = exp["cli"]("update", "concurrency", exp["id"], "-v", "2")
    assert r.returncode == 0, r.stderr


def test_a_customized_trial_runs_the_given_parameters(exp):
    port = exp["port"]
    code, body = rest(port, "POST", "/trial-jobs", {"parameters": {"x": 0.625, "sleep": 0.0}})
    assert code == 200, body
    assert set(body) == {"trialJobId", "sequenceId"}

    def ended():
        for j in rest(port, "GET", "/trial-jobs")[1]:
            hp = json.loads(j["hyperParameters"][0])
            if hp.get("parameter_source") == "customized" and j["status"] == "SUCCEEDED":
                return j, hp
        return None
    job, hp = until(ended)
    assert hp["parameters"] == {"x": 0.625, "sleep": 0.0}
    assert json.loads(json.loads(job["finalMetricData"][0]["data"]))["default"] == 0.625
    if body["trialJobId"] is not None:
        assert body["trialJobId"] == job["trialJobId"] and body["sequenceId"] == job["sequenceId"]
    code, bad = rest(port, "POST", "/trial-jobs", [1, 2])
    assert code == 400 and "object" in bad["error"]


def test_kill_a_running_trial(exp):
    port = exp["port"]

    def running():
        page = rest(port, "GET", "/trials/page?status=RUNNING")[1]
        return page["items"][0]["trialJobId"] if page["items"] else None
    tid = until(running)
    code, _ = rest(port, "DELETE", f"/trial-jobs/{tid}")
    assert code == 200
    row = until(lambda: (r := rest(port, "GET", f"/trials/{tid}/row")[1])["status"] != "RUNNING" and r)
    assert row["status"] == "USER_CANCELED"
    code, body = rest(port, "DELETE", f"/trial-jobs/{tid}")
    assert code == 400 and "not running" in body["error"]


def test_ui_routes_on_the_live_experiment(exp):
    port = exp["port"]
    assert wait_status(port, ("DONE",), timeout=180) == "DONE"
    s = rest(port, "GET", "/summary")[1]
    assert s["id"] == exp["id"] and s["experimentName"] == "webapi" and s["status"] == "DONE"
    assert s["total"] == MAX_TRIALS and s["counts"]["USER_CANCELED"] == 1 and s["readonly"] is False
    assert s["optimizeMode"] == "maximize" and s["trialConcurrency"] == 2 and s["maxTrialNumber"] == MAX_TRIALS
    page = rest(port, "GET", "/trials/page?sort=final&order=desc&limit=3")[1]
    finals = [r["final"] for r in page["items"]]
    assert page["total"] == MAX_TRIALS and finals == sorted(finals, reverse=True) and finals[0] == s["best"]["value"]
    assert page["columns"] == {"params": ["sleep", "x"], "final": ["default", "other"]}
    best = page["items"][0]
    assert best["finalDict"]["other"] == 1 and best["intermediateCount"] == 3 and best["duration"] > 0
    ms = rest(port, "GET", f"/trials/{best['trialJobId']}/metrics?type=PERIODICAL")[1]
    assert [m["sequence"] for m in ms] == [0, 1, 2]
    assert rest(port, "GET", f"/trials/{best['trialJobId']}/row")[1] == best
    series = rest(port, "GET", "/metrics/series?trials=all")[1]
    assert series["totalTrials"] == MAX_TRIALS and len(series["series"][best["trialJobId"]]) == 3
    pts = rest(port, "GET", "/trials/finals")[1]
    with_final = [r for r in rest(port, "GET", "/trials/page?limit=50")[1]["items"] if r["final"] is not None]
    assert pts["total"] == len(with_final) >= MAX_TRIALS - 1 and not pts["downsampled"]  # the killed one may have one


def test_nni_routes_keep_their_shapes(exp):
    port = exp["port"]
    jobs = rest(port, "GET", "/trial-jobs")[1]
    assert [j["sequenceId"] for j in jobs] == list(range(MAX_TRIALS))
    for j in jobs:
        assert {"trialJobId", "sequenceId", "status", "hyperParameters", "logPath", "stderrPath", "startTime"} <= set(j)
    stats = {s["trialJobStatus"]: s["trialJobNumber"] for s in rest(port, "GET", "/job-statistics")[1]}
    assert stats == {"SUCCEEDED": MAX_TRIALS - 1, "USER_CANCELED": 1}
    latest = rest(port, "GET", "/metric-data-latest")[1]
    # every trial that reported anything (the killed one may have been stopped before its first)
    assert {j["trialJobId"] for j in jobs if j["status"] == "SUCCEEDED"} <= {m["trialJobId"] for m in latest}
    assert {m["trialJobId"] for m in latest} <= {j["trialJobId"] for j in jobs}
    rng = rest(port, "GET", "/metric-data-range/0/1")[1]
    assert {m["trialJobId"] for m in rng} == {jobs[0]["trialJobId"], jobs[1]["trialJobId"]}
    assert len(rest(port, "GET", "/export-data")[1]) == sum(1 for j in jobs if "finalMetricData" in j) >= MAX_TRIALS - 1
    code, text = rest(port, "GET", f"/trial-file/{jobs[0]['trialJobId']}/trial.log")
    assert code == 200 and "hello from" in text


def test_logs_route_serves_the_daemon_logs(exp):
    with urllib.request.urlopen(f"http://127.0.0.1:{exp['port']}/logs/nniray.stdout", timeout=30) as r:
        assert r.status == 200 and "served at" in r.read().decode()
    for name in ("..%2Fexperiment.db", "%2Fetc%2Fpasswd", "..", "token"):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{exp['port']}/logs/{name}", timeout=30)
            raise AssertionError(f"{name} was served")
        except urllib.error.HTTPError as e:
            assert e.code == 404


def test_a_trial_directory_replaced_by_a_symlink_is_not_followed(exp):
    port = exp["port"]
    tid = rest(port, "GET", "/trial-jobs")[1][1]["trialJobId"]
    tdir = exp["dir"] / "trials" / tid
    tdir.rename(tdir.with_name(tid + ".moved"))
    os.symlink("/etc", tdir)
    try:
        for name in ("passwd", "hostname"):
            code, body = rest(port, "GET", f"/trial-file/{tid}/{name}")
            assert code == 404 and "root:" not in str(body)
    finally:
        tdir.unlink()
        tdir.with_name(tid + ".moved").rename(tdir)
    assert rest(port, "GET", f"/trial-file/{tid}/trial.log")[0] == 200


def test_hostile_bodies_are_400_naming_the_field(exp):
    port, token = exp["port"], TOKENS[exp["port"]]
    url = f"http://127.0.0.1:{port}/api/v1/nni/experiment?update_type=TRIAL_CONCURRENCY"
    for raw, word in ((b'{"params": {"trialConcurrency": 1e309}}', "params.trialConcurrency"),
                      (b'{"params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests deeper")):
        req = urllib.request.Request(url, data=raw, method="PUT", headers={"Authorization": f"Bearer {token}",
                                                                             "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400 and word in json.loads(e.read())["error"]
    assert rest(port, "GET", "/experiment")[1]["params"]["trialConcurrency"] == 2


def test_view_is_read_only_with_the_same_routes(exp):
    cli = exp["cli"]
    assert cli("stop", exp["id"]).returncode == 0
    port = free_port()
    r = cli("view", exp["id"], "--port", str(port))
    assert r.returncode == 0, r.stderr
    assert rest(port, "GET", "/summary")[1]["readonly"] is True
    assert rest(port, "GET", "/trials/page?limit=2")[1]["total"] == MAX_TRIALS
    for method, path, body in (("POST", "/trial-jobs", {"parameters": {"x": 0.1}}),
                               ("DELETE", f"/trial-jobs/{rest(port, 'GET', '/trial-jobs')[1][0]['trialJobId']}", None),
                               ("POST", "/experiment/import-data", [{"parameter": {"x": 0.1}, "value": 1}])):
        code, answer = rest(port, method, path, body)
        assert code == 403 and "read-only" in answer["error"], path
    assert cli("stop", exp["id"]).returncode == 0
