"""What a NAS strategy works with (NNI 2.x's ``nni.retiarii`` strategy API, plain Python).

* :class:`Model`: one architecture of the space, i.e. a sample ``{label: chosen}``, with its
  status, ``metric`` (None until trained, or when it failed) and ``intermediate_metrics``.
* :class:`Mutator` / :class:`Sampler`: a space is a base model plus mutators applied one after
  another; for inline choices there is one :class:`InlineMutator` per label, so a user's
  ``BaseStrategy.run(base_model, applied_mutators)`` written for NNI runs unchanged.
* The execution API (``submit_models``, ``wait_models``, ``list_models``,
  ``query_available_resources``, ``is_stopped_exec``, ``budget_exhausted``) talks to the current
  :class:`ExecutionEngine`: the runtime's (a NAS experiment) or :class:`SequentialEngine` (the
  same strategy evaluated in-process, e.g. on a benchmark table).
"""
from __future__ import annotations

import abc
import copy
import enum
import itertools
import logging
import threading
from typing import Any, Callable, Iterable, Sequence

from nniray.mutable import LabeledMutable

log = logging.getLogger("nniray.nas.strategy")

__all__ = [
    "ModelStatus", "Model", "Mutator", "InlineMutator", "Sampler", "InvalidMutation", "BaseStrategy",
    "ExecutionEngine", "SequentialEngine", "set_execution_engine", "get_execution_engine", "submit_models",
    "wait_models", "list_models", "query_available_resources", "is_stopped_exec", "budget_exhausted",
    "dry_run_for_search_space", "get_targeted_model", "metric_value", "sample_key",
]


class ModelStatus(str, enum.Enum):
    Mutating = "mutating"
    Frozen = "frozen"
    Training = "training"
    Trained = "trained"
    Failed = "failed"


class InvalidMutation(Exception):
    """A sampled model that is not a member of the space; strategies skip it."""


def metric_value(value: Any) -> Any:
    """A trial's final result as a number (``{"default": x, ...}`` → x)."""
    if isinstance(value, dict):
        return value.get("default")
    return value


def sample_key(sample: dict) -> str:
    return repr(sorted((k, repr(v)) for k, v in sample.items()))


_ids = itertools.count(1)


class Model:
    """One architecture: ``sample`` (``{label: chosen}``) in the space ``space`` (label → leaf)."""

    def __init__(self, space: dict[str, LabeledMutable], sample: dict | None = None, *,
                 builder: Callable[[dict], Any] | None = None, evaluator: Any = None, _internal: bool = False) -> None:
        self.space = space
        self.sample: dict = dict(sample or {})
        self.status = ModelStatus.Frozen if sample is None else ModelStatus.Mutating
        self.metric: Any = None
        self.intermediate_metrics: list = []
        self.model_id = next(_ids)
        self.history: list = []
        self.evaluator = evaluator
        self._builder = builder

    # -- NNI's Model members ---------------------------------------------------------------
    @property
    def python_class(self) -> Any:
        return getattr(self._builder, "space_class", None)

    @property
    def python_init_params(self) -> Any:
        return getattr(self._builder, "init_args", None)

    def fork(self) -> "Model":
        if self.status != ModelStatus.Frozen:
            raise RuntimeError(f"Model {self.model_id}: only a frozen model can be forked (status {self.status.value})")
        new = Model(self.space, dict(self.sample), builder=self._builder, evaluator=self.evaluator)
        new.history = list(self.history) + [self]
        return new

    def freeze(self) -> "Model":
        missing = [k for k in self.space if k not in self.sample]
        if missing:
            raise InvalidMutation(f"model {self.model_id} has no choice for {missing}")
        for label, leaf in self.space.items():
            err = leaf.check_contains({label: self.sample[label]})
            if err is not None:
                raise InvalidMutation(str(err))
        self.status = ModelStatus.Frozen
        return self

    def export(self) -> dict:
        """The ``'dict'`` export: ``{label: chosen}`` (what ``fixed_arch`` consumes)."""
        return dict(self.sample)

    def build(self) -> Any:
        """The concrete (torch) model of this architecture, where the space can be built here."""
        if self._builder is None:
            raise RuntimeError("this model space cannot be built here (no builder attached)")
        return self._builder(self.sample)

    def get_nodes_by_label(self, label: str) -> list:
        raise RuntimeError("graph IR (nodes and edges) is not available in the pure-python engine: the space is "
                           "described by its choices, model.space / model.sample")

    def __repr__(self) -> str:
        return f"Model(id={self.model_id}, status={self.status.value}, metric={self.metric!r}, sample={self.sample})"


class Sampler:
    """Answers :meth:`Mutator.choice` calls (strategy side)."""

    def choice(self, candidates: list, mutator: "Mutator", model: Model, index: int) -> Any:
        raise NotImplementedError  # abstract

    def mutation_start(self, mutator: "Mutator", model: Model) -> None:
        return None

    def mutation_end(self, mutator: "Mutator", model: Model) -> None:
        return None


class _RecorderSampler(Sampler):
    def __init__(self) -> None:
        self.recorded: list[list] = []

    def choice(self, candidates, mutator, model, index):
        self.recorded.append(list(candidates))
        return candidates[0]


class Mutator:
    """Holds mutation logic: subclass and implement :meth:`mutate` with :meth:`choice` calls."""

    def __init__(self, sampler: Sampler | None = None, label: str | None = None) -> None:
        self.sampler = sampler
        self.label = label
        self._cur_model: Model | None = None
        self._cur_choice_idx = 0

    def bind_sampler(self, sampler: Sampler) -> "Mutator":
        self.sampler = sampler
        return self

    def apply(self, model: Model) -> Model:
        """A mutated copy of ``model`` (the input is never changed)."""
        if self.sampler is None:
            raise RuntimeError(f"mutator {self.label!r}: bind a sampler first (mutator.bind_sampler(...))")
        copy_ = model.fork() if model.status == ModelStatus.Frozen else _clone(model)
        self._cur_model, self._cur_choice_idx = copy_, 0
        self.sampler.mutation_start(self, copy_)
        self.mutate(copy_)
        self.sampler.mutation_end(self, copy_)
        self._cur_model = None
        return copy_

    def dry_run(self, model: Model) -> tuple[list[list], Model]:
        """The candidates of every choice this mutator makes (choosing the first of each)."""
        sampler_backup, recorder = self.sampler, _RecorderSampler()
        self.sampler = recorder
        try:
            new = self.apply(model)
        finally:
            self.sampler = sampler_backup
        return recorder.recorded, new

    def choice(self, candidates: Iterable[Any]) -> Any:
        assert self.sampler is not None and self._cur_model is not None
        value = self.sampler.choice(list(candidates), self, self._cur_model, self._cur_choice_idx)
        self._cur_choice_idx += 1
        return value

    def mutate(self, model: Model) -> None:
        raise NotImplementedError  # abstract


def _clone(model: Model) -> Model:
    new = copy.copy(model)
    new.sample = dict(model.sample)
    new.history = list(model.history)
    return new


class InlineMutator(Mutator):
    """The mutator of one inline choice (a label of the model space)."""

    def __init__(self, label: str, leaf: LabeledMutable) -> None:
        super().__init__(label=label)
        self.leaf = leaf

    def candidates(self) -> list:
        return self.leaf.grid_values()

    def mutate(self, model: Model) -> None:
        model.sample[self.label] = self.choice(self.candidates())


def dry_run_for_search_space(base_model: Model, applied_mutators: Sequence[Mutator]) -> dict[str, list]:
    """``{label: candidates}`` of a finite space."""
    space: dict[str, list] = {}
    for i, mutator in enumerate(applied_mutators):
        recorded, base_model = mutator.dry_run(base_model)
        if len(recorded) == 1:
            space[mutator.label or f"mutator_{i}"] = recorded[0]
        else:
            for j, cands in enumerate(recorded):
                space[f"{mutator.label or f'mutator_{i}'}/{j}"] = cands
    return space


class _FixedSampler(Sampler):
    def __init__(self, sample: dict) -> None:
        self.sample = sample

    def choice(self, candidates, mutator, model, index):
        key = mutator.label if mutator.label in self.sample else f"{mutator.label}/{index}"
        return self.sample[key]


def get_targeted_model(base_model: Model, applied_mutators: Sequence[Mutator], sample: dict) -> Model:
    sampler = _FixedSampler(sample)
    model = base_model
    for mutator in applied_mutators:
        saved = mutator.sampler
        model = mutator.bind_sampler(sampler).apply(model)
        mutator.sampler = saved
    return model


# ------------------------------------------------------------------------------------- engines
class ExecutionEngine(abc.ABC):
    """Where submitted models are evaluated."""

    @abc.abstractmethod
    def submit_models(self, *models: Model) -> None: ...

    @abc.abstractmethod
    def list_models(self) -> list[Model]: ...

    @abc.abstractmethod
    def query_available_resources(self) -> int: ...

    @abc.abstractmethod
    def budget_exhausted(self) -> bool: ...

    @abc.abstractmethod
    def wait_models(self, *models: Model) -> None: ...

    def idle_wait(self, timeout: float = 2.0) -> None:
        """Block until something changes (a model finished) or ``timeout``: what strategies do
        instead of NNI's ``time.sleep(2)`` polling."""
        return None


class SequentialEngine(ExecutionEngine):
    """Evaluates each submitted model at once, in this process: ``evaluate(model)`` returns the
    metric (a number or ``{"default": x}``) or raises (the model is Failed).  ``max_models``
    is the budget."""

    def __init__(self, evaluate: Callable[[Model], Any], max_models: int | None = None) -> None:
        self.evaluate = evaluate
        self.max_models = max_models
        self.models: list[Model] = []

    def submit_models(self, *models: Model) -> None:
        for model in models:
            if model.status != ModelStatus.Frozen:
                model.freeze()
            self.models.append(model)
            model.status = ModelStatus.Training
            try:
                model.metric = metric_value(self.evaluate(model))
                model.status = ModelStatus.Trained if model.metric is not None else ModelStatus.Failed
            except Exception as e:  # noqa: BLE001 - the model failed; the search goes on
                log.info("model %d failed: %s", model.model_id, e)
                model.metric = None
                model.status = ModelStatus.Failed

    def list_models(self) -> list[Model]:
        return list(self.models)

    def query_available_resources(self) -> int:
        return 0 if self.budget_exhausted() else 1

    def budget_exhausted(self) -> bool:
        return self.max_models is not None and len(self.models) >= self.max_models

    def wait_models(self, *models: Model) -> None:
        return None


_engine_local = threading.local()
_engine_global: list[ExecutionEngine | None] = [None]


def set_execution_engine(engine: ExecutionEngine | None) -> None:
    _engine_global[0] = engine


def get_execution_engine() -> ExecutionEngine:
    engine = _engine_global[0]
    if engine is None:
        raise RuntimeError("no execution engine: strategies run inside a NAS experiment (RetiariiExperiment.run) "
                           "or with set_execution_engine(SequentialEngine(...))")
    return engine


def submit_models(*models: Model) -> None:
    get_execution_engine().submit_models(*models)


def list_models(*args: Any) -> list[Model]:
    return get_execution_engine().list_models()


def wait_models(*models: Model) -> None:
    get_execution_engine().wait_models(*models)


def query_available_resources() -> int:
    return get_execution_engine().query_available_resources()


def budget_exhausted() -> bool:
    return get_execution_engine().budget_exhausted()


def is_stopped_exec(model: Model) -> bool:
    return model.status in (ModelStatus.Trained, ModelStatus.Failed)


class BaseStrategy(abc.ABC):
    """A multi-trial strategy: implement ``run(base_model, applied_mutators)`` with the execution
    API above."""

    @abc.abstractmethod
    def run(self, base_model: Model, applied_mutators: list[Mutator]) -> None: ...

    def export_top_models(self, top_k: int = 1, optimize_mode: str = "maximize") -> list[dict]:
        return top_models(list_models(), top_k, optimize_mode)


def top_models(models: Iterable[Model], top_k: int, optimize_mode: str) -> list[dict]:
    done = [m for m in models if m.status == ModelStatus.Trained and m.metric is not None]
    done.sort(key=lambda m: m.metric, reverse=optimize_mode == "maximize")
    return [m.export() for m in done[:top_k]]


def wait_for_resource() -> bool:
    """Block until a slot is free; False if the budget ran out meanwhile."""
    engine = get_execution_engine()
    while engine.query_available_resources() <= 0:
        if engine.budget_exhausted():
            return False
        engine.idle_wait()
    return not engine.budget_exhausted()


def mutators_of(space: dict[str, LabeledMutable]) -> list[InlineMutator]:
    return [InlineMutator(label, leaf) for label, leaf in space.items()]
