"""Issue 10 new-user bug: a finished experiment's endTime was overwritten by the time of the
later `stop` (the store's end_time and the registry's endTime)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime" / "core"))

from core_harness import Harness  # noqa: E402

from nniray.runtime import commands as c  # noqa: E402
from nniray.runtime import events as e  # noqa: E402
from nniray.runtime.status import ExperimentStatus as S  # noqa: E402


def _end_times(h, cmds):
    return [w.value for w in h.writes(c.MetaChanged, cmds) if w.key == "end_time"]


def test_stop_after_done_keeps_the_done_time():
    h = Harness(max_trials=1, concurrency=1)
    h.start()
    h.answer()
    done = h.end("t000", dt=5)
    assert h.status is S.DONE and _end_times(h, done) == [5.0]
    later = h.send(e.StopRequested(), dt=100)
    assert h.status is S.DONE
    assert _end_times(h, later) == []  # the DONE time stays the end


def test_a_stop_that_ends_the_experiment_records_its_time():
    h = Harness(concurrency=1)
    h.start()
    h.answer()
    h.send(e.StopRequested(), dt=3)
    cmds = h.end("t000", dt=1)
    assert h.status is S.STOPPED and _end_times(h, cmds) == [4.0]
