"""Multi-trial NAS as an ordinary experiment of the runtime.

``RetiariiExperiment(base_model, evaluator, applied_mutators=None, strategy)`` (NNI 2.x) and
``NasExperiment(model_space, evaluator, strategy)`` (NNI 3.0) build an HPO
:class:`~nniray.experiment.Experiment` whose

* tuner is the strategy, hosted by :class:`~nniray.nas.execution.tuner.NasStrategyTuner`
  through the custom-tuner mechanism (``className`` + ``classArgs``; the strategy, the space
  and a model builder travel in ``classArgs`` as one encoded payload, so the store keeps them
  and ``resume`` rebuilds the strategy from it and from every stored result);
* trial is a function trial, :class:`~nniray.nas.execution.trial.NasTrial`: the architecture
  dict arrives as the trial's parameters (``trial ls`` shows it), the model is rebuilt under
  ``fixed_arch`` and the evaluator's reports are the trial's metrics;
* search space (for display and the REST API) is the model space in NNI's JSON format.

So the experiment is in ``nniray experiment list``, has the controller's faults handling, and
``resume`` works like any other experiment's.
"""
from __future__ import annotations

import difflib
import os
import pickle
from pathlib import Path
from typing import Any

import cloudpickle

from nniray.config import ConfigError
from nniray.experiment.experiment import Experiment, ExperimentError, _new_id
from nniray.mutable import LabeledMutable
from nniray.mutable.search_space import to_search_space
from nniray.nas.evaluator.base import Evaluator
from nniray.nas.execution.trial import ModelBuilder, NasTrial
from nniray.nas.execution.tuner import encode_payload
from nniray.strategies.nas.base import BaseStrategy
from nniray.trace import check_serializable

__all__ = ["RetiariiExperiment", "RetiariiExeConfig", "NasExperiment", "NasExperimentConfig"]

TUNER_CLASS = "nniray.nas.execution.tuner.NasStrategyTuner"
ENGINES = ("py", "base", "cgo", "benchmark")
_TRIAL_FILE = "nas_trial.pkl"


class RetiariiExeConfig:
    """NNI's ``RetiariiExeConfig`` fields (snake_case); unknown fields are refused by name."""

    _FIELDS = {
        "experiment_name": None, "search_space": "", "trial_command": "_reserved", "trial_code_directory": ".",
        "trial_concurrency": 1, "trial_gpu_number": 0, "devices": None, "max_experiment_duration": None,
        "max_trial_number": None, "max_concurrency_cgo": None, "batch_waiting_time": None, "nni_manager_ip": None,
        "debug": False, "log_level": None, "experiment_working_directory": "~/nni-experiments",
        "training_service": None, "execution_engine": "py", "dummy_input": None, "benchmark": None,
    }

    def __init__(self, training_service_platform: str | None = "local", **kwargs: Any) -> None:
        for k, v in self._FIELDS.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "training_service_platform", training_service_platform or "local")
        for k, v in kwargs.items():
            setattr(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._FIELDS and name != "training_service_platform":
            hint = difflib.get_close_matches(name, list(self._FIELDS), n=1)
            raise AttributeError(f"RetiariiExeConfig has no field {name!r}" + (f" (did you mean {hint[0]!r}?)"
                                                                               if hint else ""))
        if name == "trial_command" and value != "_reserved":
            raise AttributeError("RetiariiExeConfig.trial_command is reserved: a NAS experiment runs its own trial")
        object.__setattr__(self, name, value)

    def validate(self) -> None:
        if self.training_service_platform != "local":
            raise ConfigError(f"training_service_platform: NAS experiments run on the local platform (Ray); got "
                              f"{self.training_service_platform!r}")
        if self.execution_engine not in ENGINES:
            raise ConfigError(f"execution_engine must be one of {', '.join(ENGINES)}, got {self.execution_engine!r}")
        if self.execution_engine in ("base", "cgo"):
            raise ConfigError(f"execution_engine {self.execution_engine!r} (graph-based) is not available in nniray "
                              f"yet; use 'py' (the pure-python engine, the default) or 'benchmark'")
        if self.execution_engine == "benchmark":
            from nniray.nas.execution.benchmark import BENCHMARKS
            if self.benchmark not in BENCHMARKS:
                raise ConfigError(f"benchmark: the benchmark engine needs benchmark set to one of "
                                  f"{', '.join(BENCHMARKS)}, got {self.benchmark!r}")
        if not isinstance(self.trial_concurrency, int) or self.trial_concurrency < 1:
            raise ConfigError(f"trial_concurrency must be a positive integer, got {self.trial_concurrency!r}")


NasExperimentConfig = RetiariiExeConfig


def _ship_by_value(*objs: Any) -> None:
    """User code outside an installed package (a script, a test module) cannot be imported by the
    tuner and trial processes: pickle its module by value (``__main__`` already is)."""
    import sys
    import sysconfig
    roots = tuple(p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]} if p)
    for obj in objs:
        if obj is None:
            continue
        mod_name = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", None)
        mod = sys.modules.get(mod_name or "")
        if mod is None or mod.__name__ == "__main__" or mod.__name__.split(".")[0] in ("nniray", "torch", "builtins"):
            continue
        path = getattr(mod, "__file__", None) or ""
        if path.startswith(roots):
            continue
        for pickler in _picklers():
            try:
                pickler.register_pickle_by_value(mod)
            except (ValueError, TypeError):
                pass


def _picklers() -> list:
    out = [cloudpickle]
    try:
        from ray import cloudpickle as ray_cloudpickle
        out.append(ray_cloudpickle)
    except ImportError:
        pass
    return out


def _space_json(space: dict[str, LabeledMutable]) -> dict:
    out = {}
    for label, leaf in space.items():
        try:
            out[label] = to_search_space({label: leaf})[label]
        except ValueError:
            out[label] = {"_type": "choice", "_value": leaf.grid_values()}
    return out


class RetiariiExperiment:
    def __init__(self, base_model: Any, evaluator: Evaluator | None = None, applied_mutators: list | None = None,
                 strategy: BaseStrategy | None = None, trainer: Evaluator | None = None) -> None:
        import torch
        from nniray.nas.nn.pytorch.base import model_space_mutables
        evaluator = evaluator if evaluator is not None else trainer
        if not isinstance(base_model, torch.nn.Module):
            raise TypeError(f"base_model must be a model space (an nn.Module), got {type(base_model).__name__}")
        space = model_space_mutables(base_model)
        if applied_mutators:
            if space:
                raise RuntimeError("applied_mutators: mutators and inline choices (LayerChoice/InputChoice/"
                                   "ValueChoice/Repeat/Cell) cannot be mixed in one model space; use one or the other")
            raise RuntimeError("applied_mutators: custom graph Mutators need the graph-based execution engine, which "
                               "nniray does not have yet; express the space with inline choices")
        if not space:
            raise ValueError(f"base_model {type(base_model).__name__} has no choices: add LayerChoice/InputChoice/"
                             f"ValueChoice/Repeat/Cell to make it a model space")
        recorded = base_model.__dict__.get("_nniray_init_args")
        if recorded is None:
            raise TypeError(f"base_model {type(base_model).__name__}: decorate its class with @model_wrapper (or "
                            f"subclass nniray.nas.nn.ModelSpace) so each trial can rebuild it")
        if evaluator is not None and not isinstance(evaluator, Evaluator):
            raise TypeError(f"evaluator must be a FunctionalEvaluator or a Lightning evaluator, got "
                            f"{type(evaluator).__name__}")
        if not isinstance(strategy, BaseStrategy):
            raise TypeError(f"strategy must be a NAS strategy (e.g. nniray.nas.strategy.Random()), got "
                            f"{type(strategy).__name__}")
        _ship_by_value(type(base_model), type(evaluator), getattr(evaluator, "function", None), type(strategy),
                       getattr(strategy, "filter", None))
        if evaluator is not None:
            check_serializable(evaluator, "evaluator")
        check_serializable(strategy, "strategy")
        self.base_model, self.evaluator, self.strategy = base_model, evaluator, strategy
        self.space = space
        self.builder = ModelBuilder(type(base_model), recorded)
        check_serializable(self.builder, "base_model's init arguments")
        self.config: RetiariiExeConfig | None = None
        self.id: str | None = None
        self._exp: Experiment | None = None

    # ------------------------------------------------------------------ lifecycle
    def _experiment(self, config: RetiariiExeConfig) -> Experiment:
        config.validate()
        self.id = self.id or _new_id()
        root = Path(os.path.expanduser(config.experiment_working_directory)).resolve()
        exp_dir = root / self.id
        exp = Experiment("local", id=self.id)
        c = exp.config
        if config.experiment_name:
            c.experiment_name = config.experiment_name
        c.trial_concurrency = config.trial_concurrency
        if config.max_trial_number is not None:
            c.max_trial_number = config.max_trial_number
        if config.max_experiment_duration is not None:
            c.max_experiment_duration = config.max_experiment_duration
        if config.trial_gpu_number:
            c.trial_gpu_number = config.trial_gpu_number
        c.experiment_working_directory = str(root)
        c.trial_code_directory = config.trial_code_directory
        c.search_space = _space_json(self.space)
        evaluator = self.evaluator
        if config.execution_engine == "benchmark":
            from nniray.nas.execution.benchmark import BenchmarkEvaluator
            evaluator = BenchmarkEvaluator(config.benchmark)
        elif evaluator is None:
            raise TypeError("evaluator must be a FunctionalEvaluator or a Lightning evaluator (only the benchmark "
                            "engine runs without one)")
        trial = NasTrial(self.builder, evaluator, str(exp_dir))
        c.trial_function = trial
        c.tuner.class_name = TUNER_CLASS
        c.tuner.class_args = {"payload": encode_payload({
            "strategy": self.strategy, "space": self.space, "builder": self.builder,
            "concurrency": config.trial_concurrency, "max_models": config.max_trial_number})}
        exp_dir.mkdir(parents=True, exist_ok=True)
        # kept so that resume needs nothing but the id (the HPO resume asks for the trial function)
        (exp_dir / _TRIAL_FILE).write_bytes(cloudpickle.dumps(trial))
        return exp

    def start(self, config: RetiariiExeConfig | None = None, port: int | None = None, debug: bool = False,
              ray_address: str | None = None) -> None:
        self.config = config or self.config or RetiariiExeConfig("local")
        self._exp = self._experiment(self.config)
        self._exp.start(port, debug, ray_address)

    def run(self, config: RetiariiExeConfig | None = None, port: int | None = None, debug: bool = False,
            ray_address: str | None = None) -> bool | None:
        """Start, show progress until the search ends, then stop.  True if it ended DONE."""
        if self._exp is None:
            self.start(config, port, debug, ray_address)
        return self._exp.run(port, wait_completion=True, debug=debug)

    def stop(self) -> None:
        if self._exp is not None:
            self._exp.stop()

    @classmethod
    def resume(cls, experiment_id: str, port: int | None = None, wait_completion: bool = True, debug: bool = False,
               experiment_dir: str | Path | None = None, ray_address: str | None = None) -> "RetiariiExperiment":
        """Continue a stopped or interrupted NAS experiment: the strategy is rebuilt from the stored
        payload and every stored result."""
        d = Experiment._locate(experiment_id, experiment_dir)
        trial_file = d / _TRIAL_FILE
        if not trial_file.exists():
            raise ExperimentError(f"experiment {experiment_id} is not a NAS experiment (no {_TRIAL_FILE} in {d})")
        trial = pickle.loads(trial_file.read_bytes())
        self = cls.__new__(cls)
        self.id, self.config = experiment_id, None
        self.evaluator, self.builder = trial.evaluator, trial.builder
        self._exp = Experiment.resume(experiment_id, port, wait_completion=False, debug=debug, experiment_dir=d,
                                      trial_function=trial, ray_address=ray_address)
        if wait_completion:
            self._exp.run(port, wait_completion=True)
        return self

    @classmethod
    def view(cls, experiment_id: str, port: int | None = None, non_blocking: bool = True,
             experiment_dir: str | Path | None = None) -> "RetiariiExperiment":
        self = cls.__new__(cls)
        self.id, self.config, self.builder = experiment_id, None, None
        self._exp = Experiment.view(experiment_id, port, non_blocking, experiment_dir)
        return self

    # ------------------------------------------------------------------ results
    @property
    def experiment(self) -> Experiment:
        if self._exp is None:
            raise ExperimentError("the experiment has not been started")
        return self._exp

    def get_status(self) -> str:
        return self.experiment.get_status()

    def list_trial_jobs(self, status: str | None = None) -> list:
        return self.experiment.list_trial_jobs(status)

    def export_top_models(self, top_k: int = 1, optimize_mode: str = "maximize", formatter: str = "dict") -> list:
        """The ``top_k`` best architectures (failed and unfinished ones excluded), as dicts
        ``{label: chosen}`` (``formatter='dict'``), built models (``'instance'``) or standalone
        PyTorch source traced with torch.fx (``'code'``)."""
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if formatter not in ("dict", "instance", "code"):
            raise ValueError(f"formatter must be 'dict', 'code' or 'instance', got {formatter!r}")
        from nniray.strategies.nas.base import metric_value
        rows = []
        for r in self.experiment.export_data():
            v = metric_value(r.value)
            if isinstance(v, (int, float)) and isinstance(r.parameter, dict):
                rows.append((float(v), r.parameter))
        rows.sort(key=lambda t: t[0], reverse=optimize_mode == "maximize")
        archs = [dict(p) for _, p in rows[:top_k]]
        if formatter in ("instance", "code"):
            if self.builder is None:
                raise ExperimentError(f"formatter={formatter!r} needs the model space: resume the experiment, or "
                                      f"build the exported dicts under fixed_arch")
            models = [self.builder(a) for a in archs]
            if formatter == "code":
                from nniray.nas.execution.code_export import model_to_code
                return [model_to_code(m) for m in models]
            return models
        return archs

    @property
    def experiment_dir(self) -> Path | None:
        return self._exp.experiment_dir if self._exp is not None else None


class NasExperiment(RetiariiExperiment):
    """NNI 3.0's name: ``NasExperiment(model_space, evaluator, strategy, config=None)``."""

    def __init__(self, model_space: Any, evaluator: Evaluator, strategy: BaseStrategy,
                 config: RetiariiExeConfig | None = None, id: str | None = None) -> None:
        super().__init__(model_space, evaluator, strategy=strategy)
        self.config = config or RetiariiExeConfig("local")
        self.id = id

    def run(self, config: RetiariiExeConfig | None = None, port: int | None = None, wait_completion: bool = True,
            debug: bool = False, ray_address: str | None = None) -> bool | None:
        if not wait_completion:
            self.start(config, port, debug, ray_address)
            return None
        return super().run(config, port, debug, ray_address)
