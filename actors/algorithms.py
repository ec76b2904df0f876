"""The two implementations of :class:`nniray.runtime.ports.AlgorithmPort` over Ray actors:
a tuner (with an optional assessor) and an NNI advisor.  The controller talks to whichever
the config names through the same methods; the differences (how trials are asked for, what
an advisor's commands mean, which trial ends a tuner hears) stay here.

Both rebuild a host that Ray restarted empty (:class:`NotInitialized`) from the store's
history, and wait out a host that is restarting (``RayActorError``).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

from ray.exceptions import RayActorError

from nniray.actors.algorithm_host import NotInitialized
from nniray.actors.handles import algorithm_actor, kill_actor
from nniray.runtime.commands import ReportFinal, ReportIntermediate, ReportTrialEnd
from nniray.runtime.events import AlgorithmAnswered, AssessorVerdict, Job
from nniray.runtime.status import TrialStatus

# A restarting host answers RayActorError for a moment; how long to keep trying.
RESTART_ATTEMPTS = 60
History = Callable[[], list[dict]]


def build_port(cfg: dict, exp_id: str, log_dir: str, search_space: Callable[[], dict], history: History,
               log: logging.Logger) -> "TunerPort | AdvisorPort":
    if cfg.get("advisor") is not None:
        return AdvisorPort(algorithm_actor("advisor", exp_id, cfg["advisor"], log_dir), search_space, history, log)
    assessor = algorithm_actor("assessor", exp_id, cfg["assessor"], log_dir) if cfg.get("assessor") else None
    return TunerPort(algorithm_actor("tuner", exp_id, cfg["tuner"], log_dir), assessor, search_space, history, log)


class _HostPort:
    def __init__(self, handle: Any, search_space: Callable[[], dict], history: History,
                 log: logging.Logger) -> None:
        self.handle = handle
        self._space = search_space
        self._history = history
        self.log = log
        # Where answers nobody asked for go (an advisor rebuilt mid-call may send trials), and
        # who keeps fire-and-forget calls alive until they settle: the controller sets both.
        self.emit: Callable[[AlgorithmAnswered], None] = lambda answer: None
        self.spawn: Callable[[Any], None] = lambda coro: asyncio.get_running_loop().create_task(coro)

    async def _call(self, method: str, *args: Any, first: Any = None) -> Any:
        """``handle.method(*args)``, rebuilding the host if Ray restarted it empty.  ``first``
        is the call already submitted (its place in the call order is kept)."""
        for attempt in range(RESTART_ATTEMPTS):
            ref, first = (first, None) if first is not None else (getattr(self.handle, method).remote(*args), None)
            try:
                return await ref
            except NotInitialized:
                self.log.warning("%s: the algorithm lost its state (restarted); rebuilding from the store", method)
                await self._rebuild()
                if method in ("receive", "sync"):
                    return None  # the rebuild already included these results
            except RayActorError:
                await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))  # restarting: wait and retry
        raise RuntimeError(f"{method}: algorithm actor unavailable")

    async def _settle(self, ref: Any, what: str) -> None:
        """Await a fire-and-forget call so that its failure is logged (a restarted host is
        rebuilt from the store on its next request)."""
        try:
            await ref
        except Exception as e:  # noqa: BLE001 - logged, never fatal
            self.log.warning("%s failed: %s", what, short(e))

    async def _rebuild(self) -> Any:
        return await self.handle.setup.remote(self._space(), self._history())

    def release(self) -> None:
        kill_actor(self.handle)


class TunerPort(_HostPort):
    """``generate_multiple_parameters`` for trials, results batched to ``receive``; the
    assessor (if any) judges intermediate results."""

    def __init__(self, tuner: Any, assessor: Any | None, search_space: Callable[[], dict], history: History,
                 log: logging.Logger) -> None:
        super().__init__(tuner, search_space, history, log)
        self.assessor = assessor
        self._pending: list[dict] = []

    async def setup(self, search_space: dict, history: list[dict]) -> None:
        if await self.handle.is_ready.remote():
            n = await self.handle.sync.remote([d for d in history if d.get("parameter_id") is not None])
            self.log.info("re-attached to tuner; re-sent %d missed results", n)
        else:
            n = await self.handle.setup.remote(search_space, history)
            if n:
                self.log.info("tuner rebuilt from %d stored results", n)
        return None

    def flush(self) -> None:
        # Calls from this actor reach the tuner in submission order: a later generate() or
        # trial_end() sees these results.
        if self._pending:
            batch, self._pending = self._pending, []
            self.spawn(self._settle(self.handle.receive.remote(batch), "receive"))

    def request(self, request_id: int, count: int, parameter_ids: tuple) -> Awaitable[AlgorithmAnswered]:
        self.flush()
        ref = self.handle.generate.remote(list(parameter_ids))

        async def answer() -> AlgorithmAnswered:
            res = await self._call("generate", list(parameter_ids), first=ref)
            jobs = tuple(Job({"parameter_id": pid, "parameter_source": "algorithm", "parameters": p})
                         for pid, p in res["params"])
            return AlgorithmAnswered(jobs, no_more=bool(res["no_more"]), empty_means_no_more=True,
                                     request_id=request_id)
        return answer()

    def report_final(self, cmd: ReportFinal) -> None:
        hp = cmd.hyper_params
        self._pending.append({"parameter_id": hp.get("parameter_id"), "parameters": hp.get("parameters"),
                              "value": cmd.value, "customized": hp.get("parameter_source") == "customized"})
        return None

    def report_intermediate(self, cmd: ReportIntermediate) -> Awaitable[AssessorVerdict | None] | None:
        if self.assessor is None:
            return None
        ref = self.assessor.assess.remote(cmd.trial_id, list(cmd.history))

        async def verdict() -> AssessorVerdict | None:
            try:
                return AssessorVerdict(cmd.trial_id, bool(await ref))
            except Exception as e:  # noqa: BLE001 - an assessor failure only costs its verdict
                self.log.warning("assessor failed on %s: %s", cmd.trial_id, short(e))
                return None
        return verdict()

    def trial_end(self, cmd: ReportTrialEnd) -> None:
        self.flush()
        success = cmd.status is TrialStatus.SUCCEEDED
        if cmd.hyper_params.get("parameter_source") != "customized":
            # Submitted now, not from a task: the next generate() sees this trial ended (PBT's
            # synchronous steps depend on it).
            ref = self.handle.trial_end.remote(cmd.hyper_params.get("parameter_id"), success)
            self.spawn(self._settle(ref, "trial_end"))
        if self.assessor is not None:
            self.spawn(self._settle(self.assessor.trial_end.remote(cmd.trial_id, success), "assessor trial_end"))
        return None

    async def update_search_space(self, search_space: dict) -> None:
        await self._call("update_search_space", search_space)
        return None

    async def import_data(self, data: list[dict]) -> None:
        await self._call("import_data", data)
        return None

    def release(self) -> None:
        super().release()
        if self.assessor is not None:
            kill_actor(self.assessor)


class AdvisorPort(_HostPort):
    """NNI's advisor protocol (``MsgDispatcherBase``): every call may answer with commands
    (TR: a trial, NO: no more trials, KI: kill a trial)."""

    async def setup(self, search_space: dict, history: list[dict]) -> AlgorithmAnswered | None:
        if await self.handle.is_ready.remote():
            return None
        return _answer(await self.handle.setup.remote(search_space, history))

    async def _rebuild(self) -> Any:
        cmds = await super()._rebuild()
        self.emit(_answer(cmds))
        return cmds

    def flush(self) -> None:
        return None

    def request(self, request_id: int, count: int, parameter_ids: tuple) -> Awaitable[AlgorithmAnswered]:
        ref = self.handle.request.remote(count)

        async def answer() -> AlgorithmAnswered:
            return _answer(await self._call("request", count, first=ref), request_id)
        return answer()

    def _metric(self, cmd: ReportFinal | ReportIntermediate, kind: str) -> Awaitable[AlgorithmAnswered]:
        data = {"parameter_id": cmd.hyper_params.get("parameter_id"), "trial_job_id": cmd.trial_id, "type": kind,
                "sequence": cmd.sequence, "value": cmd.value}
        ref = self.handle.report_metric.remote(data)

        async def answer() -> AlgorithmAnswered:
            return _answer(await self._call("report_metric", data, first=ref))
        return answer()

    def report_final(self, cmd: ReportFinal) -> Awaitable[AlgorithmAnswered]:
        return self._metric(cmd, "FINAL")

    def report_intermediate(self, cmd: ReportIntermediate) -> Awaitable[AlgorithmAnswered]:
        return self._metric(cmd, "PERIODICAL")

    def trial_end(self, cmd: ReportTrialEnd) -> Awaitable[AlgorithmAnswered]:
        data = {"trial_job_id": cmd.trial_id, "event": cmd.status.value, "hyper_params": json.dumps(cmd.hyper_params)}
        ref = self.handle.trial_end.remote(data)

        async def answer() -> AlgorithmAnswered:
            return _answer(await self._call("trial_end", data, first=ref))
        return answer()

    async def update_search_space(self, search_space: dict) -> AlgorithmAnswered:
        return _answer(await self._call("update_search_space", search_space))

    async def import_data(self, data: list[dict]) -> AlgorithmAnswered:
        return _answer(await self._call("import_data", data))


def _answer(cmds: list | None, request_id: int | None = None) -> AlgorithmAnswered:
    jobs, kill, no_more = [], [], False
    for cmd, data in cmds or []:
        if cmd == "TR":
            job = json.loads(data)
            job.setdefault("parameter_source", "algorithm")
            jobs.append(Job(job))
        elif cmd == "NO":
            no_more = True
        elif cmd == "KI":
            kill.append(json.loads(data))
    return AlgorithmAnswered(tuple(jobs), no_more=no_more, empty_means_no_more=False, stop=tuple(kill),
                             request_id=request_id)


def short(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[-1][:300] if s else type(e).__name__
