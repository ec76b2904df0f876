"""The web UI in a real headless Chromium against a real running experiment (`nniray create`,
Ray, command trials): overview, the trials table (sort, filter, search, columns, detail, kill,
customized trial), every plot (Plotly's DOM), in-place edits reaching the running experiment,
the experiments list, and live updates arriving over the changes feed.

One experiment is shared by the module (its start is the slow part); the test run saves a
screenshot of each page under docs/screenshots/.  Marked slow (~3 min on a loaded 2-core
machine): the default suite's browser test is test_ui_token.py (a read-only view, no Ray)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ui_support import (  # noqa: E402
    Cli, browser_or_skip, experiment_token, free_port, hold_file, rest, screenshot, start_browser, succeeded,
    wait_for, write_ui_experiment)

pytestmark = pytest.mark.slow

NAME = "ui-demo"
MIN_DONE = 6


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    browser_or_skip()
    root = tmp_path_factory.mktemp("ui")
    cli = Cli(root / "home", root)
    # Enough trials that the experiment is still running when the last test edits it.
    cfg = write_ui_experiment(root / "proj", NAME, max_trials=400, concurrency=2, sleep=0.5)
    port = free_port()
    r = cli("create", "--config", str(cfg), "--port", str(port))
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        exp_id = r.stdout.split("The experiment id is ")[1].split()[0]
        wait_for(lambda: succeeded(port) >= MIN_DONE, timeout=240, what=f"{MIN_DONE} succeeded trials")
        token = experiment_token(cli, exp_id)
        yield {"cli": cli, "port": port, "id": exp_id, "token": token, "proj": root / "proj", "base": f"http://127.0.0.1:{port}",
               "url": f"http://127.0.0.1:{port}/" + (f"?token={token}" if token else "")}
    finally:
        cli.stop_all()


@pytest.fixture(scope="module")
def browser(exp):
    sync_api = browser_or_skip()
    pw, b = start_browser(sync_api)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def cells(page, col: str) -> list[str]:
    return page.eval_on_selector_all(f'#tr-table tbody td[data-col="{col}"]', "els => els.map(e => e.textContent)")


def wait_table(page, *fragments: str) -> None:
    """Wait until the table shows a load whose query has every ``fragments`` (live reloads may
    land in between; they carry the current sort and filters too)."""
    page.wait_for_function("(fs) => { const t = document.querySelector('#tr-table');"
                           " return t && t.dataset.query !== undefined && !t.classList.contains('loading')"
                           " && fs.every(f => t.dataset.query.includes(f)); }", arg=list(fragments))


def test_overview_shows_the_running_experiment(exp, page):
    page.goto(exp["url"] + "#/overview")
    page.wait_for_selector("#ov-name")
    assert page.text_content("#ov-name") == NAME
    assert page.text_content("#ov-id") == exp["id"]
    assert page.text_content("#ov-status").strip() == "RUNNING"
    page.wait_for_selector("body[data-live=live]")
    succeeded_count = int(page.text_content('#ov-counts a[data-status="SUCCEEDED"] b').replace(",", ""))
    assert succeeded_count >= MIN_DONE
    # the best trial is the one the REST API ranks first
    code, best = rest(exp["port"], "GET", "/trials/page?limit=1&sort=final&order=desc&status=SUCCEEDED")
    assert code == 200
    assert page.text_content("#ov-best-trial").endswith(best["items"][0]["trialJobId"])
    page.wait_for_selector("#ov-top table tbody tr")
    screenshot(page, "overview")


def test_overview_follows_the_feed_without_polling(exp, page):
    page.goto(exp["url"] + "#/overview")
    page.wait_for_selector("body[data-live=live]")
    start = int(page.text_content("#ov-total").replace(",", ""))
    polled = []
    page.on("request", lambda r: polled.append(r.url) if "/api/v1/nni/summary" in r.url else None)
    page.wait_for_function("n => +document.querySelector('#ov-total').textContent.replace(/,/g, '') > n",
                           arg=start, timeout=60_000)
    assert polled == [], "the overview re-fetched the summary instead of using the feed"


def test_table_sorts_filters_searches_and_chooses_columns(exp, page):
    page.goto(exp["url"] + "#/trials")
    wait_table(page)
    assert page.locator("#tr-table tbody tr").count() >= MIN_DONE
    # sort by the metric, best first (server-side)
    page.click('#tr-table th[data-col="final"]')
    wait_table(page, "sort=final&order=desc")
    values = [float(v) for v in cells(page, "final") if v != "—"]
    assert len(values) >= MIN_DONE and values == sorted(values, reverse=True)
    page.click('#tr-table th[data-col="final"]')
    wait_table(page, "sort=final&order=asc")
    values = [float(v) for v in cells(page, "final") if v != "—"]
    assert values == sorted(values)
    # filter by status
    page.click('#tr-status button[data-status="SUCCEEDED"]')
    wait_table(page, "status=SUCCEEDED")
    statuses = page.eval_on_selector_all("#tr-table tbody tr", "els => els.map(e => e.dataset.status)")
    assert statuses and set(statuses) == {"SUCCEEDED"}
    # filter by a parameter value
    page.select_option("#tr-param-name", "opt")
    page.fill("#tr-param-value", "adam")
    adam = '/trials/page?limit=1&status=SUCCEEDED&param.opt="adam"'
    before = rest(exp["port"], "GET", adam)[1]["total"]
    page.click("#tr-param-add")
    wait_table(page, "param.opt=%22adam%22")
    opts = cells(page, "param.opt")
    assert opts and set(opts) == {"adam"}
    total = int(re.match(r"[\d,]+", page.text_content("#tr-total")).group().replace(",", ""))
    # trials keep finishing: the count shown lies between the server's counts around the load
    assert before <= total <= rest(exp["port"], "GET", adam)[1]["total"]
    # search one trial by its id
    some_id = cells(page, "trialJobId")[0]
    page.fill("#tr-search", some_id)
    wait_table(page, "search=" + some_id)
    assert cells(page, "trialJobId") == [some_id]
    # column chooser: hide the start time
    assert page.locator('#tr-table th[data-col="startTime"]').count() == 1
    page.click("#tr-columns")
    page.uncheck('#tr-column-list input[data-col="startTime"]')
    page.keyboard.press("Escape")
    assert page.locator('#tr-table th[data-col="startTime"]').count() == 0
    page.click("#tr-columns")
    page.check('#tr-column-list input[data-col="startTime"]')
    page.keyboard.press("Escape")


def test_trial_detail_shows_parameters_intermediates_and_logs(exp, page):
    code, first = rest(exp["port"], "GET", "/trials/page?limit=1&status=SUCCEEDED")
    row = first["items"][0]
    page.goto(exp["url"] + "#/trials")
    wait_table(page)
    page.click(f'#tr-table tbody tr[data-trial-id="{row["trialJobId"]}"] td[data-col="sequenceId"]')
    page.wait_for_selector("#tr-detail-id")
    assert page.text_content("#tr-detail-id") == row["trialJobId"]
    params = page.eval_on_selector_all("#tr-params tr", "els => els.map(e => [e.cells[0].textContent, e.cells[1].textContent])")
    assert dict(params)["opt"] == row["parameters"]["opt"]
    assert page.text_content("#tr-inter-count") == "(5)"
    page.wait_for_selector("#tr-curve.js-plotly-plot .scatterlayer .trace")
    assert page.locator("#tr-curve .scatterlayer .point").count() == 5
    page.wait_for_function("() => /hello from/.test(document.querySelector('#tr-log').textContent)")
    page.click('#tr-detail button[data-log="stderr"]')
    page.wait_for_function("() => /a line on stderr/.test(document.querySelector('#tr-log').textContent)")
    screenshot(page, "trial-detail")
    # compare two selected trials side by side
    page.goto(exp["url"] + "#/trials")
    wait_table(page)
    boxes = page.locator("#tr-table tbody td.sel input")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#tr-compare")
    page.wait_for_selector("#tr-compare-modal table.compare")
    assert page.locator("#tr-compare-modal table.compare thead th").count() == 3
    page.wait_for_selector("#tr-compare-plot .scatterlayer .trace")
    assert page.locator("#tr-compare-plot .scatterlayer .trace").count() == 2
    page.keyboard.press("Escape")
    screenshot(page, "trials")


def test_kill_a_running_trial_from_its_detail(exp, page):
    hold = hold_file(exp["proj"])
    hold.write_text("the UI test kills one of the trials this holds")
    try:
        def held():
            code, jobs = rest(exp["port"], "GET", "/trials/page?limit=50&status=RUNNING")
            return next((t for t in jobs["items"] if t["parameters"]["lr"] > 0.7), None) if code == 200 else None

        trial = wait_for(held, timeout=120, what="a running trial with lr > 0.7")
        page.goto(exp["url"] + f"#/trials/{trial['trialJobId']}")
        try:
            page.wait_for_selector("#tr-kill")
        except Exception:
            screenshot(page, "debug-kill")
            raise AssertionError(f"no kill button; detail: {page.inner_text('#tr-detail')!r}; "
                                 f"row now: {rest(exp['port'], 'GET', '/trials/' + trial['trialJobId'] + '/row')}")
        page.click("#tr-kill")
        assert page.text_content("#tr-kill") == "Click again to kill"  # nothing is sent yet
        page.click("#tr-kill")

        def status():
            t = rest(exp["port"], "GET", f"/trial-jobs/{trial['trialJobId']}")[1]
            return t["status"] if t["status"] not in ("WAITING", "RUNNING") else None

        page.wait_for_selector("#toast:not([hidden])")
        assert page.text_content("#toast") == f"Kill sent to {trial['trialJobId']}"
        assert wait_for(status, timeout=60, what="the killed trial's end") == "USER_CANCELED"
        # the detail shows the new status (from the kill's answer or the feed)
        page.wait_for_selector("#tr-detail .detail-head .pill.s-user_canceled", timeout=30_000)
        assert page.locator("#tr-kill").count() == 0
    finally:
        hold.unlink()


def test_add_a_customized_trial(exp, page):
    page.goto(exp["url"] + "#/trials")
    wait_table(page)
    page.click("#tr-add")
    page.fill("#tr-custom-params", json.dumps({"lr": 0.42, "opt": "sgd", "sleep": 0.5}))
    page.click("#tr-custom-submit")
    page.wait_for_selector("#toast:not([hidden])")
    assert "added" in page.text_content("#toast"), page.text_content("#toast")

    def custom_trial():
        code, jobs = rest(exp["port"], "GET", "/trials/page?limit=5&param.lr=0.42")
        return jobs["items"][0] if code == 200 and jobs["items"] else None

    trial = wait_for(custom_trial, timeout=30, what="the customized trial")
    assert trial["parameters"] == {"lr": 0.42, "opt": "sgd", "sleep": 0.5}
    # the table shows it (the feed brings it; the page re-reads its rows)
    page.fill("#tr-search", trial["trialJobId"])
    wait_table(page, "search=" + trial["trialJobId"])
    assert cells(page, "trialJobId") == [trial["trialJobId"]]
    # a bad body is refused in the dialog, with the reason
    page.click("#tr-add")
    page.fill("#tr-custom-params", "[1, 2]")
    page.click("#tr-custom-submit")
    assert "JSON object" in page.text_content(".modal .error")


PLOTS = {
    "final": ".scatterlayer .point",
    "parallel": ".parcoords .axis",
    "importance": ".barlayer .point",
    "intermediate": ".scatterlayer .trace",
    "duration": ".barlayer .point",
    "slice": ".scatterlayer .point",
}


@pytest.fixture(scope="module")
def plot_page(exp, browser):
    """One page for all plots (plotly.js loads once; tabs are hash routes)."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(exp["url"] + "#/plots")
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the plots page: {errors}"


@pytest.mark.parametrize("plot", list(PLOTS))
def test_each_plot_renders(exp, plot_page, plot):
    page = plot_page
    page.goto(exp["url"] + f"#/plots/{plot}")
    page.wait_for_selector(f'#pl-plot[data-ready="{plot}"]', timeout=60_000)
    assert page.locator("#pl-plot.js-plotly-plot .main-svg").count() >= 1
    marks = page.locator(f"#pl-plot {PLOTS[plot]}").count()
    if plot == "importance":
        assert marks == 3  # lr, opt, sleep
        code, imp = rest(exp["port"], "GET", "/analysis/importance")
        assert imp["importance"]["sleep"] == min(imp["importance"].values())
    elif plot == "parallel":
        assert marks == 4  # 3 parameters + the metric
    else:
        assert marks >= MIN_DONE if plot != "intermediate" else marks >= 2
    if plot == "final":
        assert page.locator("#pl-plot .scatterlayer .trace").count() == 2  # trials + best so far
    if plot == "slice":
        page.select_option("#pl-param", "opt")
        page.wait_for_function("() => document.querySelector('#pl-plot').dataset.ready === 'slice' && "
                               "document.querySelector('#pl-plot .xtitle').textContent === 'opt'")
    assert page.text_content("#pl-note")
    screenshot(page, f"plot-{plot}")


def _running_at_most(port: int, n: int, window: float = 4.0) -> bool:
    """Over ``window`` seconds, never more than ``n`` trials running while trials keep finishing."""
    import time
    start_done = succeeded(port)
    most = 0
    end = time.time() + window
    while time.time() < end:
        most = max(most, rest(port, "GET", "/summary")[1]["counts"].get("RUNNING", 0))
        time.sleep(0.1)
    return most <= n and succeeded(port) > start_done


def test_inline_edits_reach_the_running_experiment(exp, page):
    page.goto(exp["url"] + "#/overview")
    page.wait_for_selector("#ov-edit-trialConcurrency button")
    # Lower the concurrency (raising it needs free CPUs for more trial runners, which a 2-core
    # machine does not have): the controller must then run one trial at a time.
    page.click("#ov-edit-trialConcurrency button")
    page.fill("#ov-edit-trialConcurrency input", "1")
    page.press("#ov-edit-trialConcurrency input", "Enter")
    page.wait_for_function("() => /^1$/.test(document.querySelector('#ov-edit-trialConcurrency .v')?.textContent || '')")
    code, prof = rest(exp["port"], "GET", "/experiment")  # the controller's own profile while it runs
    assert prof["params"]["trialConcurrency"] == 1
    wait_for(lambda: _running_at_most(exp["port"], 1), timeout=90, interval=0, what="one trial at a time")
    page.click("#ov-edit-maxTrialNumber button")
    page.fill("#ov-edit-maxTrialNumber input", "350")
    page.press("#ov-edit-maxTrialNumber input", "Enter")
    page.wait_for_function("() => /350/.test(document.querySelector('#ov-edit-maxTrialNumber .v')?.textContent || '')")
    assert rest(exp["port"], "GET", "/experiment")[1]["params"]["maxTrialNumber"] == 350
    page.click("#ov-edit-maxExperimentDuration button")
    page.fill("#ov-edit-maxExperimentDuration input", "2h")
    page.press("#ov-edit-maxExperimentDuration input", "Enter")
    page.wait_for_function("() => /2h/.test(document.querySelector('#ov-edit-maxExperimentDuration .v')?.textContent || '')")
    assert rest(exp["port"], "GET", "/experiment")[1]["params"]["maxExperimentDuration"] in ("2h", 7200)
    # a value the server refuses shows its message, and nothing changes
    page.click("#ov-edit-maxExperimentDuration button")
    page.fill("#ov-edit-maxExperimentDuration input", "banana")
    page.press("#ov-edit-maxExperimentDuration input", "Enter")
    page.wait_for_selector("#toast.toast-error:not([hidden])")
    assert "maxExperimentDuration" in page.text_content("#toast")
    assert rest(exp["port"], "GET", "/experiment")[1]["params"]["maxExperimentDuration"] in ("2h", 7200)
    page.keyboard.press("Escape")
    screenshot(page, "overview-edit")
    # back to two at a time for what follows
    page.click("#ov-edit-trialConcurrency button")
    page.fill("#ov-edit-trialConcurrency input", "2")
    page.press("#ov-edit-trialConcurrency input", "Enter")
    page.wait_for_function("() => /^2$/.test(document.querySelector('#ov-edit-trialConcurrency .v')?.textContent || '')")


def test_experiments_page_lists_this_experiment(exp, page):
    page.goto(exp["base"] + "/experiments" + (f"?token={exp['token']}" if exp["token"] else ""))
    page.wait_for_selector(f'#ex-table tr[data-exp-id="{exp["id"]}"]')
    assert page.locator(f'#ex-table tr[data-exp-id="{exp["id"]}"]').inner_text().count(NAME) == 1
    page.fill("#ex-filter", "no-such-experiment")
    page.wait_for_function("() => document.querySelectorAll('#ex-table tr[data-exp-id]').length === 0")
    page.fill("#ex-filter", "")
    page.wait_for_selector(f'#ex-table tr[data-exp-id="{exp["id"]}"]')
    screenshot(page, "experiments")
