"""The server's security layer over a real store and a real uvicorn: Host checks (DNS
rebinding), no wildcard CORS, the token, read-only, body limits, hostile bodies, traversal."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from api_helpers import call, fill, serve  # noqa: E402

TOKEN = "s3cret-token"
PUT = "/api/v1/nni/experiment?update_type=TRIAL_CONCURRENCY"


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("exp")
    fill(d).close()
    return d


@pytest.fixture(scope="module")
def server(exp_dir):
    with serve(exp_dir, token=TOKEN, allowed_origins=("http://ui.example:9000",), body_timeout=1.0) as s:
        yield s


# ------------------------------------------------------------------------------ Host and Origin
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "10.1.2.3:{port}", ""])
def test_a_foreign_host_header_is_refused(server, host):
    code, body, _ = call(server, "GET", "/api/v1/nni/version", host=host.format(port=server.port))
    assert code == 403 and "DNS rebinding" in body["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "localhost", "[::1]:{port}"])
def test_loopback_names_are_this_server(server, host):
    assert call(server, "GET", "/api/v1/nni/version", host=host.format(port=server.port))[0] == 200


def test_cross_origin_requests_are_refused_and_no_wildcard_cors(server):
    code, body, hdrs = call(server, "GET", "/api/v1/nni/trial-jobs", headers={"Origin": "http://evil.example"})
    assert code == 403 and "cross-origin" in body["error"]
    assert "access-control-allow-origin" not in hdrs
    # a preflight from a foreign page gets no CORS grant either
    code, _, hdrs = call(server, "OPTIONS", "/api/v1/nni/experiment",
                         headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE"})
    assert code in (400, 403) and "access-control-allow-origin" not in hdrs


def test_same_origin_and_allow_listed_origins_pass(server):
    own = f"http://127.0.0.1:{server.port}"
    code, _, hdrs = call(server, "GET", "/api/v1/nni/job-statistics", headers={"Origin": own})
    assert code == 200 and "access-control-allow-origin" not in hdrs
    code, _, hdrs = call(server, "GET", "/api/v1/nni/job-statistics", headers={"Origin": "http://ui.example:9000"})
    assert code == 200 and hdrs["access-control-allow-origin"] == "http://ui.example:9000"


# ------------------------------------------------------------------------------ token
@pytest.mark.parametrize("method,path", [("PUT", PUT), ("POST", "/api/v1/nni/experiment/import-data"),
                                         ("POST", "/api/v1/nni/trial-jobs"), ("DELETE", "/api/v1/nni/trial-jobs/trial00"),
                                         ("DELETE", "/api/v1/nni/experiment")])
def test_every_mutating_route_needs_the_token(server, method, path):
    code, body, _ = call(server, method, path, {"params": {}})
    assert code == 401 and "token" in body["error"]
    code, body, _ = call(server, method, path, {"params": {}}, token="wrong")
    assert code == 401 and "wrong token" in body["error"]


def test_the_token_lets_a_mutating_call_through(server):
    # The session behind this server is read-only: a call that passed the token check reaches it
    # and gets its answer (403 read-only), not the middleware's 401.
    for kw in ({"token": TOKEN}, {}):
        path = PUT if kw else PUT + f"&token={TOKEN}"
        code, body, _ = call(server, "PUT", path, {"params": {"trialConcurrency": 3}}, **kw)
        assert code == 403 and "read-only" in body["error"]


def test_reads_need_no_token_on_loopback(server):
    assert call(server, "GET", "/api/v1/nni/trial-jobs")[0] == 200


def test_off_loopback_every_route_needs_the_token(exp_dir):
    # Bound to every interface (off loopback), reached over 127.0.0.1 only: no test traffic leaves
    # the loopback range.  (The Host check of a specific bound address is tested above.)
    with serve(exp_dir, host="0.0.0.0") as s:
        assert s.token  # generated when none is given
        for path in ("/api/v1/nni/trial-jobs", "/api/v1/nni/events", "/", "/static/vendor/plotly.min.js",
                     "/openapi.json"):
            code, body, _ = call(s, "GET", path)
            assert code == 401, path
        assert call(s, "GET", "/api/v1/nni/trial-jobs", token=s.token)[0] == 200
        assert call(s, "GET", f"/api/v1/nni/check-status?token={s.token}")[0] == 200


# ------------------------------------------------------------------------------ read-only
def test_a_readonly_server_refuses_changes_but_can_be_stopped(exp_dir):
    with serve(exp_dir, token=TOKEN, readonly=True) as s:
        for method, path in (("PUT", PUT), ("POST", "/api/v1/nni/trial-jobs"),
                             ("DELETE", "/api/v1/nni/trial-jobs/trial00")):
            code, body, _ = call(s, method, path, {"params": {}}, token=TOKEN)
            assert code == 403 and "read-only" in body["error"], path
        assert call(s, "DELETE", "/api/v1/nni/experiment", token=TOKEN)[0] == 200
        assert s.app.state.session.stopped


# ------------------------------------------------------------------------------ bodies
def test_a_body_over_the_limit_is_413(server):
    code, body, _ = call(server, "PUT", PUT, raw=b"[" + b"0," * (600 * 1024) + b"0]", token=TOKEN)
    assert code == 413 and "limit" in body["error"]


def test_a_chunked_body_over_the_limit_is_413(server):
    conn = socket.create_connection(("127.0.0.1", server.port))
    head = (f"PUT {PUT} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n").encode()
    conn.sendall(head)
    chunk = b"x" * 65536
    try:
        for _ in range(20):  # 1.25 MiB
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close first
    reply = conn.recv(4096).decode()
    conn.close()
    assert reply.startswith("HTTP/1.1 413")


def test_a_body_that_never_arrives_is_408_not_a_hung_handler(server):
    conn = socket.create_connection(("127.0.0.1", server.port))
    conn.sendall((f"PUT {PUT} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"par").encode())
    conn.settimeout(30)
    reply = conn.recv(4096).decode()
    conn.close()
    assert reply.startswith("HTTP/1.1 408")


@pytest.mark.parametrize("raw,field", [
    (b'{"params": {"trialConcurrency": 1e309}}', "params.trialConcurrency"),
    (b'{"params": {"trialConcurrency": NaN}}', "NaN"),
    (b'{"params": {"maxTrialNumber": -Infinity}}', "Infinity"),
])
def test_non_finite_numbers_are_400_naming_the_field(server, raw, field):
    code, body, _ = call(server, "PUT", PUT, raw=raw, token=TOKEN)
    assert code == 400 and field in body["error"]


def test_a_deeply_nested_body_is_400(server):
    raw = b'{"params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    code, body, _ = call(server, "PUT", PUT, raw=raw, token=TOKEN)
    assert code == 400 and "nests deeper" in body["error"]
    code, body, _ = call(server, "POST", "/api/v1/nni/experiment/import-data", raw=b"{" * 50_000, token=TOKEN)
    assert code == 400


def test_invalid_json_is_400(server):
    code, body, _ = call(server, "PUT", PUT, raw=b"{not json", token=TOKEN)
    assert code == 400 and "not valid JSON" in body["error"]


def test_connections_are_bounded(server):
    """Beyond the connection limit uvicorn answers 503 instead of taking more (no thread per
    connection any more)."""
    from nniray.web.server import MAX_CONNECTIONS
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS + 4):
            idle.append(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(0.5)  # let the server accept them all before the extra request
        code = call(server, "GET", "/api/v1/nni/version")[0]
    finally:
        for c in idle:
            c.close()
    assert code == 503
    time.sleep(0.5)
    assert call(server, "GET", "/api/v1/nni/version")[0] == 200


# ------------------------------------------------------------------------------ traversal
@pytest.mark.parametrize("name", ["..", "%2e%2e", "..%2f..%2f..%2fetc%2fpasswd", "%2fetc%2fpasswd",
                                  "%2e%2e%2f%2e%2e%2fexperiment.db", "..%5c..%5cexperiment.db", "trial.log%00.png",
                                  "~", "."])
def test_trial_file_refuses_names_that_leave_the_trial_directory(server, name):
    code, body, _ = call(server, "GET", f"/api/v1/nni/trial-file/trial01/{name}")
    assert code == 404, (name, body)


def test_trial_file_raw_dotdot_path(server):
    code, _, _ = call(server, "GET", "/api/v1/nni/trial-file/trial01/../../experiment.db")
    assert code == 404


def test_trial_file_serves_the_trials_own_files(server):
    code, body, hdrs = call(server, "GET", "/api/v1/nni/trial-file/trial01/trial.log")
    assert code == 200 and body == "log of trial01\n" and hdrs["x-content-type-options"] == "nosniff"


def test_a_trial_directory_replaced_by_a_symlink_out_is_refused(tmp_path):
    fill(tmp_path, 3).close()
    tdir = tmp_path / "trials" / "trial01"
    for f in tdir.iterdir():
        f.unlink()
    tdir.rmdir()
    os.symlink("/etc", tdir)
    (tmp_path / "trials" / "trial00" / "escape").symlink_to("/etc/hostname")
    with serve(tmp_path) as s:
        for path in ("/api/v1/nni/trial-file/trial01/passwd", "/api/v1/nni/trial-file/trial01/hostname",
                     "/api/v1/nni/trial-file/trial00/escape"):
            code, body, _ = call(s, "GET", path)
            assert code == 404 and "root:" not in str(body), path
        (tmp_path / "log" / "out").symlink_to("/etc/passwd")
        assert call(s, "GET", "/logs/out")[0] == 404


@pytest.mark.parametrize("name", ["..", "%2e%2e", "..%2fexperiment.db", "%2fetc%2fpasswd"])
def test_logs_refuse_names_outside_the_log_folder(server, name):
    assert call(server, "GET", f"/logs/{name}")[0] == 404


def test_logs_serve_the_log_folder(server):
    code, body, _ = call(server, "GET", "/logs/nniray.stdout")
    assert code == 200 and body == "daemon output\n"


def test_a_view_session_is_served_read_only_by_default(exp_dir):
    with serve(exp_dir, token=TOKEN, readonly=None) as s:  # StoreSession.mode == "view"
        code, body, _ = call(s, "PUT", PUT, {"params": {"trialConcurrency": 3}}, token=TOKEN)
        assert code == 403 and "opened with `view`" in body["error"]


def test_a_connection_that_sends_no_request_is_closed(exp_dir):
    with serve(exp_dir, header_timeout=0.5) as s:
        conn = socket.create_connection(("127.0.0.1", s.port))
        conn.sendall(b"GET /api/v1/nni/version HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
        conn.settimeout(30)
        assert conn.recv(4096) == b""  # closed by the server, not left holding a slot
        conn.close()


def test_a_server_bound_to_one_address_accepts_only_that_host():
    # Checked on the policy itself (no traffic to a non-loopback address is sent by the tests).
    from nniray.web.security import Policy
    p = Policy(host="192.0.2.10", token="t")
    assert p.host_allowed("192.0.2.10:8080")
    assert not p.host_allowed("localhost:8080") and not p.host_allowed("evil.example:8080")
