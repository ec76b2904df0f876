"""The UI's paged routes, the changes feed, the OpenAPI document and the static files, served
over a generated store by the real server (no Ray: a read-only session over the directory)."""
from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from api_helpers import call, fill, serve  # noqa: E402

from nniray.storage import ExperimentStore  # noqa: E402

N = 12
API = "/api/v1/nni"


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("exp")
    fill(d, N).close()
    return d


@pytest.fixture(scope="module")
def server(exp_dir):
    with serve(exp_dir, token="tok") as s:
        yield s


def get(server, path):
    code, body, _ = call(server, "GET", API + path)
    assert code == 200, (path, body)
    return body


def test_summary(server):
    s = get(server, "/summary")
    assert s["id"] == "exp1" and s["experimentName"] == "webtest" and s["status"] == "VIEWED"
    assert s["counts"]["SUCCEEDED"] == N - 1 and s["counts"]["RUNNING"] == 1 and s["total"] == N
    assert s["counts"]["FAILED"] == 0 and set(s["counts"]) == {"WAITING", "RUNNING", "SUCCEEDED", "FAILED",
                                                                 "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}
    assert s["best"] == {"trialJobId": "trial10", "sequenceId": 10, "value": 10.0}
    assert s["optimizeMode"] == "maximize" and s["maxExperimentDuration"] == 3600 and s["trialConcurrency"] == 2
    assert s["maxTrialNumber"] == 50 and s["readonly"] is True and s["startTime"] == 1_700_000_000_000


def test_page_sorted_by_final_with_columns(server):
    p = get(server, "/trials/page?sort=final&order=desc&limit=3")
    assert p["total"] == N and p["offset"] == 0 and p["limit"] == 3
    assert p["columns"] == {"params": ["lr", "opt"], "final": ["acc", "default"]}
    assert [r["trialJobId"] for r in p["items"]] == ["trial10", "trial09", "trial08"]
    row = p["items"][0]
    assert row == {"trialJobId": "trial10", "sequenceId": 10, "status": "SUCCEEDED", "startTime": 1_700_000_010_000,
                   "endTime": 1_700_000_020_000, "duration": 10.0, "parameters": {"lr": 0.1, "opt": "adam"},
                   "final": 10.0, "finalDict": {"default": 10, "acc": -10}, "message": None, "node": None,
                   "intermediateCount": 10}


def test_page_sort_by_dict_key_and_param_and_filters(server):
    assert get(server, "/trials/page?sort=final.acc&order=asc&limit=1")["items"][0]["trialJobId"] == "trial10"
    assert get(server, "/trials/page?sort=param.lr&order=desc&limit=1")["items"][0]["trialJobId"] == "trial11"
    running = get(server, "/trials/page?status=RUNNING")
    assert running["total"] == 1 and running["items"][0]["final"] is None
    sgd = get(server, '/trials/page?param.opt="sgd"&status=SUCCEEDED,RUNNING')
    assert sgd["total"] == 6 and all(r["parameters"]["opt"] == "sgd" for r in sgd["items"])
    bare = get(server, "/trials/page?param.opt=sgd")  # a bare string is a string
    assert bare["total"] == 6
    assert get(server, "/trials/page?param.lr=0.03")["items"][0]["trialJobId"] == "trial03"
    assert [r["trialJobId"] for r in get(server, "/trials/page?search=trial1")["items"]] == ["trial10", "trial11"]
    page2 = get(server, "/trials/page?offset=10&limit=5")
    assert [r["sequenceId"] for r in page2["items"]] == [10, 11] and page2["total"] == N


@pytest.mark.parametrize("query,field", [("sort=bogus", "sort"), ("limit=0", "limit"), ("limit=501", "limit"),
                                         ("offset=-1", "offset"), ("status=DONE", "status"), ("order=up", "order")])
def test_page_bad_queries_are_400_naming_the_field(server, query, field):
    code, body, _ = call(server, "GET", f"{API}/trials/page?{query}")
    assert code == 400 and field in body["error"]


def test_row_and_metrics_of_one_trial(server):
    assert get(server, "/trials/trial03/row")["intermediateCount"] == 3
    code, body, _ = call(server, "GET", f"{API}/trials/nosuch/row")
    assert code == 404 and "nosuch" in body["error"]
    ms = get(server, "/trials/trial03/metrics")
    assert [(m["type"], m["sequence"], m["value"]) for m in ms] == [
        ("PERIODICAL", 0, 0.0), ("PERIODICAL", 1, 0.1), ("PERIODICAL", 2, 0.2), ("FINAL", 0, {"default": 3, "acc": -3})]
    assert all(m["timestamp"] > 10 ** 12 for m in ms)
    assert len(get(server, "/trials/trial03/metrics?type=FINAL")) == 1
    assert call(server, "GET", f"{API}/trials/trial03/metrics?type=BOGUS")[0] == 400
    assert call(server, "GET", f"{API}/trials/nosuch/metrics")[0] == 404


def test_series_and_finals_are_bounded_and_say_so(server):
    s = get(server, "/metrics/series?trials=trial11,trial02&maxPoints=4")
    assert s["totalTrials"] == 2 and s["downsampled"] is True
    assert len(s["series"]["trial11"]) == 4 and s["series"]["trial02"] == [[0, 0.0], [1, 0.1]]
    every = get(server, "/metrics/series?trials=all&maxTrials=3&maxPoints=200")
    assert every["totalTrials"] == N and every["downsampled"] is True and set(every["series"]) == {"trial11", "trial10", "trial09"}
    f = get(server, "/trials/finals?maxPoints=4")
    assert f["total"] == N - 1 and f["downsampled"] is True and len(f["points"]) <= 4
    assert f["points"][0] == [0, 0.0, 1_700_000_000_000, 0.0, "trial00", "SUCCEEDED"]
    assert get(server, "/trials/finals")["downsampled"] is False


def test_nni_read_routes_over_the_store(server):
    jobs = get(server, "/trial-jobs")
    assert [j["sequenceId"] for j in jobs] == list(range(N))
    assert "finalMetricData" not in jobs[-1] and json.loads(json.loads(jobs[0]["finalMetricData"][0]["data"])) == {
        "default": 0, "acc": 0}
    assert [j["trialJobId"] for j in get(server, "/trial-jobs?status=RUNNING")] == ["trial11"]
    assert call(server, "GET", f"{API}/trial-jobs?status=BOGUS")[0] == 400
    assert get(server, "/job-statistics") == [{"trialJobStatus": "RUNNING", "trialJobNumber": 1},
                                              {"trialJobStatus": "SUCCEEDED", "trialJobNumber": N - 1}]
    latest = get(server, "/metric-data-latest/")
    assert len(latest) == N and get(server, "/metric-data-latest") == latest
    assert {m["trialJobId"] for m in get(server, "/metric-data-range/2/3")} == {"trial02", "trial03"}
    assert len(get(server, "/metric-data")) == sum(range(N)) + N - 1
    assert len(get(server, "/metric-data/trial04?type=PERIODICAL")) == 4
    assert call(server, "GET", f"{API}/metric-data/nosuch")[0] == 404
    exported = get(server, "/export-data")
    assert len(exported) == N - 1 and json.loads(exported[1]["value"]) == {"default": 1, "acc": -1}
    assert get(server, "/tensorboard-tasks") == []
    code, body, _ = call(server, "GET", f"{API}/tensorboard/x")
    assert code == 404 and "TensorBoard" in body["error"]
    code, body, _ = call(server, "GET", f"{API}/no-such-route")
    assert code == 404 and "no route" in body["error"]
    code, body, _ = call(server, "GET", f"{API}/experiment/import-data")
    assert code == 405 and "not allowed" in body["error"]


def test_openapi_documents_every_route(server):
    doc = call(server, "GET", "/openapi.json")[1]
    paths = doc["paths"]
    nni = ["/version", "/check-status", "/experiment", "/experiment-metadata", "/experiment/import-data",
           "/experiment/imported-data", "/job-statistics", "/experiment/cluster-metadata", "/trial-jobs",
           "/trial-jobs/{trial_id}", "/metric-data/{trial_id}", "/metric-data-range/{min_seq_id}/{max_seq_id}",
           "/metric-data-latest", "/trial-file/{trial_id}/{filename}", "/export-data", "/experiments-info",
           "/tensorboard", "/tensorboard/{task_id}", "/tensorboard-tasks", "/summary", "/trials/page",
           "/trials/{trial_id}/row", "/trials/{trial_id}/metrics", "/metrics/series", "/trials/finals", "/events"]
    for p in nni:
        assert API + p in paths, p
    assert set(paths[API + "/experiment"]) == {"get", "put", "post", "delete"}
    assert set(paths[API + "/trial-jobs"]) == {"get", "post"}
    assert set(paths[API + "/tensorboard/{task_id}"]) == {"get", "put", "delete"}
    assert "/logs/{name}" in paths


def test_ui_files_and_plotly_from_the_package(server):
    code, page, hdrs = call(server, "GET", "/")
    assert code == 200 and hdrs["content-type"].startswith("text/html") and "<html" in page.lower()
    code, js, hdrs = call(server, "GET", "/static/vendor/plotly.min.js")
    import plotly
    shipped = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()
    assert code == 200 and js == shipped and "javascript" in hdrs["content-type"]
    assert call(server, "GET", "/static/../experiment.db")[0] == 404


def _events(server, query="", want=1, timeout=20.0):
    """Read SSE events until ``want`` have arrived: [(id, event, data)]."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.request("GET", f"{API}/events{query}")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type").startswith("text/event-stream")
    out, cur = [], {}
    deadline = time.time() + timeout
    while len(out) < want and time.time() < deadline:
        line = r.fp.readline().decode().rstrip("\n")
        if not line:
            if "event" in cur:
                out.append((cur.get("id"), cur["event"], json.loads(cur["data"])))
            cur = {}
            continue
        k, _, v = line.partition(": ")
        cur[k] = v
    conn.close()
    return out


def test_changes_feed_sends_summary_then_new_trials_and_metrics(server, exp_dir):
    first = _events(server, want=1)
    assert first[0][1] == "summary" and first[0][2]["total"] == N
    cursor = first[0][0]
    writer = ExperimentStore(exp_dir)
    writer.add_metric("trial11", 11, "PERIODICAL", 11, 1.5)
    writer.update_trial("trial11", status="SUCCEEDED", final=0.5, end_time=1_700_000_100.0)
    writer.close()
    got = _events(server, f"?since={cursor}", want=3)
    kinds = {e[1]: e for e in got}
    assert {"summary", "trials", "metrics"} <= set(kinds)
    assert [(r["trialJobId"], r["status"], r["final"]) for r in kinds["trials"][2]] == [("trial11", "SUCCEEDED", 0.5)]
    assert kinds["metrics"][2] == [{"trialJobId": "trial11", "type": "PERIODICAL", "sequence": 11, "value": 1.5}]
    # resuming from the last cursor replays nothing
    last = got[-1][0]
    again = _events(server, f"?since={last}", want=1)
    assert [e[1] for e in again] == ["summary"]
    code, body, _ = call(server, "GET", f"{API}/events?since=garbage")
    assert code == 400 and "since" in body["error"]
