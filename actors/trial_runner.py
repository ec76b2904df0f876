"""The trial-runner actor: a long-lived worker that runs one trial at a time.

The controller keeps a bounded pool of these, sized to the trial concurrency, and reuses them
(an actor costs ~90 MiB and seconds to start; one per trial does not scale).  A runner:

- runs a **function trial** in a worker thread with the trial API bound to it (and to the
  threads it starts), appending each report to the attempt's metrics file before sending it;
- runs a **command trial** under a supervisor process (:mod:`nniray.actors.trial_supervisor`)
  with NNI's environment variables, stdout in ``trial.log`` and stderr in ``stderr``, reading
  the metrics the trial appends to the attempt's ``.nni/metrics``
  (:mod:`nniray.actors.trial_records`); the supervisor makes sure nothing the trial started
  outlives the trial or this runner;
- streams metrics to the controller from a sender thread (batched, retried until the
  controller takes them, so a restarting controller loses nothing; the controller drops
  duplicates by (trial, type, sequence));
- keeps each trial's outcome until the controller acknowledges it, so a controller that
  restarts mid-trial can collect it with :meth:`wait`.

The runner logic lives in :class:`TrialRunner` (plain Python, unit-testable); the Ray actor is
``ray.remote(TrialRunner)`` built in :mod:`nniray.actors.handles`.
"""
from __future__ import annotations

import ctypes
import inspect
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable

from nniray import trial as trial_api
from nniray.actors import trial_records as records
from nniray.actors import trial_supervisor as supervisor

# How long a stopped trial may take to wind down before it is killed hard.
STOP_GRACE_SECONDS = 5.0
SENDER_BATCH_WINDOW = 0.01


class TrialRunner:
    def __init__(self, report: Callable[[list], Any] | None, index: int, experiment_id: str) -> None:
        """``report(events)`` delivers a batch of metric events to the controller and raises on
        failure (it is retried).  None for a runner used without a controller (tests)."""
        self.index = index
        self.experiment_id = experiment_id
        self._report = report
        self._outbox: "queue.Queue[dict]" = queue.Queue()
        self._lock = threading.Lock()
        self._current: dict | None = None  # {trial_id, stop_status, proc, thread_id}
        self._outcomes: dict[str, dict] = {}  # finished, not yet acknowledged
        self._done = threading.Condition(self._lock)
        self._known: set[str] = set()
        self._pending_events: dict[str, list] = {}
        self._spare: tuple[subprocess.Popen, int] | None = None  # a started supervisor awaiting its trial
        self._sender = threading.Thread(target=self._send_loop, daemon=True, name="nniray-metric-sender")
        self._sender.start()

    # -- controller-facing API -----------------------------------------------------------------
    def ready(self) -> dict:
        import socket
        return {"index": self.index, "node": socket.gethostname(), "pid": os.getpid()}

    def run(self, spec: dict) -> dict:
        """Run one trial to the end and return its outcome
        ``{trial_id, status, message, events, exit_code}`` (``events`` are the metric events not
        yet delivered by the sender)."""
        tid = spec["trial_id"]
        with self._lock:
            if tid in self._outcomes:  # re-dispatched after a controller restart
                return self._outcomes[tid]
            self._known.add(tid)
            self._current = {"trial_id": tid, "stop_status": None, "proc": None, "thread_id": None,
                             "seq": {"PERIODICAL": 0, "FINAL": 0}, "attempt": int(spec.get("attempt") or 0),
                             "record_fd": None}
            self._pending_events[tid] = []
        start = time.time()
        try:
            if spec.get("function") is not None:
                status, message, exit_code = self._run_function(spec)
            else:
                status, message, exit_code = self._run_command(spec)
        except BaseException as e:  # the runner itself must survive anything a trial does
            status, message, exit_code = "FAILED", f"runner error: {e!r}", None
        with self._lock:
            fd = self._current.get("record_fd") if self._current else None
            if fd is not None:
                os.close(fd)
            stop_status = self._current["stop_status"] if self._current else None
            if stop_status is not None:
                status = stop_status
                message = self._current.get("stop_message") or message
            events = self._take_unsent(tid)
            _write_state(spec, exit_code)
            outcome = {"trial_id": tid, "status": status, "message": message, "events": events,
                       "exit_code": exit_code, "start_time": start, "end_time": time.time(),
                       "runner": self.index,
                       "retire_runner": bool(self._current and self._current.get("retire_runner"))}
            self._outcomes[tid] = outcome
            self._current = None
            self._done.notify_all()
        return outcome

    def wait(self, trial_id: str, timeout: float | None = None) -> dict:
        """The outcome of ``trial_id`` once it ends (for a controller that restarted while the
        trial ran); ``{"status": "UNKNOWN"}`` if this runner never received the trial."""
        deadline = None if timeout is None else time.time() + timeout
        with self._lock:
            while True:
                if trial_id in self._outcomes:
                    return self._outcomes[trial_id]
                if trial_id not in self._known:
                    return {"trial_id": trial_id, "status": "UNKNOWN"}
                remaining = None if deadline is None else deadline - time.time()
                if remaining is not None and remaining <= 0:
                    return {"trial_id": trial_id, "status": "RUNNING"}
                self._done.wait(remaining if remaining is not None else 1.0)

    def ack(self, trial_ids: list[str]) -> None:
        with self._lock:
            for t in trial_ids:
                self._outcomes.pop(t, None)
                self._known.discard(t)

    def current(self) -> str | None:
        with self._lock:
            return None if self._current is None else self._current["trial_id"]

    def stop(self, trial_id: str, status: str, message: str = "") -> bool:
        """Ask the running trial to end with ``status`` (EARLY_STOPPED, USER_CANCELED,
        SYS_CANCELED).  Command trials get SIGTERM then SIGKILL; function trials get
        :class:`TrialStopped` at their next report and, failing that, an async exception."""
        with self._lock:
            cur = self._current
            if cur is None or cur["trial_id"] != trial_id:
                return False
            cur["stop_status"] = status
            cur["stop_message"] = message
            proc, thread_id = cur["proc"], cur["thread_id"]
        if proc is not None:
            _terminate(proc)
        elif thread_id is not None:
            threading.Thread(target=self._interrupt_thread, args=(trial_id, thread_id), daemon=True).start()
        return True

    # -- metric events ---------------------------------------------------------------------------
    def _emit(self, trial_id: str, parameter_id: Any, mtype: str, value: Any, sequence: int | None = None,
              timestamp: float | None = None) -> None:
        """Queue one metric event.  ``sequence`` comes from the metrics file for a command trial;
        for a function trial (None) the report is first appended to the attempt's metrics file
        and numbered as a reader of that file would number it."""
        with self._lock:
            cur = self._current
            if cur is None or cur["trial_id"] != trial_id:
                return
            if sequence is None:
                seq = cur["seq"][mtype]
                line = records.encode(mtype, value)  # raises in the trial for a value JSON cannot hold
                if cur["record_fd"] is not None:
                    os.write(cur["record_fd"], line)
                cur["seq"][mtype] = seq + 1
            else:
                seq = sequence
            ev = {"trial_id": trial_id, "parameter_id": parameter_id, "attempt": cur["attempt"], "type": mtype,
                  "sequence": seq, "value": value, "timestamp": timestamp or time.time()}
            self._pending_events.setdefault(trial_id, []).append(ev)
        self._outbox.put(ev)

    def _take_unsent(self, trial_id: str) -> list:
        # Called with the lock held: whatever the sender has not delivered goes back with the
        # outcome, so a fast trial costs one message instead of two.
        return list(self._pending_events.pop(trial_id, []))

    def _send_loop(self) -> None:
        while True:
            ev = self._outbox.get()
            time.sleep(SENDER_BATCH_WINDOW)
            batch = [ev]
            while True:
                try:
                    batch.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            with self._lock:
                # Drop events that already left with an outcome.
                batch = [e for e in batch if e in self._pending_events.get(e["trial_id"], [])]
            if not batch or self._report is None:
                continue
            delay = 0.05
            while True:
                try:
                    self._report(batch)
                    break
                except Exception:  # controller restarting or briefly unreachable: retry
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            with self._lock:
                for e in batch:
                    lst = self._pending_events.get(e["trial_id"])
                    if lst is not None and e in lst:
                        lst.remove(e)

    # -- function trials -------------------------------------------------------------------------
    def _run_function(self, spec: dict) -> tuple[str, str, int | None]:
        fn = _resolve_function(spec["function"])
        params = spec["hyper_params"].get("parameters")
        pid = spec["hyper_params"].get("parameter_id")
        tid = spec["trial_id"]
        result: dict = {}
        ctx = trial_api.TrialContext(
            self.experiment_id, tid, spec["sequence_id"], pid, params,
            emit=lambda kind, value: self._emit(tid, pid, kind, value),
            should_stop=lambda: self._stop_requested(tid))

        def target() -> None:
            trial_api._set_context(ctx)
            try:
                with self._lock:
                    if self._current is not None:
                        self._current["thread_id"] = threading.get_ident()
                ret = _call_trial_function(fn, params)
                if ret is not None and not ctx.final_reported:
                    # Returning a metric is the same as reporting it as final (Ray Tune style).
                    trial_api.report_final_result(ret)
                result["status"] = "SUCCEEDED"
            except trial_api.TrialStopped:
                result["status"] = "STOPPED"
            except SystemExit as e:
                # As for a command trial: sys.exit(0) / sys.exit() ends it normally, any other
                # code fails it with that code.
                code = e.code
                if code is None or code == 0:
                    result["status"] = "SUCCEEDED"
                else:
                    result["status"] = "FAILED"
                    result["exit_code"] = code if isinstance(code, int) else 1
                    result["message"] = f"exit code {code}" if isinstance(code, int) else f"sys.exit({code!r})"
            except BaseException as e:  # noqa: BLE001 - a trial may raise anything
                result["status"] = "FAILED"
                result["message"] = f"{type(e).__name__}: {e}"
                result["traceback"] = traceback.format_exc()
            finally:
                trial_api._set_context(None)
                with self._lock:
                    if self._current is not None:
                        self._current["thread_id"] = None

        sys_dir = records.attempt_dir(spec["trial_dir"], spec.get("attempt") or 0)
        os.makedirs(os.path.join(sys_dir, ".nni"), exist_ok=True)
        fd = os.open(records.metrics_path(spec["trial_dir"], spec.get("attempt") or 0),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with self._lock:
            if self._current is not None:
                self._current["record_fd"] = fd
        threads_before = set(threading.enumerate())
        children_before = set(supervisor.children(os.getpid()))
        # Threads the trial starts report into it as well (a runner runs one trial at a time).
        trial_api._set_process_context(ctx)
        t = threading.Thread(target=target, daemon=True, name=f"trial-{tid}")
        try:
            t.start()
            timeout = spec.get("max_trial_seconds")
            t.join(timeout)
            if t.is_alive():
                self.stop(tid, "SYS_CANCELED", f"exceeded maxTrialDuration ({timeout:g}s)")
                t.join(STOP_GRACE_SECONDS)
                if t.is_alive():
                    # A trial stuck in native code: report it; the controller replaces this runner.
                    with self._lock:
                        if self._current is not None:
                            self._current["retire_runner"] = True  # typed, for the controller
                    return "SYS_CANCELED", "trial did not stop; its runner is replaced", None
        finally:
            trial_api._set_process_context(None, [x for x in threading.enumerate() if x not in threads_before])
            # Processes the trial started and left running end with it.
            for child in supervisor.children(os.getpid()):
                if child not in children_before:
                    supervisor.kill_tree(child, 0)
                    _kill_pid(child)
        if "traceback" in result:
            with open(os.path.join(spec["trial_dir"], "stderr"), "w") as f:
                f.write(result["traceback"])
        status = result.get("status", "FAILED")
        return status, result.get("message", ""), result.get("exit_code", 0 if status == "SUCCEEDED" else 1)

    def _stop_requested(self, tid: str) -> bool:
        cur = self._current
        return cur is not None and cur["trial_id"] == tid and cur["stop_status"] is not None

    def _interrupt_thread(self, trial_id: str, thread_id: int) -> None:
        # Give the trial a moment to hit its next report (clean stop), then interrupt it.
        time.sleep(0.5)
        with self._lock:
            cur = self._current
            if cur is None or cur["trial_id"] != trial_id or cur["thread_id"] != thread_id:
                return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                   ctypes.py_object(trial_api.TrialStopped))

    # -- command trials --------------------------------------------------------------------------
    def _run_command(self, spec: dict) -> tuple[str, str, int | None]:
        tid = spec["trial_id"]
        trial_dir = spec["trial_dir"]
        attempt = int(spec.get("attempt") or 0)
        sys_dir = records.attempt_dir(trial_dir, attempt)
        os.makedirs(os.path.join(sys_dir, ".nni"), exist_ok=True)
        with open(os.path.join(sys_dir, "parameter.cfg"), "w") as f:
            json.dump(spec["hyper_params"], f)
        metrics_path = records.metrics_path(trial_dir, attempt)
        open(metrics_path, "a").close()
        for marker in (records.ended_marker(trial_dir, attempt), records.supervisor_marker(trial_dir, attempt)):
            if os.path.exists(marker):
                os.remove(marker)
        env = dict(os.environ)
        env.update({
            "NNI_PLATFORM": "local", "NNI_EXP_ID": self.experiment_id, "NNI_TRIAL_JOB_ID": tid,
            # Each attempt has its own NNI_SYS_DIR (parameters, metrics); outputs are shared.
            "NNI_SYS_DIR": sys_dir, "NNI_OUTPUT_DIR": trial_dir, "NNI_TRIAL_SEQ_ID": str(spec["sequence_id"]),
            "MULTI_PHASE": "false", "NNIRAY_TRIAL_ATTEMPT": str(attempt),
        })
        env.update(spec.get("env") or {})
        # Ray workers carry Ray's own variables; the trial must not think it is a Ray worker.
        for k in [k for k in env if k.startswith("RAY_") and k not in ("RAY_ADDRESS",)]:
            env.pop(k, None)
        with open(os.path.join(sys_dir, "run.sh"), "w") as f:
            f.write(f"#!/bin/bash\ncd {_q(spec['code_dir'])}\n"
                    + "".join(f"export {k}={_q(env[k])}\n" for k in
                              ("NNI_PLATFORM", "NNI_EXP_ID", "NNI_TRIAL_JOB_ID", "NNI_SYS_DIR",
                               "NNI_OUTPUT_DIR", "NNI_TRIAL_SEQ_ID"))
                    + f"{spec['command']}\n")
        argv = [str(STOP_GRACE_SECONDS), records.ended_marker(trial_dir, attempt),
                records.supervisor_marker(trial_dir, attempt), "--", "bash", "-c", spec["command"]]
        if not os.path.isdir(spec["code_dir"]):
            return "FAILED", f"cannot start trial command: no directory {spec['code_dir']!r}", None
        try:
            proc, lifeline_w = self._take_spare()
            _write_all(lifeline_w, json.dumps({
                "argv": argv, "cwd": spec["code_dir"], "env": env,
                "stdout": os.path.join(trial_dir, "trial.log"), "stderr": os.path.join(trial_dir, "stderr"),
            }).encode() + b"\n")
        except OSError as e:
            return "FAILED", f"cannot start trial command: {e}", None
        with self._lock:
            if self._current is not None:
                self._current["proc"] = proc
        pid = spec["hyper_params"].get("parameter_id")
        reader = records.RecordReader(metrics_path)
        pidfd = _pidfd(proc.pid)
        poll = 0.002
        deadline = None if spec.get("max_trial_seconds") is None else time.time() + spec["max_trial_seconds"]
        try:
            while True:
                code = proc.poll()
                self._read_records(reader, tid, pid)
                if code is not None:
                    break
                if deadline is not None and time.time() > deadline:
                    self.stop(tid, "SYS_CANCELED", f"exceeded maxTrialDuration ({spec['max_trial_seconds']:g}s)")
                    deadline = None
                if pidfd is not None:
                    select.select([pidfd], [], [], poll)  # returns at once when the trial ends
                else:
                    time.sleep(poll)
                poll = min(poll * 1.5, 0.1)  # fast trials are seen fast, long ones cost nothing
            # Every process of the trial is gone: a last record without its newline is whole.
            self._read_records(reader, tid, pid, complete=True)
        finally:
            os.close(lifeline_w)
            if pidfd is not None:
                os.close(pidfd)
            _kill_trial_group(trial_dir, attempt)
        if code == 0:
            return "SUCCEEDED", "", code
        return "FAILED", _failure_message(code, os.path.join(trial_dir, "stderr")), code

    def _take_spare(self) -> tuple[subprocess.Popen, int]:
        """A started supervisor waiting for its trial (and start the next one in the background):
        the supervisor's Python start costs tens of ms, paid while the previous trial runs."""
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None or spare[0].poll() is not None:
            if spare is not None:
                os.close(spare[1])
            spare = _start_supervisor()
        threading.Thread(target=self._refill_spare, daemon=True, name="nniray-spare-supervisor").start()
        return spare

    def _refill_spare(self) -> None:
        try:
            spare = _start_supervisor()
        except OSError:
            return
        with self._lock:
            old, self._spare = self._spare, spare
        if old is not None:
            os.close(old[1])  # EOF: that spare exits

    def _read_records(self, reader: records.RecordReader, tid: str, pid: Any, complete: bool = False) -> None:
        events, errors = reader.read(complete)
        for ev in events:
            self._emit(tid, pid, ev["type"], ev["value"], sequence=ev["sequence"], timestamp=ev["time"])
        if errors and not self._stop_requested(tid):
            # A trial whose reports cannot be read is not trusted to go on: it fails, and says why.
            self.stop(tid, "FAILED", errors[0].message(reader.path))


def _q(s: str) -> str:
    return "'" + str(s).replace("'", "'\\''") + "'"


def _terminate(proc: subprocess.Popen) -> None:
    """Stop a command trial: SIGTERM to its supervisor, which passes it to every process of the
    trial and SIGKILLs them after the grace period; SIGKILL for all of them should the
    supervisor itself not end."""
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def hard_kill() -> None:
        try:
            proc.wait(STOP_GRACE_SECONDS + 5)
        except subprocess.TimeoutExpired:
            supervisor.kill_tree(proc.pid, 0)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    threading.Thread(target=hard_kill, daemon=True).start()


def _kill_trial_group(trial_dir: str, attempt: int) -> None:
    # Backstop for a supervisor that was killed itself (it writes the ended marker once every
    # process of the trial is gone): its trial's process group goes too.
    if os.path.exists(records.ended_marker(trial_dir, attempt)):
        return
    try:
        with open(records.supervisor_marker(trial_dir, attempt)) as f:
            trial_pid = int(f.read().split()[1])
        os.killpg(trial_pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _start_supervisor() -> tuple[subprocess.Popen, int]:
    # Its stdin is a pipe only this process can write to: when this process dies, the kernel
    # closes it and the supervisor kills the trial's whole process tree.
    lifeline_r, lifeline_w = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", supervisor.__file__, "--spare"], cwd="/",
                                stdin=lifeline_r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        os.close(lifeline_w)
        raise
    finally:
        os.close(lifeline_r)
    return proc, lifeline_w


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux >= 5.3), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _write_state(spec: dict, exit_code: int | None) -> None:
    """``<attempt dir>/.nni/state``: "<exit code> <end time ms>" once the attempt ended (NNI's
    file), for both kinds of trial, so a reader recovering a trial knows it had finished."""
    try:
        with open(records.state_path(spec["trial_dir"], spec.get("attempt") or 0), "w") as f:
            f.write(f"{'' if exit_code is None else exit_code} {int(time.time() * 1000)}\n")
    except (OSError, KeyError):
        pass


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _failure_message(code: int, stderr_path: str) -> str:
    if code < 0:
        head = f"killed by signal {signal.Signals(-code).name}"
    elif code == 127:
        head = "exit code 127 (command not found: check trialCommand)"
    else:
        head = f"exit code {code}"
    try:
        with open(stderr_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 2000))
            tail = f.read().decode(errors="replace").strip().splitlines()[-5:]
    except OSError:
        tail = []
    return head + (": " + " | ".join(tail) if tail else "")


def _resolve_function(fn: Any) -> Callable:
    if callable(fn):
        return fn
    if isinstance(fn, str) and ":" in fn:
        import importlib
        mod, name = fn.split(":", 1)
        return getattr(importlib.import_module(mod), name)
    raise TypeError(f"trial_function must be a callable or 'module:function', got {fn!r}")


def _call_trial_function(fn: Callable, params: Any) -> Any:
    try:
        sig = inspect.signature(fn)
        takes_arg = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                        for p in sig.parameters.values())
    except (TypeError, ValueError):
        takes_arg = False
    return fn(params) if takes_arg else fn()
