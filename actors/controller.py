"""The experiment controller: one async actor per experiment, a thin shell around
:class:`nniray.runtime.core.ExperimentCore`.

The core decides; this shell turns Ray replies into the core's events and runs the commands
the core returns: store writes (on the writer thread, :mod:`nniray.actors.store_writer`),
runner calls (through the training service's runner pool), algorithm calls (through one
:class:`~nniray.runtime.ports.AlgorithmPort`, whatever the algorithm is).

Rules it keeps:

- **Write before acting.** The commands of a batch run only after the batch's writes have
  committed: a trial row (RUNNING, its runner, its parameters) before the trial is dispatched,
  a trial's end before the algorithm hears of it, a status before it is acted on.  A metric
  row is committed before the core (and so the algorithm) hears of the metric.
- **Restart-safe.** The controller is a detached, named actor with ``max_restarts=-1``.  A
  fresh process rebuilds everything from the SQLite store: it re-attaches to the named runners
  and algorithm actors, collects the outcomes of trials that ran on while it was down
  (``TrialRunner.wait``), re-sends to the tuner the results it may have missed
  (``TunerHost.sync``), and never creates a trial twice (sequence ids come from the store).
- **Resume reads what trials wrote.** A resumed experiment first reads each interrupted
  trial's metrics file to its end (:mod:`nniray.actors.trial_records`), then records how it
  ended, then rebuilds the algorithm from every stored result.
- **A store that cannot be written is an ERROR, not a hang**: the reason is kept in memory
  (``get_status``) and in ``log/controller-status.json`` (:mod:`nniray.runtime.sidecar`).
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import secrets
import string
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from ray.exceptions import RayActorError, RayError

from nniray.actors import trial_records
from nniray.actors.algorithms import build_port, short
from nniray.actors.metrics import ExperimentMetrics
from nniray.actors.store_writer import StoreWriter
from nniray.config import parse_duration
from nniray.runtime import commands as c
from nniray.runtime import sidecar
from nniray.runtime import events as e
from nniray.runtime.core import ExperimentCore, Limits, check_update
from nniray.runtime.status import ExperimentStatus, MetricType, TrialStatus
from nniray.search_space import SearchSpaceError
from nniray.storage import ExperimentStore, FencedError
from nniray.training_services.local import LocalTrainingService

_ID_ALPHABET = string.ascii_letters + string.digits
TICK_SECONDS = 0.5
RUNNER_NAME_RETRY_SECONDS = 0.2
# The metrics table has an attempt column once the store supports it (an older store has not).
_STORE_TAKES_ATTEMPT = "attempt" in inspect.signature(ExperimentStore.add_metric).parameters


class ExperimentController:
    def __init__(self, experiment_id: str, exp_dir: str, config: dict, trial_function: Any = None,
                 resume: bool = False) -> None:
        self.id = experiment_id
        self.exp_dir = Path(exp_dir)
        self.trial_function = trial_function
        (self.exp_dir / "log").mkdir(parents=True, exist_ok=True)
        (self.exp_dir / "trials").mkdir(parents=True, exist_ok=True)
        self.log = _file_logger(f"nniray.controller.{experiment_id}", self.exp_dir / "log" / "nnimanager.log")
        self.store = ExperimentStore(self.exp_dir)
        self.store.claim()  # from here on, a stale controller of this experiment cannot write
        sidecar.clear(self.exp_dir)  # the store takes writes again: an old store error is past
        prev = self.store.get_meta("status")
        self.recovering = prev is not None
        if prev is None:
            with self.store.transaction():
                self.store.set_meta("config", config)
                self.store.set_meta("start_time", time.time())
                self.store.set_meta("exec_duration", 0.0)
                self.store.set_meta("search_space", _search_space_of(config))
                self.store.set_meta("status", ExperimentStatus.INITIALIZED.value)
        elif resume:
            # A resume may carry new limits in ``config``; a restart takes the store's.
            self.store.set_meta("config", config)
        self.cfg = self.store.get_meta("config")
        self.search_space = self.store.get_meta("search_space", {})
        ts = self.cfg.get("trainingService") or {}
        limits = Limits(int(self.cfg["trialConcurrency"]), self.cfg.get("maxTrialNumber"),
                        _seconds(self.cfg.get("maxExperimentDuration")), _seconds(self.cfg.get("maxTrialDuration")),
                        int(ts.get("maxTrialRetries", 0) or 0))
        self.core = ExperimentCore(
            limits, self._new_trial_id, now=time.time(), status=_status_of(self.store.get_meta("status")),
            next_sequence=self.store.max_sequence_id() + 1, exhausted=bool(self.store.get_meta("exhausted", False)),
            exec_duration=float(self.store.get_meta("exec_duration", 0.0)),
            errors=tuple(self.store.get_meta("errors", [])))
        # This experiment's metrics in Ray's Prometheus endpoint / dashboard (actors/metrics.py).
        algo = self.cfg.get("tuner") or self.cfg.get("advisor") or {}
        self.metrics = ExperimentMetrics(experiment_id, (algo.get("classArgs") or {}).get("optimize_mode"))
        self.service = LocalTrainingService()
        self.runners: dict[int, Any] = {}  # slot -> runner handle
        self.algorithm: Any = None
        self.writer: StoreWriter | None = None
        self._resume = resume
        self._pending: list = []  # commands not yet run, in order
        self._exec_task: asyncio.Task | None = None
        self._start_task: asyncio.Task | None = None
        self._tick_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stop_called = False
        self._fenced = False
        self._store_broken = False
        self.log.info("controller up for %s (recovering=%s, resume=%s, status=%s)", self.id, self.recovering,
                      resume, self.core.status)

    # ================================================================================ lifecycle
    async def start(self) -> str:
        """Start (or, after a restart, continue) the experiment.  Idempotent, also for callers
        that arrive together (after a restart the driver's poll and the runners' reports do):
        they all wait for the one start."""
        if self._start_task is None:
            self._start_task = asyncio.get_running_loop().create_task(self._start_once())
        await asyncio.shield(self._start_task)
        return self.core.status.value

    async def _start_once(self) -> None:
        self.writer = StoreWriter(self.store)
        try:
            if self._resume:
                await self._recover_from_files()
            self.algorithm = build_port(self.cfg, self.id, str(self.exp_dir / "log"), lambda: self.search_space,
                                        self._history, self.log)
            self.algorithm.emit = self._feed
            self.algorithm.spawn = self._spawn
            answer = await self.algorithm.setup(self.search_space, self._history())
            if answer is not None:
                self._feed(answer)
            if self.recovering and not self._resume:
                await self._recover_trials()
        except FencedError:
            self._on_fenced()
            return
        except Exception as err:  # noqa: BLE001 - a failing user algorithm must not crash-loop the controller
            self.log.exception("start failed")
            self._feed(e.Failed(f"algorithm setup failed: {short(err)}"))
            await self._drain()
            return
        self._feed(e.Started(resume=self._resume))
        self._tick_task = asyncio.get_running_loop().create_task(self._ticker())
        await self._drain()

    async def _ticker(self) -> None:
        while not self.core.finished and not self._fenced:
            await asyncio.sleep(TICK_SECONDS)
            self._feed(e.Tick())
            self.metrics.refresh(self.store, len(self._pending))

    async def ping(self) -> dict:
        await self._ensure_started()
        return {"id": self.id, "status": self.core.status.value, "pid": os.getpid()}

    async def stop(self, timeout: float = 10.0) -> str:
        """Cancel running trials (USER_CANCELED), release every actor, end as STOPPED
        (an experiment that was already DONE stays DONE, one in ERROR keeps its reason)."""
        self._stop_called = True
        if self._start_task is not None:
            try:
                await asyncio.shield(self._start_task)
            except Exception:  # noqa: BLE001 - a failed start is stopped all the same
                pass
        if self.writer is None:
            self.writer = StoreWriter(self.store)
        self._feed(e.StopRequested())
        deadline = time.time() + timeout
        while not self.core.finished and time.time() < deadline and not self._fenced:
            await asyncio.sleep(0.05)
        if not self.core.finished:
            self._feed(e.StopDeadline())
        await self._drain()
        self._release()
        return self.core.status.value

    def _release(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        for h in self.runners.values():
            self.service.retire_runner(h)
        self.runners.clear()
        if self.algorithm is not None:
            self.algorithm.release()

    # ================================================================================ queries
    async def _ensure_started(self) -> None:
        # After Ray restarts this actor in a fresh process nobody calls start(): the first call
        # that arrives does.
        if self._start_task is None and not self._stop_called and self.core.status.live:
            await self.start()

    async def get_status(self) -> dict:
        await self._ensure_started()
        return {"status": self.core.status.value, "errors": list(self.core.errors)}

    async def get_profile(self) -> dict:
        await self._ensure_started()
        nxt = self.core.next_sequence
        return {"id": self.id, "revision": int(self.store.get_meta("revision", 0)),
                "execDuration": self.core.exec_duration_at(time.time()), "logDir": str(self.exp_dir),
                "nextSequenceId": nxt, "params": self.cfg,
                "startTime": self.store.get_meta("start_time"), "endTime": self.store.get_meta("end_time"),
                "status": self.core.status.value, "maxSequenceId": nxt - 1}

    def running_count(self) -> int:
        return len(self.core.running)

    # ================================================================================ updates
    async def update(self, field: str, value: Any) -> dict:
        """Run-time update of ``trialConcurrency``, ``maxTrialNumber``,
        ``maxExperimentDuration`` or ``searchSpace``; takes effect at once."""
        if field == "trialConcurrency":
            core_value = value = int(value)
        elif field == "maxTrialNumber":
            core_value = value = None if value is None else int(value)
        elif field == "maxExperimentDuration":
            core_value = _seconds(value)
        else:
            core_value = value
        check_update(field, core_value)  # ValueError naming the field, before anything changes
        if field == "searchSpace":
            try:
                answer = await self.algorithm.update_search_space(value)
            except SearchSpaceError as err:
                cause = getattr(err, "cause", None) or err  # a RayTaskError carries the remote traceback
                raise ValueError(f"searchSpace: {cause}") from None
            if answer is not None:
                self._feed(answer)
            self.search_space = value
        cfg = dict(self.cfg)
        cfg[field] = value
        self.cfg = cfg

        def record(store: ExperimentStore) -> None:
            store.set_meta("config", cfg)
            store.set_meta("revision", int(store.get_meta("revision", 0)) + 1)
            if field == "searchSpace":
                store.set_meta("search_space", value)
        await self._write(record)
        self.log.info("updated %s = %r", field, value)
        self._feed(e.UpdateRequested(field, core_value))
        return await self.get_profile()

    async def kill_trial(self, trial_id: str) -> bool:
        if trial_id not in self.core.running:
            return False
        self._feed(e.KillRequested(trial_id))
        return True

    async def add_customized_trial(self, parameters: dict) -> dict:
        """NNI's customized trial (``POST /trial-jobs``): run these parameters next, ahead of the
        algorithm's (which is not told of the result).  ``{trialJobId, sequenceId}`` once it is
        created, both None while it waits for a free slot."""
        await self._ensure_started()
        if self.core.status is not ExperimentStatus.RUNNING:
            raise ValueError(f"the experiment is {self.core.status.value}: a customized trial runs only while it "
                             f"is RUNNING (raise maxTrialNumber or maxExperimentDuration first)")
        job = {"parameter_id": None, "parameter_source": "customized", "parameters": dict(parameters)}
        self._feed(e.AlgorithmAnswered(jobs=(e.Job(job),), empty_means_no_more=False))
        await self._drain()
        for t in self.core.running.values():
            if t.hyper_params is job:
                return {"trialJobId": t.trial_id, "sequenceId": t.sequence_id}
        return {"trialJobId": None, "sequenceId": None}

    async def import_data(self, data: list[dict]) -> int:
        """``nniray experiment import``: finished results fed to the algorithm (not run)."""
        answer = await self.algorithm.import_data(data)
        if answer is not None:
            self._feed(answer)

        def record(store: ExperimentStore) -> None:
            store.set_meta("imported_data", store.get_meta("imported_data", []) + list(data))
        await self._write(record)
        return len(data)

    # ================================================================================ runner → controller
    async def report_events(self, events: list[dict]) -> bool:
        """Metric events from runners (batched, possibly re-sent)."""
        await self._ensure_started()
        await self._ingest(events, batched=True)
        return True

    async def _ingest(self, raw_events: list, batched: bool = False) -> None:
        """Check each record, commit the new ones, then tell the core (write before act)."""
        arrived, rejected = [], []
        for raw in raw_events or []:
            ev = e.metric_event(raw)
            if ev is None:
                self.log.warning("dropped a metric record that names no trial: %.200r", raw)
            elif isinstance(ev, e.MetricRejected):
                rejected.append(ev)
            else:
                arrived.append(ev)
        if arrived:
            results = {ev.trial_id for ev in arrived if ev.type is MetricType.FINAL
                       and self.core.accepts_final(ev.trial_id, ev.attempt)}

            def record(store: ExperimentStore) -> list:
                new = []
                for ev in arrived:
                    kw = {"attempt": ev.attempt or 0} if _STORE_TAKES_ATTEMPT else {}
                    if store.add_metric(ev.trial_id, ev.parameter_id, ev.type.value, ev.sequence, ev.value,
                                        ev.timestamp, **kw):
                        if ev.trial_id in results and ev.type is MetricType.FINAL:
                            store.update_trial(ev.trial_id, final=ev.value)
                            results.discard(ev.trial_id)
                        new.append(ev)
                return new
            new = await self._write(record, batched)
            if new is _FAILED:  # not committed (fenced, or the store broke): nothing may be acted on
                return
            for ev in new or []:
                self._feed(ev)
        for ev in rejected:
            self.log.warning("trial %s: %s", ev.trial_id, ev.reason)
            self._feed(ev)

    # ================================================================================ the core
    def _feed(self, event: Any) -> None:
        """Give the core one event; queue its commands for the executor."""
        if self._fenced:
            return
        cmds = self.core.handle(event, time.time())
        if cmds:
            self._pending.extend(cmds)
            if self._exec_task is None or self._exec_task.done():
                self._exec_task = asyncio.get_running_loop().create_task(self._execute())

    async def _drain(self) -> None:
        while self._exec_task is not None and not self._exec_task.done():
            await asyncio.shield(self._exec_task)

    async def _execute(self) -> None:
        """Run queued commands in order.  Each turn takes everything queued, commits all its
        writes in one transaction, then runs its acts: no act runs before the writes that
        precede it are durable."""
        while self._pending and not self._fenced:
            batch, self._pending = self._pending, []
            writes = [w for cmd in batch if isinstance(cmd, c.Persist) for w in cmd.writes]
            written = True
            if writes:
                written = await self._write(lambda store, ws=tuple(writes): _apply(store, ws)) is not _FAILED
            for cmd in batch:
                if isinstance(cmd, c.Persist) or (not written and isinstance(cmd, _NEEDS_STORE)):
                    continue
                try:
                    self._act(cmd)
                except Exception:  # noqa: BLE001 - one bad call must not stop the others
                    self.log.exception("command %r failed", cmd)
            if self.algorithm is not None:
                self.algorithm.flush()

    async def _write(self, fn: Any, batched: bool = False) -> Any:
        """One job on the writer thread, awaited to its commit.  A store that cannot be written
        puts the experiment in ERROR (and answers ``_FAILED``)."""
        if self._store_broken or self._fenced:
            return _FAILED
        try:
            return await (self.writer.write_batched(fn) if batched else self.writer.write(fn))
        except FencedError:
            self._on_fenced()
        except Exception as err:  # noqa: BLE001 - sqlite3.OperationalError: database or disk is full, ...
            self._on_store_failure(err)
        return _FAILED

    def _on_fenced(self) -> None:
        # Stay idle rather than exit: an exit would make Ray restart this actor, which would
        # claim the store back from the rightful controller.
        if not self._fenced:
            self.log.warning("another controller took over %s; this one stops acting", self.id)
        self._fenced = True

    def _on_store_failure(self, err: BaseException) -> None:
        if self._store_broken:
            return
        self._store_broken = True
        reason = f"store write failed: {short(err)}"
        self.log.error("%s; the experiment stops (resume it once the store can be written)", reason)
        sidecar.write(self.exp_dir, reason, list(self.core.errors) + [reason])
        self._feed(e.Failed(reason))

    def _act(self, cmd: Any) -> None:
        if isinstance(cmd, c.DispatchTrial):
            self._dispatch(cmd)
        elif isinstance(cmd, c.StopTrial):
            h = self.runners.get(cmd.slot)
            if h is not None:
                h.stop.remote(cmd.trial_id, cmd.status.value, cmd.message)
        elif isinstance(cmd, c.AckTrial):
            h = self.runners.get(cmd.slot)
            if h is not None:
                h.ack.remote([cmd.trial_id])
        elif isinstance(cmd, c.StartRunner):
            self._start_runner(cmd.slot)
        elif isinstance(cmd, c.RetireRunner):
            h = self.runners.pop(cmd.slot, None)
            if h is not None:
                self.service.retire_runner(h)
        elif isinstance(cmd, c.RequestTrials):
            self._spawn(self._answer(self.metrics.timed_suggest(
                self.algorithm.request(cmd.request_id, cmd.count, cmd.parameter_ids)), fatal=True))
        elif isinstance(cmd, c.ReportFinal):
            self._spawn_answer(self.algorithm.report_final(cmd))
        elif isinstance(cmd, c.ReportIntermediate):
            self._spawn_answer(self.algorithm.report_intermediate(cmd))
        elif isinstance(cmd, c.ReportTrialEnd):
            self._spawn_answer(self.algorithm.trial_end(cmd))
            self.metrics.trial_ended(self.store, cmd.trial_id, cmd.status)
            self.log.info("trial %s %s", cmd.trial_id, cmd.status)
        elif isinstance(cmd, c.Finish):
            self.metrics.refresh(self.store, len(self._pending), force=True)  # the last counts
            self._release()
            self.log.info("experiment %s", cmd.status)
        else:
            raise TypeError(f"unknown command {cmd!r}")

    def _spawn_answer(self, aw: Awaitable | None) -> None:
        if aw is not None:
            self._spawn(self._answer(aw, fatal=False))

    async def _answer(self, aw: Awaitable, fatal: bool) -> None:
        try:
            ev = await aw
        except Exception as err:  # noqa: BLE001 - the user's algorithm raised
            if fatal:
                self.log.exception("the algorithm failed")
                self._feed(e.Failed(f"the algorithm failed: {short(err)}"))
            else:
                self.log.warning("algorithm call failed: %s", short(err))
            return
        if ev is not None:
            self._feed(ev)

    # ================================================================================ runners
    def _start_runner(self, slot: int) -> None:
        try:
            handle = self.service.start_runner(self.id, slot, self.cfg, self.trial_function)
        except ValueError:  # the slot's old runner is still being killed: try again shortly
            self._spawn(self._later(e.RunnerLost(slot), RUNNER_NAME_RETRY_SECONDS))
            return
        self.runners[slot] = handle
        self._spawn(self._await_ready(slot, handle))

    async def _later(self, event: Any, delay: float) -> None:
        await asyncio.sleep(delay)
        self._feed(event)

    async def _await_ready(self, slot: int, handle: Any) -> None:
        try:
            await handle.ready.remote()
        except RayError as err:
            self.log.warning("runner %d failed to start: %s", slot, short(err))
            if self.runners.get(slot) is handle:
                del self.runners[slot]
                self._feed(e.RunnerLost(slot))
            return
        if self.runners.get(slot) is handle:
            self._feed(e.RunnerReady(slot))

    def _dispatch(self, cmd: c.DispatchTrial) -> None:
        handle = self.runners.get(cmd.slot)
        if handle is None:  # retired meanwhile: the core hears the trial lost its runner
            self._feed(e.TrialEnded(cmd.trial_id, cmd.slot, e.Outcome.RUNNER_LOST, message="trial runner gone",
                                    attempt=cmd.attempt))
            return
        ref = handle.run.remote(self._spec(cmd))
        self._spawn(self._await_outcome(cmd.trial_id, cmd.slot, cmd.attempt, cmd.hyper_params, ref))

    def _spec(self, cmd: c.DispatchTrial) -> dict:
        spec = {"trial_id": cmd.trial_id, "sequence_id": cmd.sequence_id, "hyper_params": cmd.hyper_params,
                "trial_dir": str(self.exp_dir / "trials" / cmd.trial_id),
                "max_trial_seconds": self.core.limits.max_trial_seconds,
                "code_dir": self.cfg.get("trialCodeDirectory") or str(Path.cwd()),
                # each attempt has its own metrics file (actors/trial_records.py)
                "attempt": cmd.attempt}
        if self.trial_function is not None:
            spec["function"] = True  # the runner holds the callable (sent once, at creation)
        else:
            spec["function"] = None
            spec["command"] = self.cfg["trialCommand"]
        gpus = self.cfg.get("trialGpuNumber")
        if gpus is not None and gpus == 0:
            spec["env"] = {"CUDA_VISIBLE_DEVICES": ""}
        return spec

    async def _await_outcome(self, tid: str, slot: int, attempt: int, hyper_params: dict, ref: Any) -> None:
        try:
            raw = await ref
        except RayActorError as err:
            # What the attempt wrote to its metrics file and the runner could not send.
            raw = {"trial_id": tid, "status": "RUNNER_DIED", "message": f"trial runner died: {short(err)}",
                   "events": await self._recover_events(tid, hyper_params.get("parameter_id"), attempt)}
        except RayError as err:
            raw = {"trial_id": tid, "status": "FAILED", "message": f"runner error: {short(err)}", "events": []}
        await self._on_outcome(raw, slot, attempt)

    async def _recover_events(self, tid: str, parameter_id: Any, attempt: int) -> list[dict]:
        events, errors = await asyncio.to_thread(trial_records.recover, self.exp_dir / "trials" / tid, tid,
                                                 parameter_id, attempt)
        for err in errors:
            self.log.warning("trial %s: %s", tid, err)
        return events

    async def _on_outcome(self, raw: dict, slot: int, attempt: int | None) -> None:
        if isinstance(raw, dict) and raw.get("events"):
            await self._ingest(raw["events"])
        ev = e.outcome_event(raw, slot, attempt)
        if ev is None:
            self.log.warning("runner %d answered an outcome that names no trial: %.200r", slot, raw)
            return
        self._feed(ev)

    # ================================================================================ algorithm history
    def _history(self) -> list[dict]:
        """Every stored result, for an algorithm (re)built from the store."""
        data = []
        for t in self.store.list_trials():
            if t["final"] is not None:
                hp = t["hyper_params"]
                data.append({"parameter_id": hp.get("parameter_id"), "parameters": hp.get("parameters"),
                             "parameter": hp.get("parameters"), "value": t["final"],
                             "customized": hp.get("parameter_source") == "customized"})
        for d in self.store.get_meta("imported_data", []):
            data.append({"parameter": d.get("parameter"), "parameters": d.get("parameter"), "value": d.get("value"),
                         "parameter_id": None})
        return data

    # ================================================================================ recovery
    async def _recover_from_files(self) -> None:
        """Resume: every trial the store has RUNNING was interrupted.  Read what it wrote to
        its metrics file, to the end, into the store; then record how it ended (its state
        file says whether it had finished); only then may the algorithm be rebuilt."""
        for i in range(max(self.core.limits.concurrency, 1) + 8):  # the old cluster's runners
            h = self.service.find_runner(self.id, i)
            if h is not None:
                self.service.retire_runner(h)
        for t in self.store.list_trials((TrialStatus.RUNNING.value, TrialStatus.WAITING.value)):
            tid, attempt = t["trial_id"], int(t["attempt"] or 0)
            pid = t["hyper_params"].get("parameter_id")
            events = await self._recover_events(tid, pid, attempt)
            if events:
                await self._ingest(events)
            code = trial_records.ended_state(self.exp_dir / "trials" / tid, attempt)
            if code == 0:
                status, why = TrialStatus.SUCCEEDED, "finished while the experiment was interrupted"
            elif code is not None:
                status, why = TrialStatus.FAILED, f"exit code {code} while the experiment was interrupted"
            else:
                status, why = TrialStatus.SYS_CANCELED, "experiment resumed; the trial was interrupted"

            def record(store: ExperimentStore, tid: str = tid, status: TrialStatus = status, why: str = why) -> None:
                store.update_trial(tid, status=status.value, end_time=time.time(), message=why)
            await self._write(record)
            self.log.info("trial %s: %s (%d records read back)", tid, why, len(events))

    async def _recover_trials(self) -> None:
        """Restart: re-attach to trials that were RUNNING when the previous controller died."""
        for t in self.store.list_trials((TrialStatus.RUNNING.value, TrialStatus.WAITING.value)):
            tid, attempt = t["trial_id"], int(t["attempt"] or 0)
            slot = int(t["node"]) if t["node"] not in (None, "") else None
            handle = self.service.find_runner(self.id, slot) if slot is not None else None
            known = None
            if handle is not None:
                try:
                    known = await asyncio.wait_for(handle.wait.remote(tid, 0), timeout=30)
                except Exception:  # noqa: BLE001 - a runner that cannot answer is as good as gone
                    known = None
            if known is None or known.get("status") == "UNKNOWN":
                events = await self._recover_events(tid, t["hyper_params"].get("parameter_id"), attempt)
                if events:
                    await self._ingest(events)

                def record(store: ExperimentStore, tid: str = tid) -> None:
                    store.update_trial(tid, status=TrialStatus.SYS_CANCELED.value, end_time=time.time(),
                                       message="its runner is gone")
                await self._write(record)
                self.log.info("trial %s: its runner is gone", tid)
                continue
            self.runners[slot] = handle
            hp = t["hyper_params"]
            self._feed(e.RecoveredTrial(tid, t["sequence_id"], hp, slot, attempt, t["start_time"] or time.time(),
                                        tuple(self.store.intermediate_history(tid))))
            if known.get("status") == "RUNNING":
                self._spawn(self._await_outcome(tid, slot, attempt, hp, handle.wait.remote(tid)))
            else:
                await self._on_outcome(known, slot, attempt)
        # Idle runners from before the restart are reused.
        for i in range(self.core.limits.concurrency):
            if i in self.runners:
                continue
            handle = self.service.find_runner(self.id, i)
            if handle is not None:
                self.runners[i] = handle
                self._feed(e.RecoveredRunner(i))
                self._spawn(self._await_ready(i, handle))

    # ================================================================================ helpers
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_trial_id(self) -> str:
        while True:
            tid = "".join(secrets.choice(_ID_ALPHABET) for _ in range(5))
            if tid not in self.core.running and self.store.get_trial(tid) is None:
                return tid


class _Failed:
    """What a store write that did not happen returns."""


_FAILED = _Failed()
# Acts that must not run when the writes before them were not committed.
_NEEDS_STORE = (c.DispatchTrial, c.ReportFinal, c.ReportIntermediate, c.ReportTrialEnd, c.RequestTrials)


def _apply(store: ExperimentStore, writes: tuple) -> None:
    """The core's writes, in order, inside the writer's transaction."""
    for w in writes:
        if isinstance(w, c.TrialCreated):
            hp = w.hyper_params
            store.add_trial(w.trial_id, w.sequence_id, hp.get("parameter_id"), hp, status=TrialStatus.RUNNING.value,
                            customized=hp.get("parameter_source") == "customized")
            store.update_trial(w.trial_id, start_time=w.start_time, node=str(w.slot))
        elif isinstance(w, c.TrialRestarted):
            store.update_trial(w.trial_id, attempt=w.attempt, node=str(w.slot), start_time=w.start_time)
        elif isinstance(w, c.TrialFinished):
            fields: dict[str, Any] = {"status": w.status.value, "end_time": w.end_time}
            if w.message:
                fields["message"] = w.message
            store.update_trial(w.trial_id, **fields)
        elif isinstance(w, c.TrialNote):
            store.update_trial(w.trial_id, message=w.message)
        elif isinstance(w, c.StatusChanged):
            store.set_meta("status", w.status.value)
            if w.errors:
                store.set_meta("errors", list(w.errors))
        elif isinstance(w, c.MetaChanged):
            store.set_meta(w.key, w.value)
        else:
            raise TypeError(f"unknown write {w!r}")


def _status_of(value: Any) -> ExperimentStatus:
    """The stored status; an older store's TUNER_NO_MORE_TRIAL (never set by nniray, once
    accepted) reads as NO_MORE_TRIAL."""
    try:
        return ExperimentStatus(value)
    except ValueError:
        return ExperimentStatus.NO_MORE_TRIAL if value == "TUNER_NO_MORE_TRIAL" else ExperimentStatus.ERROR


def _search_space_of(config: dict) -> dict:
    """The inline ``searchSpace``, else the JSON of ``searchSpaceFile`` (the driver normally
    inlines it; a config written by another client may not)."""
    if config.get("searchSpace") is not None:
        return config["searchSpace"]
    if config.get("searchSpaceFile"):
        return json.loads(Path(config["searchSpaceFile"]).read_text())
    return {}


def _seconds(v: Any) -> float | None:
    return parse_duration(v, "duration")


def _file_logger(name: str, path: Path) -> logging.Logger:
    log = logging.getLogger(name)
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path) for h in log.handlers):
        h = logging.FileHandler(path)
        h.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log
