"""One driver per experiment: the lock is held by a live process, refused to a second one
with the holder named, and free again once the holder is gone (however it ended)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from nniray.errors import ExperimentRunningError
from nniray.runtime.lock import ExperimentLock

HOLDER = """
import sys, time
from nniray.runtime.lock import ExperimentLock
ExperimentLock(sys.argv[1], "exp1").acquire(port=8123)
print("HELD", flush=True)
time.sleep(600)
"""


def test_a_second_holder_is_refused_naming_the_first_and_a_killed_holder_frees_it(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HELD"
        with pytest.raises(ExperimentRunningError) as info:
            ExperimentLock(tmp_path, "exp1").acquire()
        msg = str(info.value)
        assert f"process {proc.pid}" in msg and "http://127.0.0.1:8123" in msg and "nniray stop exp1" in msg
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    lock = ExperimentLock(tmp_path, "exp1")
    lock.acquire()  # the kernel dropped the dead holder's lock
    assert lock.held and lock.holder()["pid"] == os.getpid()
    lock.release()


def test_the_same_process_cannot_hold_it_twice_and_release_frees_it(tmp_path):
    first = ExperimentLock(tmp_path, "exp2")
    first.acquire()
    with pytest.raises(ExperimentRunningError):
        ExperimentLock(tmp_path, "exp2").acquire()
    first.release()
    again = ExperimentLock(tmp_path, "exp2")
    again.acquire()
    again.release()
