"""Shared parts of the browser tests: Debian's chromium driven by Playwright (no browser
download), a real experiment started with `nniray create` (the CLI tests' helpers), and waits
on the DOM the UI marks when it has rendered."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from cli_helpers import Cli, free_port, rest, wait_status  # noqa: E402,F401

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# A trial that reports 5 intermediate results and a dict final; `sleep` keeps it running, and
# while the file HOLD exists the trials with lr > 0.7 wait (a test then has a trial to kill).
TRIAL = """\
import os
import sys
import time
import nniray as nni
p = nni.get_next_parameter()
score = 1 - (p["lr"] - 0.3) ** 2 + (0.2 if p["opt"] == "adam" else 0.0)
for i in range(5):
    nni.report_intermediate_result(score * (i + 1) / 5)
print("hello from", nni.get_trial_id(), flush=True)
print("a line on stderr", file=sys.stderr, flush=True)
time.sleep(float(p.get("sleep", 0)))
while p["lr"] > 0.7 and os.path.exists({hold!r}):
    time.sleep(0.2)
nni.report_final_result({{"default": score, "loss": 1 - score}})
"""


def browser_or_skip():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api


def start_browser(sync_api):
    pw = sync_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
    return pw, browser


def hold_file(folder: Path) -> Path:
    return folder / "HOLD"


def write_ui_experiment(folder: Path, name: str, max_trials: int, concurrency: int, sleep: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trial.py").write_text(TRIAL.format(hold=str(hold_file(folder))))
    space = {"lr": {"_type": "uniform", "_value": [0, 1]}, "opt": {"_type": "choice", "_value": ["sgd", "adam"]},
             "sleep": {"_type": "choice", "_value": [sleep]}}
    cfg = folder / "config.yml"
    cfg.write_text(
        f"experimentName: {name}\n"
        f"searchSpace: {json.dumps(space)}\n"
        f"trialCommand: {sys.executable} trial.py\n"
        "trialCodeDirectory: .\n"
        f"trialConcurrency: {concurrency}\n"
        f"maxTrialNumber: {max_trials}\n"
        "tuner:\n  name: Random\n  classArgs: {seed: 3, optimize_mode: maximize}\n"
        f"experimentWorkingDirectory: {folder / 'exps'}\n"
        "trainingService:\n  platform: local\n")
    return cfg


def wait_for(predicate, timeout: float = 120, interval: float = 0.3, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def succeeded(port: int, token: str | None = None) -> int:
    code, stats = rest(port, "GET", "/job-statistics")
    if code != 200:
        return 0
    return sum(s["trialJobNumber"] for s in stats if s["trialJobStatus"] == "SUCCEEDED")


def experiment_token(cli: Cli, exp_id: str) -> str | None:
    """The token the daemon wrote next to the experiment when it started (mutating routes need
    it), or None when the server runs without one."""
    from nniray.web import tokens
    return tokens.read(cli.registry()[exp_id]["logDir"])


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
