"""NNI's advisor interface (``nni.runtime.msg_dispatcher_base.MsgDispatcherBase``).

An advisor replaces tuner + assessor.  In NNI it ran as a process that exchanged commands
with the manager over a pipe; here the advisor actor calls the ``handle_*`` methods and then
drains what the advisor ``send``-s, so an NNI advisor's code runs unchanged:

- ``handle_initialize(search_space)`` then ``send(CommandType.Initialized, '')``
- ``handle_request_trial_jobs(n)``: send up to n ``CommandType.NewTrialJob`` with a JSON string
  ``{"parameter_id": ..., "parameter_source": "algorithm", "parameters": {...}}``, or
  ``CommandType.NoMoreTrialJobs`` when done
- ``handle_report_metric_data(data)``: ``data`` has ``parameter_id``, ``trial_job_id``, ``type``
  (``MetricType.PERIODICAL``/``FINAL``), ``sequence`` and ``value`` (a JSON string, decode with
  :func:`nniray.load`)
- ``handle_trial_end(data)``: ``trial_job_id``, ``event`` (final trial status), ``hyper_params``
  (the JSON string of the NewTrialJob)
- ``handle_update_search_space``, ``handle_import_data``, ``handle_add_customized_trial``
An advisor may also ``send(CommandType.KillTrialJob, json.dumps(trial_job_id))``.
"""
from __future__ import annotations

from enum import Enum
from typing import Any


class CommandType(str, Enum):
    # manager -> dispatcher
    Initialize = "IN"
    RequestTrialJobs = "GE"
    ReportMetricData = "ME"
    UpdateSearchSpace = "SS"
    ImportData = "FD"
    AddCustomizedTrialJob = "AD"
    TrialEnd = "EN"
    Terminate = "TE"
    Ping = "PI"
    # dispatcher -> manager
    Initialized = "ID"
    NewTrialJob = "TR"
    SendTrialJobParameter = "SP"
    NoMoreTrialJobs = "NO"
    KillTrialJob = "KI"


class MetricType:
    PERIODICAL = "PERIODICAL"
    FINAL = "FINAL"
    REQUEST_PARAMETER = "REQUEST_PARAMETER"


class MsgDispatcherBase:
    """Base class of advisors.  Subclasses implement every ``handle_*`` they need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._outbox: list[tuple[CommandType, str]] = []

    # -- what the advisor sends ---------------------------------------------------------------
    def send(self, command: CommandType, data: str) -> None:
        if not hasattr(self, "_outbox"):  # a subclass that forgot super().__init__()
            self._outbox = []
        self._outbox.append((CommandType(command), data))

    def drain(self) -> list[tuple[CommandType, str]]:
        """Commands sent since the last drain (called by the runtime, not by the advisor)."""
        out, self._outbox = getattr(self, "_outbox", []), []
        return out

    # -- what the runtime calls ---------------------------------------------------------------
    def handle_initialize(self, data: Any) -> None:
        raise NotImplementedError("advisors must implement handle_initialize()")

    def handle_request_trial_jobs(self, data: int) -> None:
        raise NotImplementedError("advisors must implement handle_request_trial_jobs()")

    def handle_update_search_space(self, data: Any) -> None:
        raise NotImplementedError("advisors must implement handle_update_search_space()")

    def handle_import_data(self, data: list) -> None:
        """Finished trials ``[{parameter, value}]`` (resume).  Default: ignore."""

    def handle_add_customized_trial(self, data: Any) -> None:
        """Default: ignore."""

    def handle_report_metric_data(self, data: dict) -> None:
        raise NotImplementedError("advisors must implement handle_report_metric_data()")

    def handle_trial_end(self, data: dict) -> None:
        raise NotImplementedError("advisors must implement handle_trial_end()")
