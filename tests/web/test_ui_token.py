"""The UI off loopback: the server bound to this machine's network address with a token, the
page opened with ``?token=`` (every module, the stylesheet, plotly.js and the changes feed must
carry it), and refused without it.  The experiment is a stopped one opened read-only (`view`),
so the page must offer no edit or kill either.  No Ray: the view daemon's session over a store
written here."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ui_support import browser_or_skip, free_port, screenshot, start_browser  # noqa: E402

TOKEN = "ui-test-token-3f9a"


def _fill(exp_dir: Path, n: int = 30) -> None:
    from nniray.storage.sqlite_store import ExperimentStore
    store = ExperimentStore(exp_dir)
    store.set_meta("config", {"experimentName": "token-view", "trialConcurrency": 2, "maxTrialNumber": n,
                              "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]},
                                              "k": {"_type": "choice", "_value": ["a", "b"]}},
                              "tuner": {"name": "Random", "classArgs": {"optimize_mode": "maximize"}}})
    store.set_meta("start_time", 1_700_000_000.0)
    store.set_meta("end_time", 1_700_000_600.0)
    store.set_meta("status", "DONE")
    for i in range(n):
        tid = f"v{i:03d}"
        x = i / n
        store.add_trial(tid, i, i, {"parameter_id": i, "parameter_source": "algorithm",
                                    "parameters": {"x": x, "k": "ab"[i % 2]}}, status="RUNNING")
        for s in range(4):
            store.add_metric(tid, i, "PERIODICAL", s, x * (s + 1) / 4)
        store.add_metric(tid, i, "FINAL", 0, {"default": x, "other": 1 - x})
        store.update_trial(tid, status="SUCCEEDED", start_time=1_700_000_000.0 + i * 10,
                           end_time=1_700_000_005.0 + i * 10, final={"default": x, "other": 1 - x})
    store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    browser_or_skip()
    # Bound to every interface (so off loopback: the token guards every route), but the browser
    # reaches it over 127.0.0.1 only: no test traffic leaves the loopback range.
    host = "0.0.0.0"
    root = tmp_path_factory.mktemp("tokenview")
    exp_dir = root / "exps" / "tokview1"
    _fill(exp_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("NNIRAY_HOME", str(root / "home"))
    from nniray.cli.daemon import Session
    from nniray.web.server import RestServer
    port = free_port()
    session = Session("view", "tokview1", port)
    server = RestServer(session, port, host=host, token=TOKEN, readonly=True)
    server.start()
    session.start(None, str(exp_dir))
    try:
        yield {"base": f"http://127.0.0.1:{port}", "session": session}
    finally:
        server.close()
        mp.undo()


@pytest.fixture(scope="module")
def browser(served):
    pw, b = start_browser(browser_or_skip())
    yield b
    b.close()
    pw.stop()


def test_without_the_token_nothing_is_served(served, browser):
    page = browser.new_page()
    resp = page.goto(served["base"] + "/")
    assert resp.status == 401
    assert "token" in json.loads(page.text_content("body"))["error"]
    assert page.goto(served["base"] + "/static/js/main.js").status == 401
    page.close()


def test_with_the_token_every_part_of_the_ui_loads(served, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    failed = []
    # (a trial file that was never written answers 404 by design: the store was filled here)
    page.on("response", lambda r: failed.append((r.status, r.url))
            if r.status >= 400 and "/trial-file/" not in r.url else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served["base"] + f"/?token={TOKEN}#/overview")
    page.wait_for_selector("#ov-name")
    assert page.text_content("#ov-name") == "token-view"
    page.wait_for_selector("body[data-live=live]")  # the changes feed took the token too
    # read-only: no edits offered; the overview says so
    assert page.locator("#ov-edit-trialConcurrency button").count() == 0
    assert page.locator("#exp-title .readonly").count() == 1
    page.goto(served["base"] + f"/?token={TOKEN}#/plots/final")
    page.wait_for_selector('#pl-plot[data-ready="final"]')
    assert page.locator("#pl-plot .scatterlayer .point").count() == 30
    page.goto(served["base"] + f"/?token={TOKEN}#/trials/v005")
    page.wait_for_selector("#tr-detail-id")
    assert page.locator("#tr-kill").count() == 0 and page.locator("#tr-customize").count() == 0
    assert page.locator("#tr-add").count() == 0
    page.wait_for_selector("#tr-curve .scatterlayer .trace")
    screenshot(page, "view-readonly")
    assert failed == [] and errors == []
    page.close()


def test_a_wrong_token_is_refused_with_the_fix(served, browser):
    page = browser.new_page()
    resp = page.goto(served["base"] + "/?token=wrong")
    assert resp.status == 401
    assert "wrong token" in page.text_content("body")
    page.close()
