"""The ports the experiment runtime talks through: small interfaces, one job each.

- :class:`AlgorithmPort`: whatever proposes trials and hears results.  The tuner+assessor pair
  and an NNI advisor both implement it (``nniray.actors.algorithms``), and so can a NAS
  strategy or a compression search later: the controller has no branch per kind.
- :class:`TrainingService`: where trials run: connect to (or bring up) a cluster, the
  placement of one trial's runner, whether a trial can ever fit, the runner pool, teardown.
  ``nniray.training_services.local`` implements it on a Ray cluster.

Calls that reach a remote algorithm are *submitted* when the method is called and *awaited*
through the returned awaitable: the order of calls is the order the algorithm sees them in
(a trial's end reaches the tuner before the next ``generate``), while the controller waits
on nothing it does not need.
"""
from __future__ import annotations

from typing import Any, Awaitable, Protocol, runtime_checkable

from nniray.runtime.commands import ReportFinal, ReportIntermediate, ReportTrialEnd
from nniray.runtime.events import AlgorithmAnswered, AssessorVerdict


@runtime_checkable
class AlgorithmPort(Protocol):
    async def setup(self, search_space: dict, history: list[dict]) -> AlgorithmAnswered | None:
        """Build (or re-attach to) the algorithm; ``history`` is every stored result (for a
        rebuild after a restart or a resume).  May answer with trials at once (advisors)."""

    def request(self, request_id: int, count: int, parameter_ids: tuple) -> Awaitable[AlgorithmAnswered]:
        """Ask for up to ``count`` parameter sets."""

    def report_final(self, cmd: ReportFinal) -> Awaitable[AlgorithmAnswered | None] | None: ...

    def report_intermediate(self, cmd: ReportIntermediate) -> Awaitable[AlgorithmAnswered | AssessorVerdict
                                                                          | None] | None: ...

    def trial_end(self, cmd: ReportTrialEnd) -> Awaitable[AlgorithmAnswered | None] | None: ...

    def flush(self) -> None:
        """Submit what is batched (final results) now."""

    async def update_search_space(self, search_space: dict) -> AlgorithmAnswered | None:
        """Raises ``SearchSpaceError`` for a space the algorithm refuses."""

    async def import_data(self, data: list[dict]) -> AlgorithmAnswered | None: ...

    def release(self) -> None:
        """The experiment is over: free the algorithm's resources."""


@runtime_checkable
class TrainingService(Protocol):
    # -- driver side
    def connect(self) -> bool:
        """Attach to (or bring up) the cluster; True if this call started it."""

    def check_fits(self, config: dict) -> None:
        """Raise ``ConfigError`` naming the field if one trial can never be placed."""

    def teardown(self) -> None:
        """Release what :meth:`connect` started."""

    # -- controller side: the runner pool
    def placement(self, config: dict) -> dict:
        """Resources (and options) of one trial's runner."""

    def start_runner(self, experiment_id: str, slot: int, config: dict, trial_function: Any) -> Any:
        """A new runner for ``slot``; raises ``ValueError`` while the slot's old runner is
        still being torn down (try again shortly)."""

    def find_runner(self, experiment_id: str, slot: int) -> Any | None:
        """The live runner of ``slot`` left by a previous controller, if any."""

    def retire_runner(self, handle: Any) -> None: ...
