"""Hosts for the algorithms: tuner, assessor and advisor, each run inside its own actor.

Each host wraps a plain-Python algorithm object (``strategies/`` or a user's class) and keeps
the bookkeeping the controller needs to rebuild it: which results it has already seen, so that
a controller that restarted can re-send exactly the missing ones (:meth:`TunerHost.sync`),
and whether it was set up at all, so that a host that Ray restarted in a fresh process is
rebuilt from the store instead of silently starting empty.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

from nniray.strategies.registry import create_algorithm
from nniray.tuner import NoMoreTrialError

log = logging.getLogger("nniray.dispatcher")


class NotInitialized(RuntimeError):
    """The host lost its algorithm (fresh process after a crash): the controller rebuilds it."""


def _build(kind: str, algo_cfg: dict, log_dir: str | None) -> Any:
    # NNI_LOG_DIRECTORY (the algorithm's working directory, NNI's variable) is set for this
    # host's process by its actor options (runtime_env), never in the driver.
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        _log_to(os.path.join(log_dir, "dispatcher.log"))
    return create_algorithm(kind, name=algo_cfg.get("name"), class_args=algo_cfg.get("classArgs"),
                            class_name=algo_cfg.get("className"), code_directory=algo_cfg.get("codeDirectory"))


def _log_to(path: str) -> None:
    """Algorithm logs (ours under ``nniray.*``, a user's under the root logger) go to
    ``dispatcher.log`` as in NNI.  The root logger touched here is the host actor's own
    process's (a detached actor has a worker process to itself), not the driver's."""
    root = logging.getLogger()
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == path for h in root.handlers):
        return
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s"))
    root.addHandler(h)
    root.setLevel(logging.INFO)


class TunerHost:
    def __init__(self, algo_cfg: dict, log_dir: str | None = None) -> None:
        self._cfg = algo_cfg
        self._log_dir = log_dir
        self.tuner: Any = None
        self._seen: set[str] = set()  # parameter ids whose final result the tuner has

    def setup(self, search_space: dict, data: list[dict]) -> int:
        """Build the tuner, give it the search space and import the finished trials."""
        self.tuner = _build("tuner", self._cfg, self._log_dir)
        self.tuner.update_search_space(search_space)
        gen = [d for d in data if not d.get("customized")]
        if gen:
            self.tuner.import_data([{"parameter": d["parameter"], "value": d["value"]} for d in gen])
        self._seen = {str(d["parameter_id"]) for d in data if d.get("parameter_id") is not None}
        return len(gen)

    def is_ready(self) -> bool:
        return self.tuner is not None

    def _need(self) -> Any:
        if self.tuner is None:
            raise NotInitialized("tuner host has no tuner")
        return self.tuner

    def generate(self, parameter_ids: list[int]) -> dict:
        """``{"params": [(id, parameters), ...], "no_more": bool}``."""
        tuner = self._need()
        no_more = False
        try:
            out = list(tuner.generate_multiple_parameters(list(parameter_ids)) or [])
        except NoMoreTrialError:
            # PBT raises this between synchronous steps too; it says so with waiting_for_step.
            out, no_more = [], not getattr(tuner, "waiting_for_step", False)
        # An empty answer is not the end by itself: PBT returns nothing between synchronous
        # steps.  The controller ends the experiment when an empty answer comes while no trial
        # is running (nothing could change the tuner's mind), or on NoMoreTrialError.
        return {"params": list(zip(parameter_ids, out)), "no_more": no_more}

    def receive(self, results: list[dict]) -> None:
        """``results``: ``[{parameter_id, parameters, value, customized}]`` in order."""
        tuner = self._need()
        for r in results:
            key = str(r["parameter_id"])
            if key in self._seen:
                continue
            self._seen.add(key)
            if r.get("customized"):
                tuner.receive_customized_trial_result(r["parameter_id"], r["parameters"], r["value"])
            else:
                tuner.receive_trial_result(r["parameter_id"], r["parameters"], r["value"])

    def trial_end(self, parameter_id: Any, success: bool) -> None:
        self._need().trial_end(parameter_id, success)

    def sync(self, results: list[dict]) -> int:
        """Feed the results the tuner missed (the controller died between storing and
        forwarding them).  Returns how many were new."""
        before = len(self._seen)
        self.receive(results)
        return len(self._seen) - before

    def update_search_space(self, search_space: dict) -> None:
        self._need().update_search_space(search_space)

    def import_data(self, data: list[dict]) -> None:
        self._need().import_data(data)


class AssessorHost:
    def __init__(self, algo_cfg: dict, log_dir: str | None = None) -> None:
        self.assessor = _build("assessor", algo_cfg, log_dir)

    def assess(self, trial_id: str, history: list) -> bool:
        """True = Good, False = Bad."""
        res = self.assessor.assess_trial(trial_id, list(history))
        return bool(getattr(res, "value", res))

    def trial_end(self, trial_id: str, success: bool) -> None:
        self.assessor.trial_end(trial_id, success)


class AdvisorHost:
    """Drives an NNI-style advisor (``MsgDispatcherBase``) and returns what it sends."""

    def __init__(self, algo_cfg: dict, log_dir: str | None = None) -> None:
        self._cfg = algo_cfg
        self._log_dir = log_dir
        self.advisor: Any = None

    def is_ready(self) -> bool:
        return self.advisor is not None

    def setup(self, search_space: dict, data: list[dict]) -> list:
        self.advisor = _build("advisor", self._cfg, self._log_dir)
        self.advisor.handle_initialize(search_space)
        if data:
            self.advisor.handle_import_data([{"parameter": d["parameter"], "value": d["value"]} for d in data])
        return self._drain()

    def _need(self) -> Any:
        if self.advisor is None:
            raise NotInitialized("advisor host has no advisor")
        return self.advisor

    def _drain(self) -> list:
        out = []
        for cmd, data in self.advisor.drain():
            out.append((cmd.value if hasattr(cmd, "value") else str(cmd), data))
        return out

    def request(self, n: int) -> list:
        self._need().handle_request_trial_jobs(n)
        return self._drain()

    def report_metric(self, data: dict) -> list:
        payload = dict(data)
        payload["value"] = json.dumps(payload["value"])
        self._need().handle_report_metric_data(payload)
        return self._drain()

    def trial_end(self, data: dict) -> list:
        self._need().handle_trial_end(data)
        return self._drain()

    def update_search_space(self, search_space: dict) -> list:
        self._need().handle_update_search_space(search_space)
        return self._drain()

    def import_data(self, data: list) -> list:
        self._need().handle_import_data(data)
        return self._drain()
