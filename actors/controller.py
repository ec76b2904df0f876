"""The experiment controller: one async actor per experiment that owns its state.

Rules it keeps:

- **Write before acting.** A trial row (status RUNNING, its runner, its parameters) is
  committed before the trial is dispatched; a metric row before the tuner or assessor hears
  of it; a status before the loop acts on it.
- **Restart-safe.** The controller is a detached, named actor with ``max_restarts=-1``.  A
  fresh process rebuilds everything from the SQLite store: it re-attaches to the named runner
  and tuner actors, collects the outcomes of trials that ran on while it was down
  (``TrialRunner.wait``), re-sends to the tuner the results it may have missed
  (``TunerHost.sync``), and never creates a trial twice (sequence ids come from the store).
- **Bounded pool.** Trials run on ``trialConcurrency`` reused runner actors.

Statuses follow NNI: INITIALIZED → RUNNING → NO_MORE_TRIAL (limits reached or tuner exhausted,
running trials go on) → DONE; STOPPING → STOPPED; ERROR.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import string
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from nniray.actors import names
from nniray.actors.algorithm_host import NotInitialized
from nniray.storage import ExperimentStore, FencedError
from nniray.utils import MetricError, extract_scalar_reward

LIVE_STATUSES = ("INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL")
_ID_ALPHABET = string.ascii_letters + string.digits


class ExperimentController:
    def __init__(self, experiment_id: str, exp_dir: str, config: dict, trial_function: Any = None,
                 resume: bool = False) -> None:
        self.id = experiment_id
        self.exp_dir = Path(exp_dir)
        self.cfg = config  # camelCase dict, canonical (absolute paths)
        self.trial_function = trial_function
        (self.exp_dir / "log").mkdir(parents=True, exist_ok=True)
        (self.exp_dir / "trials").mkdir(parents=True, exist_ok=True)
        self.log = _file_logger(f"nniray.controller.{experiment_id}", self.exp_dir / "log" / "nnimanager.log")
        self.store = ExperimentStore(self.exp_dir)
        self.store.claim()  # from here on, a stale controller of this experiment cannot write
        self.ts = config.get("trainingService") or {"platform": "local"}
        prev = self.store.get_meta("status")
        self.recovering = prev is not None
        if prev is None:
            self.store.set_meta("config", config)
            self.store.set_meta("start_time", time.time())
            self.store.set_meta("exec_duration", 0.0)
            self.store.set_meta("search_space", _search_space_of(config))
            self._set_status("INITIALIZED")
        else:
            # A restart (or resume) of a known experiment: the store is the truth, but a resume
            # may carry new limits in ``config``.
            if resume:
                self.store.set_meta("config", config)
            self.cfg = self.store.get_meta("config")
        self.status = self.store.get_meta("status")
        self.search_space = self.store.get_meta("search_space", {})
        self.concurrency = int(self.cfg["trialConcurrency"])
        self.max_trials = self.cfg.get("maxTrialNumber")
        self.max_duration = _seconds(self.cfg.get("maxExperimentDuration"))
        self.max_trial_seconds = _seconds(self.cfg.get("maxTrialDuration"))
        self.exec_duration = float(self.store.get_meta("exec_duration", 0.0))
        self._tick = time.time()
        self.advisor_mode = self.cfg.get("advisor") is not None
        self.next_seq = self.store.max_sequence_id() + 1
        self.running: dict[str, dict] = {}  # trial_id -> {runner, parameter_id, hyper_params, start, history}
        self.runners: dict[int, dict] = {}  # index -> {handle, busy, ready}
        self.queue: list[dict] = []  # advisor jobs waiting for a slot
        self.exhausted = bool(self.store.get_meta("exhausted", False))
        self.errors: list[str] = list(self.store.get_meta("errors", []))
        self.tuner = self.assessor = self.advisor = None
        self._wake = asyncio.Event() if _has_loop() else None
        self._loop_task: asyncio.Task | None = None
        self._start_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._resume = resume
        self._pending_results: list[dict] = []
        self._advisor_credit_requested = 0
        self._retry: list = []  # (trial_id, running entry) of trials whose runner died
        self._duration_saved = 0.0
        self.log.info("controller up for %s (recovering=%s, resume=%s, status=%s)", self.id, self.recovering,
                      resume, self.status)

    # ================================================================================ lifecycle
    async def start(self) -> str:
        """Start (or, after a restart, continue) the experiment.  Idempotent, also for callers
        that arrive together (after a restart the driver's poll and the runners' reports do):
        they all wait for the one start."""
        if self._start_task is None:
            self._start_task = asyncio.get_running_loop().create_task(self._start_once())
        await asyncio.shield(self._start_task)
        return self.status

    async def _start_once(self) -> None:
        self._wake = asyncio.Event()
        try:
            await self._setup_algorithms()
            if self.recovering:
                await self._recover_trials()
        except Exception as e:  # a failing user algorithm must not crash-loop the controller
            self._fail(f"algorithm setup failed: {e}")
            return
        if self.status in ("INITIALIZED",) or (self._resume and self.status in ("STOPPED", "DONE", "ERROR", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL")):
            self._set_status("RUNNING")
        self._tick = time.time()
        self._loop_task = asyncio.get_running_loop().create_task(self._main_loop())

    async def ping(self) -> dict:
        await self._ensure_started()
        return {"id": self.id, "status": self.status, "pid": os.getpid()}

    async def stop(self, timeout: float = 10.0) -> str:
        """Cancel running trials (USER_CANCELED), release every actor, end as STOPPED
        (an experiment that was already DONE stays DONE)."""
        self._stopping = True
        final = "DONE" if self.status == "DONE" else "STOPPED"
        if self.status != "DONE":
            self._set_status("STOPPING")
        for tid, t in list(self.running.items()):
            runner = self.runners.get(t["runner"])
            if runner is not None:
                runner["handle"].stop.remote(tid, "USER_CANCELED", "experiment stopped")
        deadline = time.time() + timeout
        while self.running and time.time() < deadline:
            await asyncio.sleep(0.05)
        with self.store.transaction():
            for tid in list(self.running):
                self.store.update_trial(tid, status="USER_CANCELED", end_time=time.time(),
                                        message="experiment stopped")
                self.running.pop(tid)
        self._accumulate_duration()
        if self._loop_task is not None:
            self._loop_task.cancel()
        self._release_actors()
        self._set_status(final)
        self.store.set_meta("end_time", time.time())
        return self.status

    def _release_actors(self) -> None:
        for r in self.runners.values():
            _kill(r["handle"])
        self.runners.clear()
        for h in (self.tuner, self.assessor, self.advisor):
            if h is not None:
                _kill(h)

    # ================================================================================ queries
    async def _ensure_started(self) -> None:
        # After Ray restarts this actor in a fresh process nobody calls start(): the first call
        # that arrives does.
        if self._start_task is None and not self._stopping and self.store.get_meta("status") in LIVE_STATUSES:
            await self.start()

    async def get_status(self) -> dict:
        await self._ensure_started()
        return {"status": self.status, "errors": list(self.errors)}

    async def get_profile(self) -> dict:
        await self._ensure_started()
        self._accumulate_duration()
        return {"id": self.id, "revision": int(self.store.get_meta("revision", 0)),
                "execDuration": self.exec_duration, "logDir": str(self.exp_dir),
                "nextSequenceId": self.next_seq, "params": self.cfg,
                "startTime": self.store.get_meta("start_time"), "endTime": self.store.get_meta("end_time"),
                "status": self.status, "maxSequenceId": self.next_seq - 1}

    def running_count(self) -> int:
        return len(self.running)

    # ================================================================================ updates
    async def update(self, field: str, value: Any) -> dict:
        """Run-time update of ``trialConcurrency``, ``maxTrialNumber``,
        ``maxExperimentDuration`` or ``searchSpace``; takes effect at once."""
        if field == "trialConcurrency":
            value = int(value)
            if value < 1:
                raise ValueError("trialConcurrency must be >= 1")
            self.concurrency = value
        elif field == "maxTrialNumber":
            value = None if value is None else int(value)
            if value is not None and value < 1:
                raise ValueError("maxTrialNumber must be >= 1")
            self.max_trials = value
        elif field == "maxExperimentDuration":
            self.max_duration = _seconds(value)
        elif field == "searchSpace":
            from nniray.search_space import SearchSpaceError
            try:
                if self.advisor_mode:
                    await self._algo_call(self.advisor, "update_search_space", value)
                else:
                    await self._algo_call(self.tuner, "update_search_space", value)
            except SearchSpaceError as e:
                cause = getattr(e, "cause", None) or e  # a RayTaskError carries the remote traceback
                raise ValueError(f"searchSpace: {cause}") from None
            self.search_space = value
            self.store.set_meta("search_space", value)
            self.exhausted = False
            self.store.set_meta("exhausted", False)
        else:
            raise ValueError(f"cannot update {field!r}; updatable: trialConcurrency, maxTrialNumber, "
                             f"maxExperimentDuration, searchSpace")
        cfg = dict(self.cfg)
        cfg[field] = value
        self.cfg = cfg
        with self.store.transaction():
            self.store.set_meta("config", cfg)
            self.store.set_meta("revision", int(self.store.get_meta("revision", 0)) + 1)
        self.log.info("updated %s = %r", field, value)
        return await self._after_update()

    async def _after_update(self) -> dict:
        if self.status in ("NO_MORE_TRIAL", "DONE") and not self._stopping and self._limits_allow():
            self._set_status("RUNNING")
            if self._loop_task is None or self._loop_task.done():
                self._loop_task = asyncio.get_running_loop().create_task(self._main_loop())
        self._poke()
        return await self.get_profile()

    async def kill_trial(self, trial_id: str) -> bool:
        t = self.running.get(trial_id)
        if t is None:
            return False
        runner = self.runners.get(t["runner"])
        if runner is not None:
            await runner["handle"].stop.remote(trial_id, "USER_CANCELED", "killed by user")
        return True

    async def import_data(self, data: list[dict]) -> int:
        """``nniray experiment import``: finished results fed to the tuner (not run)."""
        if self.advisor_mode:
            cmds = await self._algo_call(self.advisor, "import_data", data)
            await self._handle_advisor_commands(cmds)
        else:
            await self._algo_call(self.tuner, "import_data", data)
        imported = self.store.get_meta("imported_data", [])
        self.store.set_meta("imported_data", imported + list(data))
        return len(data)

    # ================================================================================ runner → controller
    async def report_events(self, events: list[dict]) -> bool:
        """Metric events from runners (batched, possibly re-sent)."""
        await self._ensure_started()
        self._ingest(events)
        return True

    def _ingest(self, events: list[dict]) -> None:
        new = []
        with self.store.transaction():
            for ev in events:
                tid = ev["trial_id"]
                if ev["type"] == "FINAL":
                    try:
                        extract_scalar_reward(ev["value"])
                    except MetricError as e:
                        # Kept out of the tuner; the trial's message says why.
                        self.store.update_trial(tid, message=f"final result rejected: {e}")
                        continue
                if self.store.add_metric(tid, ev.get("parameter_id"), ev["type"], ev["sequence"], ev["value"],
                                         ev.get("timestamp")):
                    if ev["type"] == "FINAL":
                        self.store.update_trial(tid, final=ev["value"])
                    new.append(ev)
        for ev in new:
            t = self.running.get(ev["trial_id"])
            if ev["type"] == "PERIODICAL":
                if t is not None:
                    t["history"].append(ev["value"])
                    if self.assessor is not None and self.status != "STOPPING":
                        self._spawn(self._assess(ev["trial_id"], list(t["history"])))
            if self.advisor_mode:
                self._spawn(self._advisor_metric(ev))
            elif ev["type"] == "FINAL":
                hp = t["hyper_params"] if t is not None else (self.store.get_trial(ev["trial_id"]) or {}).get("hyper_params", {})
                self._pending_results.append({"parameter_id": hp.get("parameter_id"), "parameters": hp.get("parameters"),
                                              "value": ev["value"], "customized": hp.get("parameter_source") == "customized"})
        if self._pending_results:
            self._poke()

    # ================================================================================ main loop
    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _main_loop(self) -> None:
        try:
            while not self._stopping:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=0.5)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                self._flush_results()
                self._accumulate_duration()
                self._manage_runners()
                await self._fill_slots()
                self._check_done()
        except asyncio.CancelledError:
            pass
        except FencedError:
            # Stay idle rather than exit: an exit would make Ray restart this actor, which would
            # claim the store back from the rightful controller.
            self.log.warning("another controller took over %s; this one stops acting", self.id)
            self._stopping = True
        except Exception as e:  # keep the reason in the store and the log
            self.log.exception("controller loop failed")
            self._fail(f"controller loop failed: {e!r}")

    def _flush_results(self) -> None:
        """Submit the pending final results to the tuner, without waiting: calls from this
        actor reach the tuner in submission order, so a later generate() sees them.  A tuner
        that lost its state is rebuilt from the store (which has these results) on its next
        generate()."""
        if not self._pending_results or self.tuner is None:
            return
        batch, self._pending_results = self._pending_results, []
        self._spawn(self._settle(self.tuner.receive.remote(batch), "receive"))

    def _limits_allow(self) -> bool:
        if self.max_trials is not None and self.next_seq >= self.max_trials:
            return False
        if self.max_duration is not None and self.exec_duration >= self.max_duration:
            return False
        return not self.exhausted

    async def _fill_slots(self) -> None:
        if self.status not in ("RUNNING",) or self._stopping:
            return
        if not self._limits_allow():
            self._set_status("NO_MORE_TRIAL")
            return
        idle = [i for i, r in self.runners.items() if r["ready"] and r["busy"] is None]
        free = min(self.concurrency - len(self.running), len(idle))
        if self.max_trials is not None:
            free = min(free, self.max_trials - self.next_seq)
        if free <= 0:
            return
        if self.advisor_mode:
            jobs = await self._advisor_jobs(free)
        else:
            ids = list(range(self.next_seq, self.next_seq + free))
            # Whether any trial could still change the tuner's mind, as of this request:
            # every trial_end before it was submitted before it.
            busy = bool(self.running) or bool(self._retry)
            res = await self._algo_call(self.tuner, "generate", ids)
            jobs = [{"parameter_id": pid, "parameter_source": "algorithm", "parameters": p} for pid, p in res["params"]]
            if res["no_more"] or (not jobs and not busy and not self.running):
                self.exhausted = True
                self.store.set_meta("exhausted", True)
                self.log.info("tuner has no more trials")
                self._set_status("NO_MORE_TRIAL")
        for job in jobs:
            self._dispatch_new(job, idle.pop(0))

    def _dispatch_new(self, hyper_params: dict, runner_index: int) -> None:
        tid = self._new_trial_id()
        seq = self.next_seq = max(self.next_seq, self.store.max_sequence_id() + 1)
        self.next_seq += 1
        with self.store.transaction():
            self.store.add_trial(tid, seq, hyper_params.get("parameter_id"), hyper_params, status="RUNNING",
                                 customized=hyper_params.get("parameter_source") == "customized")
            self.store.update_trial(tid, start_time=time.time(), node=str(runner_index))
        self._run_on(runner_index, tid, seq, hyper_params, attempt=0)

    def _run_on(self, runner_index: int, tid: str, seq: int, hyper_params: dict, attempt: int) -> None:
        runner = self.runners[runner_index]
        runner["busy"] = tid
        self.running[tid] = {"runner": runner_index, "parameter_id": hyper_params.get("parameter_id"),
                             "hyper_params": hyper_params, "start": time.time(), "history": [], "seq": seq,
                             "attempt": attempt}
        spec = self._spec(tid, seq, hyper_params)
        ref = runner["handle"].run.remote(spec)
        self._spawn(self._await_outcome(tid, ref, runner_index))

    def _spec(self, tid: str, seq: int, hyper_params: dict) -> dict:
        spec = {"trial_id": tid, "sequence_id": seq, "hyper_params": hyper_params,
                "trial_dir": str(self.exp_dir / "trials" / tid), "max_trial_seconds": self.max_trial_seconds,
                "code_dir": self.cfg.get("trialCodeDirectory") or str(Path.cwd())}
        if self.trial_function is not None:
            spec["function"] = True  # the runner holds the callable (sent once, at creation)
        else:
            spec["function"] = None
            spec["command"] = self.cfg["trialCommand"]
        gpus = self.cfg.get("trialGpuNumber")
        if gpus is not None and gpus == 0:
            spec["env"] = {"CUDA_VISIBLE_DEVICES": ""}
        return spec

    async def _await_outcome(self, tid: str, ref: Any, runner_index: int) -> None:
        try:
            outcome = await ref
        except RayActorError as e:
            outcome = {"trial_id": tid, "status": "RUNNER_DIED", "message": f"trial runner died: {_short(e)}",
                       "events": []}
        except RayError as e:
            outcome = {"trial_id": tid, "status": "FAILED", "message": f"runner error: {_short(e)}", "events": []}
        await self._on_outcome(outcome, runner_index)

    async def _on_outcome(self, outcome: dict, runner_index: int) -> None:
        tid = outcome["trial_id"]
        t = self.running.get(tid)
        if t is None:
            return
        if outcome.get("events"):
            self._ingest(outcome["events"])
        status = outcome["status"]
        runner = self.runners.get(runner_index)
        if status in ("RUNNER_DIED", "UNKNOWN"):
            self._drop_runner(runner_index)
            retries = int(self.ts.get("maxTrialRetries", 0) or 0)
            if t["attempt"] < retries and not self._stopping:
                self.running.pop(tid)
                self._retry.append((tid, t))
                self.log.warning("trial %s lost its runner; retrying (attempt %d)", tid, t["attempt"] + 1)
                self._poke()
                return
            status = "FAILED"
        elif runner is not None:
            if outcome.get("message") == "trial did not stop; its runner is replaced":
                self._drop_runner(runner_index)
            else:
                runner["busy"] = None
                runner["handle"].ack.remote([tid])
        self.running.pop(tid, None)
        with self.store.transaction():
            fields = {"status": status, "end_time": outcome.get("end_time", time.time())}
            if outcome.get("message"):
                cur = self.store.get_trial(tid) or {}
                fields["message"] = "; ".join(m for m in (cur.get("message"), outcome["message"]) if m)
            self.store.update_trial(tid, **fields)
        self.log.info("trial %s %s %s", tid, status, outcome.get("message") or "")
        success = status == "SUCCEEDED"
        if self.advisor_mode:
            self._spawn(self._advisor_trial_end(tid, status, t["hyper_params"]))
        else:
            self._flush_results()
            if self.tuner is not None and t["hyper_params"].get("parameter_source") != "customized":
                # Submitted now, not from a task: Ray runs one caller's calls to an actor in
                # submission order, so the next generate() sees this trial ended (PBT's
                # synchronous steps depend on it).
                self._spawn(self._settle(self.tuner.trial_end.remote(t["parameter_id"], success), "trial_end"))
        if self.assessor is not None:
            self.assessor.trial_end.remote(tid, success)
        self._poke()

    def _check_done(self) -> None:
        # Retries first: they reuse their trial id and count once.
        while self._retry and not self._stopping:
            idle = [i for i, r in self.runners.items() if r["ready"] and r["busy"] is None]
            if not idle:
                break
            tid, t = self._retry.pop(0)
            self.store.update_trial(tid, attempt=t["attempt"] + 1, node=str(idle[0]), start_time=time.time())
            self._run_on(idle[0], tid, t["seq"], t["hyper_params"], t["attempt"] + 1)
        self._check_timeouts()
        if self.status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and not self.running and not self._retry:
            if self.advisor_mode and self.queue and self._limits_allow_count():
                return
            self._set_status("DONE")
            self.store.set_meta("end_time", time.time())
            for r in list(self.runners):
                self._drop_runner(r)

    def _limits_allow_count(self) -> bool:
        return self.max_trials is None or self.next_seq < self.max_trials

    def _check_timeouts(self) -> None:
        # The runner enforces maxTrialDuration itself; this is the backstop for a runner that
        # cannot (its node is gone, or the trial ignores signals).
        if self.max_trial_seconds is None:
            return
        now = time.time()
        for tid, t in list(self.running.items()):
            if now - t["start"] > self.max_trial_seconds + 30:
                self.log.warning("trial %s exceeded maxTrialDuration and its runner did not stop it", tid)
                self._drop_runner(t["runner"])

    # ================================================================================ runners
    def _manage_runners(self) -> None:
        if self._stopping or self.status not in ("RUNNING", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"):
            return
        want = self.concurrency if self.status == "RUNNING" or self._retry else len(self.running)
        missing = [i for i in range(max(want, 0)) if i not in self.runners]
        for i in missing:
            self._create_runner(i)
        # Shrink: retire idle runners beyond the concurrency.
        for i in sorted(self.runners, reverse=True):
            if len(self.runners) <= want:
                break
            if self.runners[i]["busy"] is None:
                self._drop_runner(i)

    def _create_runner(self, index: int) -> None:
        from nniray.actors.handles import runner_actor_options, RunnerActor
        name = names.runner(self.id, index)
        opts = runner_actor_options(self.cfg, name)
        try:
            handle = RunnerActor.options(**opts).remote(names.controller(self.id), names.NAMESPACE, index, self.id,
                                                        self.trial_function)
        except ValueError:  # an actor with this name still exists (being killed): next tick
            return
        self.runners[index] = {"handle": handle, "busy": None, "ready": False}
        self._spawn(self._await_ready(index, handle))

    async def _await_ready(self, index: int, handle: Any) -> None:
        try:
            await handle.ready.remote()
        except RayError as e:
            self.log.warning("runner %d failed to start: %s", index, _short(e))
            if self.runners.get(index, {}).get("handle") is handle:
                self.runners.pop(index, None)
            return
        r = self.runners.get(index)
        if r is not None and r["handle"] is handle:
            r["ready"] = True
            self._poke()

    def _drop_runner(self, index: int) -> None:
        r = self.runners.pop(index, None)
        if r is not None:
            _kill(r["handle"])

    # ================================================================================ algorithms
    async def _setup_algorithms(self) -> None:
        from nniray.actors.handles import algorithm_actor
        log_dir = str(self.exp_dir / "log")
        data = self._import_payload()
        if self.advisor_mode:
            self.advisor = algorithm_actor("advisor", self.id, self.cfg["advisor"], log_dir)
            ready = await self.advisor.is_ready.remote()
            if not ready:
                cmds = await self.advisor.setup.remote(self.search_space, data)
                await self._handle_advisor_commands(cmds)
            self._advisor_credit_requested = 0
        else:
            self.tuner = algorithm_actor("tuner", self.id, self.cfg["tuner"], log_dir)
            if await self.tuner.is_ready.remote():
                n = await self.tuner.sync.remote(self._results_payload())
                self.log.info("re-attached to tuner; re-sent %d missed results", n)
            else:
                n = await self.tuner.setup.remote(self.search_space, data)
                if n:
                    self.log.info("tuner rebuilt from %d stored results", n)
            if self.cfg.get("assessor"):
                self.assessor = algorithm_actor("assessor", self.id, self.cfg["assessor"], log_dir)

    def _results_payload(self) -> list[dict]:
        out = []
        for t in self.store.list_trials():
            if t["final"] is not None:
                hp = t["hyper_params"]
                out.append({"parameter_id": hp.get("parameter_id"), "parameters": hp.get("parameters"),
                            "parameter": hp.get("parameters"), "value": t["final"],
                            "customized": hp.get("parameter_source") == "customized"})
        return out

    def _import_payload(self) -> list[dict]:
        data = self._results_payload()
        for d in self.store.get_meta("imported_data", []):
            data.append({"parameter": d.get("parameter"), "parameters": d.get("parameter"), "value": d.get("value"),
                         "parameter_id": None})
        return data

    async def _algo_call(self, handle: Any, method: str, *args: Any) -> Any:
        """Call the tuner/advisor, rebuilding it from the store if Ray restarted it empty."""
        for attempt in range(60):
            try:
                return await getattr(handle, method).remote(*args)
            except NotInitialized:
                self.log.warning("%s lost its state (restarted); rebuilding from the store", method)
                data = self._import_payload()
                if self.advisor_mode:
                    cmds = await handle.setup.remote(self.search_space, data)
                    await self._handle_advisor_commands(cmds)
                else:
                    await handle.setup.remote(self.search_space, data)
                if method in ("receive", "sync"):
                    return None  # the rebuild already included these results
            except RayActorError:
                await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))  # restarting: wait and retry
        raise RuntimeError(f"{method}: algorithm actor unavailable")

    async def _settle(self, ref: Any, what: str) -> None:
        """Await a fire-and-forget call so its failure is logged (a restarted tuner is rebuilt
        from the store on its next generate())."""
        try:
            await ref
        except Exception as e:
            self.log.warning("%s failed: %s", what, _short(e))

    async def _assess(self, tid: str, history: list) -> None:
        try:
            good = await self.assessor.assess.remote(tid, history)
        except Exception as e:
            self.log.warning("assessor failed on %s: %s", tid, _short(e))
            return
        t = self.running.get(tid)
        if not good and t is not None:
            runner = self.runners.get(t["runner"])
            if runner is not None:
                self.log.info("assessor: trial %s is Bad; early stopping", tid)
                runner["handle"].stop.remote(tid, "EARLY_STOPPED", "stopped early by the assessor")

    # ---- advisor protocol
    async def _advisor_jobs(self, free: int) -> list[dict]:
        need = free - len(self.queue)
        if need > 0 and not self.exhausted:
            cmds = await self._algo_call(self.advisor, "request", need)
            await self._handle_advisor_commands(cmds)
        jobs, self.queue = self.queue[:free], self.queue[free:]
        if not jobs and not self.running and self.exhausted:
            self._set_status("NO_MORE_TRIAL")
        return jobs

    async def _handle_advisor_commands(self, cmds: list) -> None:
        import json
        for cmd, data in cmds or []:
            if cmd == "TR":
                job = json.loads(data)
                job.setdefault("parameter_source", "algorithm")
                self.queue.append(job)
            elif cmd == "NO":
                self.exhausted = True
                self.store.set_meta("exhausted", True)
                if not self.running and not self.queue:
                    self._set_status("NO_MORE_TRIAL")
            elif cmd == "KI":
                tid = json.loads(data)
                await self.kill_trial(tid)
        if self.queue:
            self._poke()

    async def _advisor_metric(self, ev: dict) -> None:
        data = {"parameter_id": ev.get("parameter_id"), "trial_job_id": ev["trial_id"], "type": ev["type"],
                "sequence": ev["sequence"], "value": ev["value"]}
        t = self.running.get(ev["trial_id"])
        if t is not None:
            data["parameter_id"] = t["parameter_id"]
        cmds = await self._algo_call(self.advisor, "report_metric", data)
        await self._handle_advisor_commands(cmds)

    async def _advisor_trial_end(self, tid: str, status: str, hyper_params: dict) -> None:
        import json
        cmds = await self._algo_call(self.advisor, "trial_end",
                                     {"trial_job_id": tid, "event": status, "hyper_params": json.dumps(hyper_params)})
        await self._handle_advisor_commands(cmds)

    # ================================================================================ recovery
    async def _recover_trials(self) -> None:
        """Re-attach to trials that were RUNNING when the previous controller died."""
        from nniray.actors.handles import find_actor
        for t in self.store.list_trials(("RUNNING", "WAITING")):
            tid = t["trial_id"]
            idx = int(t["node"]) if t["node"] not in (None, "") else None
            handle = find_actor(names.runner(self.id, idx)) if idx is not None else None
            known = None
            if handle is not None and not self._resume:
                try:
                    known = await asyncio.wait_for(handle.wait.remote(tid, 0), timeout=30)
                except Exception:
                    known = None
            if known is None or known.get("status") == "UNKNOWN":
                why = "experiment resumed; the trial was interrupted" if self._resume else "its runner is gone"
                self.store.update_trial(tid, status="SYS_CANCELED", end_time=time.time(), message=why)
                self.log.info("trial %s: %s", tid, why)
                continue
            self.runners[idx] = {"handle": handle, "busy": tid, "ready": True}
            hp = t["hyper_params"]
            self.running[tid] = {"runner": idx, "parameter_id": hp.get("parameter_id"), "hyper_params": hp,
                                 "start": t["start_time"] or time.time(), "history": self.store.intermediate_history(tid),
                                 "seq": t["sequence_id"], "attempt": t["attempt"]}
            if known.get("status") == "RUNNING":
                self._spawn(self._await_outcome(tid, handle.wait.remote(tid), idx))
            else:
                await self._on_outcome(known, idx)
        # Idle runners from before the restart are reused.
        for i in range(self.concurrency):
            if i in self.runners:
                continue
            handle = find_actor(names.runner(self.id, i))
            if handle is not None:
                if self._resume:
                    _kill(handle)
                else:
                    self.runners[i] = {"handle": handle, "busy": None, "ready": False}
                    self._spawn(self._await_ready(i, handle))

    # ================================================================================ helpers
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_trial_id(self) -> str:
        while True:
            tid = "".join(secrets.choice(_ID_ALPHABET) for _ in range(5))
            if tid not in self.running and self.store.get_trial(tid) is None:
                return tid

    def _set_status(self, status: str) -> None:
        if status != getattr(self, "status", None):
            self.store.set_meta("status", status)
            self.status = status
            if hasattr(self, "log"):
                self.log.info("experiment status: %s", status)

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.store.set_meta("errors", self.errors)
        self.log.error(message)
        self._stopping = True
        for tid, t in list(self.running.items()):
            r = self.runners.get(t["runner"])
            if r is not None:
                r["handle"].stop.remote(tid, "SYS_CANCELED", "experiment error")
        self._set_status("ERROR")

    def _accumulate_duration(self) -> None:
        now = time.time()
        if self.status in ("RUNNING", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"):
            self.exec_duration += now - self._tick
            if now - self._duration_saved > 1.0:  # persisted once a second, not per loop turn
                self.store.set_meta("exec_duration", self.exec_duration)
                self._duration_saved = now
        self._tick = now


def _search_space_of(config: dict) -> dict:
    """The inline ``searchSpace``, else the JSON of ``searchSpaceFile`` (the driver normally
    inlines it; a config written by another client may not)."""
    if config.get("searchSpace") is not None:
        return config["searchSpace"]
    if config.get("searchSpaceFile"):
        import json
        return json.loads(Path(config["searchSpaceFile"]).read_text())
    return {}


def _seconds(v: Any) -> float | None:
    from nniray.config import parse_duration
    return parse_duration(v, "duration")


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[-1][:300] if s else type(e).__name__


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception:
        pass


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _file_logger(name: str, path: Path) -> logging.Logger:
    log = logging.getLogger(name)
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path) for h in log.handlers):
        h = logging.FileHandler(path)
        h.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log
