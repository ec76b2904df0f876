"""A NAS strategy hosted as a tuner of the experiment runtime (no Ray here).

The runtime asks a tuner for parameters when trial slots are free and tells it results; a NAS
strategy is a loop that submits models and waits for them.  :class:`NasStrategyTuner` runs the
strategy's ``run()`` in a thread against :class:`TunerEngine`:

* ``submit_models`` queues the model; ``generate_parameters`` hands it out (its parameters are
  the architecture dict, which is what ``trial ls`` shows and what the trial rebuilds);
* ``receive_trial_result`` / ``trial_end`` mark the model Trained / Failed and wake the thread;
* ``import_data`` (resume) turns stored results into Trained models that ``list_models()``
  returns before anything else, so each strategy rebuilds its state (dedup history, population,
  TPE observations, grid progress) from the store.

``generate_parameters`` waits for the thread until it queued a model, ended, or is waiting for
results (then the slot stays empty for now and the controller asks again): an empty answer
while no trial runs would end the experiment.
"""
from __future__ import annotations

import base64
import collections
import logging
import threading
import time
import traceback
from typing import Any

import cloudpickle

from nniray.strategies.nas.base import ExecutionEngine, Model, ModelStatus, metric_value, mutators_of, \
    set_execution_engine
from nniray.tuner import NoMoreTrialError, Tuner

log = logging.getLogger("nniray.nas.execution")

__all__ = ["NasStrategyTuner", "TunerEngine", "encode_payload", "decode_payload", "StrategyError"]

# The longest generate() waits for a strategy that is still computing its next model.
GENERATE_WAIT_SECONDS = 300.0


class StrategyError(RuntimeError):
    """The strategy's run() raised; the experiment ends with this message."""


def encode_payload(payload: dict) -> str:
    return base64.b64encode(cloudpickle.dumps(payload)).decode("ascii")


def decode_payload(text: str) -> dict:
    return cloudpickle.loads(base64.b64decode(text.encode("ascii")))


class TunerEngine(ExecutionEngine):
    def __init__(self, concurrency: int, max_models: int | None) -> None:
        self.concurrency = max(1, int(concurrency))
        self.max_models = max_models
        self.cv = threading.Condition()
        self.queue: collections.deque[Model] = collections.deque()
        self.models: list[Model] = []
        self.inflight: set[int] = set()
        self.idle = False
        self.finished = False
        self.error: str | None = None
        self.imported = 0

    # -- strategy side ----------------------------------------------------------------------
    def submit_models(self, *models: Model) -> None:
        with self.cv:
            for model in models:
                if model.status != ModelStatus.Frozen:
                    model.freeze()
                model.status = ModelStatus.Training
                self.models.append(model)
                self.queue.append(model)
                self.inflight.add(model.model_id)
            self.idle = False
            self.cv.notify_all()

    def list_models(self) -> list[Model]:
        with self.cv:
            return list(self.models)

    def query_available_resources(self) -> int:
        with self.cv:
            n = self.concurrency - len(self.inflight)
            if n <= 0:
                self._set_idle()
            return max(0, n)

    def budget_exhausted(self) -> bool:
        with self.cv:
            return self.max_models is not None and len(self.models) >= self.max_models

    def wait_models(self, *models: Model) -> None:
        with self.cv:
            while any(m.status not in (ModelStatus.Trained, ModelStatus.Failed) for m in models):
                self._set_idle()
                self.cv.wait(1.0)
            self.idle = False

    def idle_wait(self, timeout: float = 2.0) -> None:
        with self.cv:
            self._set_idle()
            self.cv.wait(timeout)
            self.idle = False

    def _set_idle(self) -> None:
        self.idle = True
        self.cv.notify_all()

    # -- runtime side -----------------------------------------------------------------------
    def next_model(self, wait_seconds: float) -> Model | None:
        deadline = time.monotonic() + wait_seconds
        with self.cv:
            while not self.queue and not self.finished and not self.idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(min(left, 1.0))
            return self.queue.popleft() if self.queue else None

    def done(self, model: Model, metric: Any = None, success: bool | None = None) -> None:
        with self.cv:
            if metric is not None:
                model.metric = metric
                model.status = ModelStatus.Trained
            elif success is not None and model.status == ModelStatus.Training:
                model.status = ModelStatus.Trained if success and model.metric is not None else ModelStatus.Failed
            if model.status in (ModelStatus.Trained, ModelStatus.Failed) and success is not None:
                self.inflight.discard(model.model_id)
            self.idle = False
            self.cv.notify_all()

    def add_imported(self, model: Model) -> None:
        with self.cv:
            self.models.append(model)
            self.imported += 1


class NasStrategyTuner(Tuner):
    """Tuner side of a NAS experiment; ``payload`` is what ``RetiariiExperiment`` encodes: the
    strategy, the space ``{label: leaf}``, a model builder, concurrency and budget."""

    def __init__(self, payload: str) -> None:
        spec = decode_payload(payload)
        for key in ("strategy", "space", "concurrency"):
            if key not in spec:
                raise ValueError(f"NAS payload lacks {key!r}")
        self.strategy = spec["strategy"]
        self.space = spec["space"]
        self.builder = spec.get("builder")
        self.engine = TunerEngine(spec["concurrency"], spec.get("max_models"))
        self._by_pid: dict[Any, Model] = {}
        self._thread: threading.Thread | None = None

    def update_search_space(self, search_space: dict) -> None:
        return None  # the space is the model space's, given in the payload

    def import_data(self, data: list[dict]) -> None:
        for d in data:
            params = d.get("parameter")
            if not isinstance(params, dict):
                continue
            model = Model(self.space, params, builder=self.builder)
            model.status = ModelStatus.Trained
            model.metric = metric_value(d.get("value"))
            if model.metric is None:
                model.status = ModelStatus.Failed
            self.engine.add_imported(model)

    def _start(self) -> None:
        if self._thread is not None:
            return

        def target() -> None:
            set_execution_engine(self.engine)
            try:
                self.strategy.run(Model(self.space, builder=self.builder), mutators_of(self.space))
            except BaseException:  # noqa: BLE001 - reported to the experiment, not lost in a thread
                self.engine.error = traceback.format_exc()
                log.error("strategy %s raised:\n%s", type(self.strategy).__name__, self.engine.error)
            finally:
                with self.engine.cv:
                    self.engine.finished = True
                    self.engine.cv.notify_all()

        self._thread = threading.Thread(target=target, name="nas-strategy", daemon=True)
        self._thread.start()

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        self._start()
        model = self.engine.next_model(GENERATE_WAIT_SECONDS)
        if model is None:
            if self.engine.error is not None:
                last = self.engine.error.strip().splitlines()[-1]
                raise StrategyError(f"NAS strategy {type(self.strategy).__name__} raised: {last}")
            if self.engine.finished:
                raise NoMoreTrialError("the strategy has no more models")
            raise _NotNow()
        self._by_pid[parameter_id] = model
        return model.export()

    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list:
        out = []
        for pid in parameter_id_list:
            try:
                out.append(self.generate_parameters(pid))
            except _NotNow:
                break
            except NoMoreTrialError:
                if out:
                    break
                raise
        return out

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        model = self._by_pid.get(parameter_id)
        if model is not None:
            self.engine.done(model, metric=metric_value(value))

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        model = self._by_pid.pop(parameter_id, None)
        if model is not None:
            self.engine.done(model, success=success)


class _NotNow(Exception):
    """The strategy waits for results: no model for this slot yet."""
