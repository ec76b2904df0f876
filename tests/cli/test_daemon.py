"""One real experiment through `nniray create` (a daemon with Ray), driven by the CLI and NNI's
REST API, then stopped and opened again with `nniray view` (a second, Ray-free daemon).

The tests run in file order on one shared experiment (daemon launches are the slow part)."""
from __future__ import annotations

import csv
import json
import time
import urllib.request

import pytest

from cli_helpers import Cli, free_port, rest, wait_status, write_experiment

MAX_TRIALS = 4


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    root = tmp_path_factory.mktemp("daemon")
    cli = Cli(root / "home", root)
    cfg = write_experiment(root / "proj", max_trials=MAX_TRIALS, concurrency=2)
    port = free_port()
    r = cli("create", "--config", str(cfg), "--port", str(port))
    try:
        assert r.returncode == 0, r.stderr
        exp_id = r.stdout.split("The experiment id is ")[1].split()[0]
        yield {"cli": cli, "port": port, "id": exp_id, "create": r, "root": root,
               "dir": root / "proj" / "exps" / exp_id}
    finally:
        cli.stop_all()


def test_create_prints_nni_startup_lines(exp):
    out = exp["create"].stdout
    for line in ("INFO: Starting restful server...", "INFO: Successfully started Restful server!",
                 "INFO: Starting experiment...", "INFO: Successfully started experiment!",
                 f"The experiment id is {exp['id']}", f"The Web UI urls are: http://127.0.0.1:{exp['port']}",
                 "1. nniray experiment show", "6. nniray stop", "8. nniray --help"):
        assert line in out
    entry = exp["cli"].registry()[exp["id"]]
    assert entry["port"] == exp["port"] and entry["logDir"] == str(exp["dir"]) and entry["pid"]


def test_rest_routes_in_nni_shapes(exp):
    port = exp["port"]
    assert wait_status(port, ("DONE",)) == "DONE"
    code, version = rest(port, "GET", "/version")
    import nniray
    assert code == 200 and version == nniray.__version__
    code, prof = rest(port, "GET", "/experiment")
    assert code == 200 and prof["id"] == exp["id"] and prof["params"]["maxTrialNumber"] == MAX_TRIALS
    assert prof["logDir"] == str(exp["dir"]) and prof["nextSequenceId"] == MAX_TRIALS
    assert prof["startTime"] > 10 ** 12  # milliseconds, as NNI
    code, stats = rest(port, "GET", "/job-statistics")
    assert stats == [{"trialJobStatus": "SUCCEEDED", "trialJobNumber": MAX_TRIALS}]
    code, jobs = rest(port, "GET", "/trial-jobs")
    assert [j["sequenceId"] for j in jobs] == list(range(MAX_TRIALS))
    j = jobs[0]
    params = json.loads(j["hyperParameters"][0])["parameters"]
    final = json.loads(json.loads(j["finalMetricData"][0]["data"]))
    assert final == {"default": params["x"], "other": 1}
    assert j["endTime"] >= j["startTime"] > 10 ** 12
    code, one = rest(port, "GET", f"/trial-jobs/{j['trialJobId']}")
    assert one == j
    code, metrics = rest(port, "GET", f"/metric-data/{j['trialJobId']}")
    inter = [json.loads(json.loads(m["data"])) for m in metrics if m["type"] == "PERIODICAL"]
    assert inter == [params["x"] * i for i in range(3)]
    code, exported = rest(port, "GET", "/export-data")
    assert {e["trialJobId"]: json.loads(e["value"])["default"] for e in exported} == \
        {jj["trialJobId"]: json.loads(jj["hyperParameters"][0])["parameters"]["x"] for jj in jobs}
    code, infos = rest(port, "GET", "/experiments-info")
    assert [i["id"] for i in infos] == [exp["id"]] and infos[0]["port"] == port
    assert infos[0]["startTime"] > 10 ** 12 and infos[0]["logDir"] == str(exp["dir"])
    assert rest(port, "GET", "/experiment-metadata")[1] == infos[0]
    code, body = rest(port, "GET", "/trial-jobs/nosuch")
    assert code == 404 and "nosuch" in body["error"]
    code, body = rest(port, "PUT", "/experiment?update_type=BOGUS", {"params": {}})
    assert code == 400 and "update_type" in body["error"]
    code, body = rest(port, "PUT", "/experiment?update_type=TRIAL_CONCURRENCY", {"params": {"trialConcurrency": 0}})
    assert code == 400 and "trialConcurrency" in body["error"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/logs/nnimanager.log", timeout=30) as resp:
        assert f"controller up for {exp['id']}" in resp.read().decode()
    code, body = rest(port, "GET", "/trial-file/" + j["trialJobId"] + "/trial.log")
    assert code == 200 and f"hello from {j['trialJobId']}" in body
    code, body = rest(port, "GET", "/no-such-route")
    assert code == 404 and "error" in body
    code, body = rest(port, "POST", "/experiment/import-data", [{"parameter": {"x": 1}}])
    assert code == 400 and "value" in body["error"]


def test_list_and_read_commands(exp):
    cli = exp["cli"]
    r = cli("experiment", "list")
    assert r.returncode == 0 and exp["id"] in r.stdout and str(exp["port"]) in r.stdout
    trials = json.loads(cli("trial", "ls", "--json").stdout)  # no id: the only running experiment
    assert len(trials) == MAX_TRIALS and {t["status"] for t in trials} == {"SUCCEEDED"}
    head = json.loads(cli("trial", "ls", "--head", "1", "--json").stdout)
    best = max(trials, key=lambda t: json.loads(json.loads(t["finalMetricData"][0]["data"]))["default"])
    assert [h["trialJobId"] for h in head] == [best["trialJobId"]]
    r = cli("webui", "url")
    assert r.stdout.strip() == f"INFO: Web UI url: http://127.0.0.1:{exp['port']}"
    r = cli("log", "stdout")
    assert f"served at http://127.0.0.1:{exp['port']}" in r.stdout


def test_log_trial(exp):
    cli = exp["cli"]
    tid = json.loads(cli("trial", "ls", "--json").stdout)[0]["trialJobId"]
    r = cli("log", "trial", "-T", tid)
    assert r.returncode == 0
    assert f"path:{exp['dir'] / 'trials' / tid}" in r.stdout
    assert f"hello from {tid}" in r.stdout and "a line on stderr" in r.stdout


def test_update_concurrency_and_trialnum(exp):
    cli, port = exp["cli"], exp["port"]
    r = cli("update", "concurrency", "-v", "3")
    assert r.returncode == 0, r.stderr
    assert "Successfully updated concurrency" in r.stdout
    assert rest(port, "GET", "/experiment")[1]["params"]["trialConcurrency"] == 3
    r = cli("update", "trialnum", exp["id"][:4], "-v", str(MAX_TRIALS + 2))  # a prefix of the id works
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 120
    while time.time() < deadline:
        stats = rest(port, "GET", "/job-statistics")[1]
        if stats == [{"trialJobStatus": "SUCCEEDED", "trialJobNumber": MAX_TRIALS + 2}]:
            break
        time.sleep(0.3)
    assert stats == [{"trialJobStatus": "SUCCEEDED", "trialJobNumber": MAX_TRIALS + 2}]


def test_update_duration_and_searchspace(exp, tmp_path):
    cli, port = exp["cli"], exp["port"]
    r = cli("update", "duration", "-v", "1h")
    assert r.returncode == 0, r.stderr
    assert rest(port, "GET", "/experiment")[1]["params"]["maxExperimentDuration"] == "1h"
    space = {"x": {"_type": "uniform", "_value": [0.9, 1.0]}, "sleep": {"_type": "choice", "_value": [0.0]}}
    f = tmp_path / "space.json"
    f.write_text(json.dumps(space))
    r = cli("update", "searchspace", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert rest(port, "GET", "/experiment")[1]["params"]["searchSpace"] == space
    assert cli("update", "trialnum", "-v", str(MAX_TRIALS + 3)).returncode == 0
    deadline = time.time() + 120
    while time.time() < deadline:
        jobs = rest(port, "GET", "/trial-jobs")[1]
        if len(jobs) == MAX_TRIALS + 3 and jobs[-1]["status"] == "SUCCEEDED":
            break
        time.sleep(0.3)
    assert 0.9 <= json.loads(jobs[-1]["hyperParameters"][0])["parameters"]["x"] <= 1.0
    f.write_text(json.dumps({"x": {"_type": "uniform", "_value": [1.0, 0.0]}}))
    r = cli("update", "searchspace", "-f", str(f))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "low < high" in r.stderr
    # the same refusal from the tuner, through REST: one clean line, not Ray's remote traceback
    prof = rest(port, "GET", "/experiment")[1]
    prof["params"]["searchSpace"] = {"x": {"_type": "uniform", "_value": [1.0, 0.0]}}
    code, body = rest(port, "PUT", "/experiment?update_type=SEARCH_SPACE", prof)
    assert code == 400 and "\n" not in body["error"] and "ray::" not in body["error"]
    assert body["error"].startswith("searchSpace: ") and "low < high" in body["error"]


def test_export_matches_trials(exp, tmp_path):
    cli = exp["cli"]
    trials = json.loads(cli("trial", "ls", "--json").stdout)
    want = {t["trialJobId"]: json.loads(t["hyperParameters"][0])["parameters"] for t in trials}
    j = tmp_path / "e.json"
    assert cli("experiment", "export", "-f", str(j), "--type", "json").returncode == 0
    data = json.loads(j.read_text())
    assert {d["trialJobId"]: d["parameter"] for d in data} == want
    assert all(d["value"] == {"default": d["parameter"]["x"], "other": 1} for d in data)
    c = tmp_path / "e.csv"
    assert cli("experiment", "export", "-f", str(c), "--type", "csv", "-i").returncode == 0
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == len(trials)
    for row in rows:
        x = want[row["trialJobId"]]["x"]
        assert float(row["x"]) == x and float(row["default"]) == x and row["other"] == "1"
        assert json.loads(row["intermediate"]) == [x * i for i in range(3)]


def test_import_goes_to_the_running_tuner(exp, tmp_path):
    cli, port = exp["cli"], exp["port"]
    f = tmp_path / "imp.json"
    # (an earlier test updated the space to x in [0.9, 1.0]) a record outside the space is refused (issue 8)
    f.write_text(json.dumps([{"parameter": {"x": 0.25, "sleep": 0.0}, "value": 0.5}]))
    r = cli("experiment", "import", "-f", str(f))
    assert r.returncode == 1 and "parameter.x: 0.25 is outside [0.9, 1.0]" in r.stderr
    # the REST route (NNI's client, scripts) refuses it too, with the field named
    code, body = rest(port, "POST", "/experiment/import-data", [{"parameter": {"x": 0.25, "sleep": 0.0}, "value": 0.5}])
    assert code == 400 and "parameter.x: 0.25 is outside [0.9, 1.0]" in str(body)
    f.write_text(json.dumps([{"parameter": {"x": 0.95, "sleep": 0.0}, "value": 0.5}]))
    r = cli("experiment", "import", "-f", str(f))
    assert r.returncode == 0, r.stderr
    code, imported = rest(port, "GET", "/experiment/imported-data")
    assert [json.loads(s) for s in json.loads(imported)] == [{"parameter": {"x": 0.95, "sleep": 0.0}, "value": 0.5}]


def test_refusals_while_running(exp):
    cli = exp["cli"]
    tid = json.loads(cli("trial", "ls", "--json").stdout)[0]["trialJobId"]
    r = cli("trial", "kill", "-T", tid)
    assert r.returncode == 1 and r.stderr.strip() == f"ERROR: trial {tid} is not running (status SUCCEEDED)"
    r = cli("experiment", "delete", exp["id"], "-y")
    assert r.returncode == 1 and "is running" in r.stderr
    r = cli("resume", exp["id"], "-p", str(free_port()))
    assert r.returncode == 1 and "already running" in r.stderr
    r = cli("create", "-c", str(exp["root"] / "proj" / "config.yml"), "-p", str(exp["port"]))
    assert r.returncode == 1 and f"port {exp['port']}" in r.stderr and exp["id"] in r.stderr


def test_stop_then_view(exp):
    cli = exp["cli"]
    pid = cli.registry()[exp["id"]]["pid"]
    r = cli("stop")
    assert r.returncode == 0, r.stderr
    assert f"INFO: Stopping experiment {exp['id']}" in r.stdout and "Stop experiment success" in r.stdout
    entry = cli.registry()[exp["id"]]
    assert entry["status"] == "DONE" and entry["pid"] is None and entry["endTime"]
    from nniray.cli.locate import pid_alive
    assert not pid_alive(pid)
    assert "no experiment running" in cli("experiment", "list").stderr
    # the stopped experiment is still readable
    assert len(json.loads(cli("trial", "ls", exp["id"], "--json").stdout)) == MAX_TRIALS + 3

    port = free_port()
    r = cli("view", exp["id"], "--port", str(port))
    assert r.returncode == 0, r.stderr
    assert f"The experiment id is {exp['id']}" in r.stdout
    assert rest(port, "GET", "/check-status")[1] == {"status": "VIEWED", "errors": []}
    assert len(rest(port, "GET", "/trial-jobs")[1]) == MAX_TRIALS + 3
    code, body = rest(port, "PUT", "/experiment?update_type=TRIAL_CONCURRENCY", {"params": {"trialConcurrency": 2}})
    assert code == 403 and "read-only" in body["error"]
    r = cli("update", "concurrency", exp["id"], "-v", "2")
    assert r.returncode == 1 and "read-only" in r.stderr
    assert cli("stop", exp["id"]).returncode == 0
    assert cli.registry()[exp["id"]]["status"] == "DONE"
