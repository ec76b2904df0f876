"""Helpers for the web API tests: a generated experiment store, a real server (uvicorn on a
free port) over it, and raw HTTP calls (http.client sends paths exactly as given)."""
from __future__ import annotations

import contextlib
import http.client
import json
import time
from pathlib import Path
from typing import Any, Iterator

from nniray.storage import ExperimentStore
from nniray.web.server import RestServer
from nniray.web.session import StoreSession

CONFIG = {"experimentName": "webtest", "trialConcurrency": 2, "maxTrialNumber": 50,
          "maxExperimentDuration": "1h", "searchSpace": {"lr": {"_type": "uniform", "_value": [0, 1]}},
          "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}}


def fill(exp_dir: Path, n: int = 12) -> ExperimentStore:
    """Trial i: lr = i/100, opt 'sgd'/'adam'; i intermediate results; final {default: i, acc: -i}
    except the last trial, which is RUNNING.  Each trial has a trial.log."""
    store = ExperimentStore(exp_dir)
    store.set_meta("config", CONFIG)
    store.set_meta("start_time", 1_700_000_000.0)
    for i in range(n):
        tid = f"trial{i:02d}"
        store.add_trial(tid, i, i, {"parameter_id": i, "parameter_source": "algorithm",
                                    "parameters": {"lr": i / 100, "opt": "sgd" if i % 2 else "adam"}},
                        status="RUNNING")
        store.update_trial(tid, start_time=1_700_000_000.0 + i)
        for k in range(i):
            store.add_metric(tid, i, "PERIODICAL", k, k / 10)
        if i < n - 1:
            store.add_metric(tid, i, "FINAL", 0, {"default": i, "acc": -i})
            store.update_trial(tid, final={"default": i, "acc": -i}, status="SUCCEEDED",
                               end_time=1_700_000_000.0 + 2 * i)
        tdir = exp_dir / "trials" / tid
        tdir.mkdir(parents=True, exist_ok=True)
        (tdir / "trial.log").write_text(f"log of {tid}\n")
    (exp_dir / "log").mkdir(exist_ok=True)
    (exp_dir / "log" / "nniray.stdout").write_text("daemon output\n")
    return store


@contextlib.contextmanager
def serve(exp_dir: Path, **kw: Any) -> Iterator[RestServer]:
    session = kw.pop("session", None) or StoreSession(exp_dir, exp_id="exp1")
    # The middleware is tested on its own: the session (read-only itself) answers what gets past it.
    kw.setdefault("readonly", False)
    server = RestServer(session, 0, **kw)
    server.start()
    deadline = time.time() + 30
    while time.time() < deadline:  # until uvicorn answers
        try:
            call(server, "GET", "/api/v1/nni/version", token=server.token)
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield server
    finally:
        server.close()


def call(server: Any, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict | None = None, token: str | None = None, host: str | None = None) -> tuple[int, Any, dict]:
    """One request; (status, decoded JSON or text, headers)."""
    addr = server.host if server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    conn = http.client.HTTPConnection(addr, server.port, timeout=30)
    h = {"Content-Type": "application/json"} if (body is not None or raw is not None) else {}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if host is not None:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host)
        for k, v in h.items():
            conn.putheader(k, v)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
    else:
        conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    text = r.read().decode("utf-8", "replace")
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    try:
        return r.status, (json.loads(text) if text else None), hdrs
    except json.JSONDecodeError:
        return r.status, text, hdrs
