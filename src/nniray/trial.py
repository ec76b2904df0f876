"""The trial side of NNI's API: what user code calls inside a trial.

A trial learns where it runs from one of three contexts:

- **function trial**: the trial-runner actor installs a :class:`TrialContext` for the thread
  that runs the user's function, and as the process's current trial (a runner runs one trial
  at a time), so threads the trial starts report into it too; metrics go to the runner's
  outbox.  Threads still alive when their trial ended are remembered and never report into a
  later trial of the same runner.
- **command trial**: the runner starts a subprocess with NNI's environment variables
  (``NNI_PLATFORM``, ``NNI_EXP_ID``, ``NNI_TRIAL_JOB_ID``, ``NNI_SYS_DIR``, ``NNI_OUTPUT_DIR``,
  ``NNI_TRIAL_SEQ_ID``); parameters come from ``$NNI_SYS_DIR/parameter.cfg`` and metrics are
  appended as JSON lines to ``$NNI_SYS_DIR/.nni/metrics``, which the runner tails.  The
  subprocess never joins Ray, so ``import nniray`` here stays fast (no Ray, no torch).
- **standalone**: none of the above; parameters are ``{}`` and metrics are printed.
"""
from __future__ import annotations

import json
import os
import threading
import time
import weakref
from typing import Any, Callable

from .utils import MetricError, extract_scalar_reward

_local = threading.local()
_env_context: "TrialContext | None" = None
# The function trial its runner is running now (one at a time per runner process): what a
# thread started by the trial reports into.
_process_context: "TrialContext | None" = None
# Threads that outlived the trial they were started in: never attributed to a later trial.
_stale_threads: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()


class TrialStopped(BaseException):
    """Raised inside a function trial when the controller stopped it (assessor, timeout, kill).
    A BaseException so that a user's ``except Exception`` does not swallow it."""


class TrialContext:
    """Where a running trial sends what it reports."""

    platform = "local"

    def __init__(self, experiment_id: str, trial_id: str, sequence_id: int, parameter_id: Any,
                 parameters: Any, emit: Callable[[str, Any], None],
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.experiment_id = experiment_id
        self.trial_id = trial_id
        self.sequence_id = sequence_id
        self.parameter_id = parameter_id
        self.parameters = parameters
        self._emit = emit
        self._should_stop = should_stop or (lambda: False)
        self.parameters_given = False
        self.final_reported = False
        self.intermediate_count = 0

    def emit(self, kind: str, value: Any) -> None:
        self._emit(kind, value)

    def check_stop(self) -> None:
        if self._should_stop():
            raise TrialStopped(self.trial_id)


class _FileChannelContext(TrialContext):
    """A command trial's context, built from NNI's environment variables."""

    def __init__(self) -> None:
        sys_dir = os.environ["NNI_SYS_DIR"]
        with open(os.path.join(sys_dir, "parameter.cfg")) as f:
            cfg = json.load(f)
        os.makedirs(os.path.join(sys_dir, ".nni"), exist_ok=True)
        self._path = os.path.join(sys_dir, ".nni", "metrics")
        self.platform = os.environ.get("NNI_PLATFORM", "local")
        super().__init__(os.environ.get("NNI_EXP_ID", ""), os.environ["NNI_TRIAL_JOB_ID"],
                         int(os.environ.get("NNI_TRIAL_SEQ_ID", 0)), cfg.get("parameter_id"),
                         cfg.get("parameters"), self._append)

    def _append(self, kind: str, value: Any) -> None:
        line = json.dumps({"type": kind, "value": value, "time": time.time()}) + "\n"
        # One O_APPEND write per line: a reader never sees half a record, and nothing is
        # buffered in this process if it is killed right after reporting.
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _current() -> TrialContext | None:
    global _env_context
    ctx = getattr(_local, "context", None)
    if ctx is not None:
        return ctx
    ctx = _process_context
    if ctx is not None and threading.current_thread() not in _stale_threads:
        return ctx
    if _env_context is None and os.environ.get("NNI_TRIAL_JOB_ID") and os.environ.get("NNI_SYS_DIR") \
            and os.environ.get("NNI_PLATFORM") not in (None, "", "unittest"):
        _env_context = _FileChannelContext()
    return _env_context


def _set_context(ctx: TrialContext | None) -> None:
    """Installed by the trial runner around a function trial (per thread)."""
    _local.context = ctx


def _set_process_context(ctx: TrialContext | None, stale: "list[threading.Thread] | tuple" = ()) -> None:
    """Installed by the trial runner for the whole process while it runs a function trial;
    ``stale`` are the threads the ending trial left running."""
    global _process_context
    for t in stale:
        _stale_threads.add(t)
    _process_context = ctx


# ---------------------------------------------------------------------------------------------
# Public API (NNI names and semantics)
# ---------------------------------------------------------------------------------------------

def get_next_parameter() -> Any:
    """The parameters for this trial: the dict on the first call, ``None`` on later calls
    (non-multiphase), ``{}`` in standalone mode."""
    ctx = _current()
    if ctx is None:
        return {}
    if ctx.parameters_given:
        return None
    ctx.parameters_given = True
    return ctx.parameters


def get_current_parameter(tag: str | None = None) -> Any:
    ctx = _current()
    if ctx is None:
        return {} if tag is None else None
    params = ctx.parameters
    if tag is None:
        return params
    return params.get(tag) if isinstance(params, dict) else None


def _plain(metric: Any) -> Any:
    """numpy scalars, 0-d and one-element arrays as Python numbers (NNI accepts them), also
    inside dicts and lists; a larger array is refused with its size."""
    if isinstance(metric, dict):
        return {k: _plain(v) for k, v in metric.items()}
    if isinstance(metric, (list, tuple)):
        return [_plain(v) for v in metric]
    if type(metric).__module__ == "numpy" and hasattr(metric, "item"):
        size = getattr(metric, "size", 1)
        if size != 1:
            raise MetricError(f"metric is a numpy array of {size} elements: report one number "
                              f"(e.g. float(arr.mean())) or a dict with a numeric 'default'")
        return metric.item()
    return metric


def _check_metric(metric: Any, what: str) -> Any:
    """Numbers and dicts with a numeric ``default`` pass (extra keys kept); NaN, inf, strings
    and dicts without ``default`` are refused here, at the call that made them."""
    try:
        metric = _plain(metric)
    except MetricError as e:
        raise MetricError(f"{what}: {e}") from None
    try:
        extract_scalar_reward(metric)
    except MetricError as e:
        raise MetricError(f"{what}: {e}") from None
    except OverflowError:
        raise MetricError(f"{what}: metric is an integer beyond float range: report a float") from None
    if isinstance(metric, dict):
        try:
            json.dumps(metric, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise MetricError(f"{what}: metric dict must be JSON-serializable with finite numbers ({e})") from None
    elif hasattr(metric, "item"):
        metric = metric.item()  # numpy scalar -> Python number
    return metric


def report_intermediate_result(metric: Any) -> None:
    ctx = _current()
    metric = _check_metric(metric, "report_intermediate_result")
    if ctx is None:
        print(f"[nniray standalone] intermediate result: {metric}")
        return
    ctx.check_stop()
    ctx.intermediate_count += 1
    ctx.emit("PERIODICAL", metric)


def report_final_result(metric: Any) -> None:
    ctx = _current()
    metric = _check_metric(metric, "report_final_result")
    if ctx is None:
        print(f"[nniray standalone] final result: {metric}")
        return
    if ctx.final_reported:
        raise MetricError("report_final_result: this trial already reported its final result; "
                          "report it once (use report_intermediate_result for progress)")
    ctx.final_reported = True
    ctx.emit("FINAL", metric)


def get_experiment_id() -> str:
    ctx = _current()
    return "STANDALONE" if ctx is None else ctx.experiment_id


def get_trial_id() -> str:
    ctx = _current()
    return "STANDALONE" if ctx is None else ctx.trial_id


def get_sequence_id() -> int:
    ctx = _current()
    return 0 if ctx is None else ctx.sequence_id
