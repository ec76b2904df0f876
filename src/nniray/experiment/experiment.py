"""``nniray.experiment.Experiment``: NNI's Python experiment API.

The driver validates everything before any actor exists (config, search space, the tuner's
support for it, classArgs), then starts the experiment's runtime through one
:class:`~nniray.actors.client.RuntimeClient` (the controller actor on a Ray cluster; a local
one is started if none is given).  This module imports no Ray: reads (trial lists, metrics,
exports) come straight from the experiment's SQLite store; changes go through the client.
One process runs an experiment at a time (:class:`~nniray.runtime.lock.ExperimentLock`).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from nniray.config import ConfigError, ExperimentConfig, build_config, load_config, parse_duration
from nniray.config.experiment_config import AlgorithmConfig
from nniray.config.training_service import PLATFORM_CLASSES, LocalConfig
from nniray.errors import ExperimentError
from nniray.experiment.progress import watch
from nniray.runtime import sidecar
from nniray.runtime.lock import ExperimentLock
from nniray.runtime.status import ExperimentStatus
from nniray.search_space import SearchSpaceError, check_import_records
from nniray.storage import ExperimentStore, default_registry
from nniray.strategies.registry import AlgorithmError, create_algorithm

TERMINAL = tuple(s.value for s in ExperimentStatus if s.terminal)
__all__ = ["Experiment", "ExperimentError", "TrialJob", "TrialMetricData", "TrialResult", "validate_experiment"]


def _runtime() -> Any:
    """The runtime client class.  Imported on first use, so that reading an experiment
    (``view``, ``nniray trial ls``) never loads Ray."""
    from nniray.actors.client import RuntimeClient
    return RuntimeClient


@dataclass
class TrialResult:
    parameter: Any
    value: Any
    trialJobId: str


@dataclass
class TrialMetricData:
    timestamp: float
    trialJobId: str
    parameterId: str | None
    type: str
    sequence: int
    data: Any


@dataclass
class TrialJob:
    trialJobId: str
    status: str
    hyperParameters: list
    sequenceId: int
    startTime: float | None = None
    endTime: float | None = None
    message: str | None = None
    finalMetricData: list = field(default_factory=list)
    logPath: str | None = None
    stderrPath: str | None = None


def _new_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _blank_config(platform: str) -> ExperimentConfig:
    if platform not in PLATFORM_CLASSES:
        raise ConfigError(f"unknown platform {platform!r}; known: {', '.join(sorted(PLATFORM_CLASSES))}")
    ts = LocalConfig() if platform == "local" else PLATFORM_CLASSES[platform].model_construct(platform=platform)
    blank_algo = lambda: AlgorithmConfig.model_construct(name=None, class_name=None, code_directory=None, class_args={})  # noqa: E731
    return ExperimentConfig.model_construct(
        training_service=ts, tuner=blank_algo(), assessor=blank_algo(), advisor=blank_algo(),
        trial_code_directory=".", experiment_working_directory="~/nni-experiments", use_annotation=False,
        debug=False, search_space=None, search_space_file=None, trial_command=None, trial_function=None)


def _config_to_dict(cfg: ExperimentConfig) -> dict:
    """A (possibly partial, Python-built) config as a snake_case dict, blank algorithms dropped."""
    out: dict[str, Any] = {}
    for name in ExperimentConfig.model_fields:
        v = getattr(cfg, name, None)
        if v is None:
            continue
        if isinstance(v, AlgorithmConfig):
            if not (getattr(v, "name", None) or getattr(v, "class_name", None)):
                continue
            v = {k: getattr(v, k, None) for k in AlgorithmConfig.model_fields if getattr(v, k, None) not in (None, {})}
        elif hasattr(v, "model_dump"):
            v = {k: getattr(v, k, None) for k in type(v).model_fields if getattr(v, k, None) is not None}
        elif isinstance(v, list) and v and hasattr(v[0], "model_dump"):
            v = [{k: getattr(x, k, None) for k in type(x).model_fields if getattr(x, k, None) is not None} for x in v]
        out[name] = v
    return out


def validate_experiment(cfg: ExperimentConfig) -> dict:
    """Everything that can be checked before anything runs.  Returns the search space."""
    cfg.local_service()  # refuses platforms that are not implemented yet
    space = cfg.load_search_space()
    if cfg.assessor is not None and cfg.tuner is not None and cfg.tuner.name in ("PBTTuner", "PBT"):
        raise ConfigError("assessor: PBTTuner cannot be combined with an assessor (its trials run one step "
                          "each); remove `assessor`")
    for kind in ("tuner", "assessor", "advisor"):
        algo = getattr(cfg, kind)
        if algo is None:
            continue
        try:
            with _sys_path_restored():  # a codeDirectory is imported from, not left on the user's path
                obj = create_algorithm(kind, name=algo.name, class_args=algo.class_args, class_name=algo.class_name,
                                       code_directory=algo.code_directory)
                if kind == "tuner":
                    obj.update_search_space(space)
                elif kind == "advisor":
                    obj.handle_initialize(space)
        except (AlgorithmError, SearchSpaceError) as e:
            raise ConfigError(f"{kind}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"{kind}.classArgs: {e}") from None
    # Each algorithm validated the space itself above (its own format and support matrix:
    # BatchTuner's combine_params, NetworkMorphism's {}, a custom tuner's anything).
    return space


@contextlib.contextmanager
def _sys_path_restored() -> Iterator[None]:
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved


class Experiment:
    """An NNI experiment: ``Experiment(config)`` or ``Experiment('local')`` then set
    ``experiment.config.<snake_case>``; ``run()`` blocks until done."""

    def __init__(self, config_or_platform: ExperimentConfig | str | None = "local",
                 trial_function: Callable | str | None = None, id: str | None = None) -> None:
        if isinstance(config_or_platform, ExperimentConfig):
            self.config = config_or_platform
        else:
            self.config = _blank_config(config_or_platform or "local")
        if trial_function is not None:
            self.config.trial_function = trial_function
        self.id = id
        self._runtime: Any = None  # the RuntimeClient while this process runs the experiment
        self._lock: ExperimentLock | None = None
        self._store: ExperimentStore | None = None
        self._exp_dir: Path | None = None
        self._mode = "new"

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def from_yaml(cls, path: str | Path) -> "Experiment":
        return cls(load_config(path))

    def _canonical_config(self) -> ExperimentConfig:
        return build_config(_config_to_dict(self.config))

    def start(self, port: int | None = None, debug: bool = False, ray_address: str | None = None) -> None:
        """Validate, then launch the experiment and return (call :meth:`stop` when done)."""
        cfg = self._canonical_config()
        cfg.check_runnable()  # e.g. a trialCodeDirectory that does not exist: refused before anything runs
        space = validate_experiment(cfg)
        self.config = cfg
        self.id = self.id or _new_id()
        root = Path(cfg.experiment_working_directory)
        self._exp_dir = root / self.id
        if (self._exp_dir / ExperimentStore.FILENAME).exists() and self._mode == "new":
            raise ExperimentError(f"experiment {self.id} already exists in {root}; use Experiment.resume")
        cfg_json = cfg.json_dict()
        cfg_json["searchSpace"] = space  # searchSpaceFile read once, here; the store keeps both
        self._launch(cfg_json, cfg.trial_function, ray_address or cfg.local_service().ray_address, resume=False,
                     port=port)
        print(f"Creating experiment, Experiment ID: {self.id}")

    def _launch(self, cfg_json: dict, trial_function: Any, address: str | None, resume: bool,
                port: int | None = None) -> None:
        self._exp_dir.mkdir(parents=True, exist_ok=True)
        lock = ExperimentLock(self._exp_dir, self.id)
        lock.acquire(port=port)  # a second driver of this experiment is refused, naming the first
        try:
            self._runtime = _runtime().start(self.id, str(self._exp_dir), cfg_json, trial_function, resume, address)
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        self._store = ExperimentStore(self._exp_dir, readonly=True)
        default_registry().update(self.id, experimentName=cfg_json.get("experimentName"), logDir=str(self._exp_dir),
                                  status=ExperimentStatus.RUNNING.value, pid=os.getpid(), startTime=time.time(),
                                  platform="local", rayAddress=self._runtime.address)

    def run(self, port: int | None = None, wait_completion: bool = True, debug: bool = False,
            ray_address: str | None = None) -> bool | None:
        """Start, show progress until the experiment ends, then stop.  True if it ended DONE."""
        if self._runtime is None:
            self.start(port, debug, ray_address)
        if not wait_completion:
            return None
        try:
            status = self._watch()
        except KeyboardInterrupt:
            # NNI's run(): Ctrl-C stops the experiment cleanly and returns (no traceback)
            print("Interrupted: stopping the experiment")
            self.stop()
            return False
        self.stop()
        return status == "DONE"

    def run_or_resume(self, port: int | None = None, wait_completion: bool = True, debug: bool = False) -> bool | None:
        """Resume the experiment named by ``self.id`` when it exists (stopped or interrupted),
        otherwise run it anew: the same script can be started again after a crash."""
        if self.id is not None:
            try:
                d = self._locate(self.id, None)
            except ExperimentError:
                d = None
            if d is not None:
                resumed = Experiment.resume(self.id, port=port, wait_completion=False, debug=debug,
                                            trial_function=self.config.trial_function)
                self.__dict__.update(resumed.__dict__)
                return self.run(port, wait_completion, debug) if wait_completion else None
        return self.run(port, wait_completion, debug)

    def get_experiment_metadata(self, exp_id: str | None = None) -> dict:
        """NNI's experiment-manager entry of ``exp_id`` (default: this experiment): id, status,
        experimentName, logDir, startTime, endTime, pid, port, platform, ..."""
        exp_id = exp_id or self.id
        entry = default_registry().get(exp_id) if exp_id else None
        if entry is None:
            raise ExperimentError(f"no experiment {exp_id!r} is registered on this machine "
                                  f"(see `nniray experiment list --all`)")
        return dict(entry, id=exp_id)

    def get_all_experiments_metadata(self) -> list[dict]:
        """Every registered experiment's entry (NNI's ``get_all_experiments_metadata``)."""
        return [dict(v, id=k) for k, v in sorted(default_registry().all().items())]

    def _watch(self) -> str:
        return watch(self)

    def stop(self) -> None:
        """Cancel running trials and release the experiment's actors."""
        if self._runtime is None:
            return
        print("Stopping experiment, please wait...")
        status = ExperimentStatus.STOPPED.value
        try:
            status = self._runtime.stop()
        except Exception as e:  # noqa: BLE001 - the controller may already be gone
            print(f"warning: controller did not stop cleanly: {e}")
        self._runtime = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        # An experiment that ended (DONE at time T) keeps T as its end; only a stop that ends
        # it now records now.
        ended = self._store.get_meta("end_time") if self._store is not None else None
        default_registry().update(self.id, status=status, endTime=ended or time.time())
        print("Experiment stopped")

    @classmethod
    def connect(cls, experiment_id: str | int, ray_address: str | None = None) -> "Experiment":
        """Attach to a running experiment (started by another driver or ``nniray create``), by
        id, or by its REST port as NNI's ``Experiment.connect(port)``."""
        reg = default_registry().all()
        if isinstance(experiment_id, int):
            ids = [k for k, v in reg.items() if v.get("port") == experiment_id]
            if not ids:
                raise ExperimentError(f"no experiment is serving on port {experiment_id}")
            experiment_id = ids[0]
        info = reg.get(experiment_id) or {}
        runtime = _runtime().attach(experiment_id, ray_address or info.get("rayAddress"))
        exp = cls.__new__(cls)
        Experiment.__init__(exp, "local", id=experiment_id)
        exp._runtime = runtime
        profile = runtime.profile()
        exp._exp_dir = Path(profile["logDir"])
        exp._store = ExperimentStore(exp._exp_dir, readonly=True)
        print(f"Connect to experiment {experiment_id} success, status is {profile['status']}.")
        return exp

    @classmethod
    def _locate(cls, experiment_id: str, experiment_dir: str | Path | None) -> Path:
        if experiment_dir is not None:
            d = Path(experiment_dir).expanduser()
            d = d if (d / ExperimentStore.FILENAME).exists() else d / experiment_id
        else:
            info = default_registry().get(experiment_id)
            d = Path(info["logDir"]) if info and info.get("logDir") else Path("~/nni-experiments").expanduser() / experiment_id
        if not (d / ExperimentStore.FILENAME).exists():
            raise ExperimentError(f"no experiment {experiment_id!r} found (looked in {d}); "
                                  f"see `nniray experiment list --all`, or give experiment_dir")
        return d

    @classmethod
    def resume(cls, experiment_id: str, port: int | None = None, wait_completion: bool = True, debug: bool = False,
               experiment_dir: str | Path | None = None, trial_function: Callable | str | None = None,
               ray_address: str | None = None) -> "Experiment":
        """Continue a stopped (or interrupted) experiment: the tuner is rebuilt from every stored
        result, sequence ids continue, interrupted trials end as SYS_CANCELED."""
        d = cls._locate(experiment_id, experiment_dir)
        store = ExperimentStore(d, readonly=True)
        cfg_json = store.get_meta("config")
        store.close()
        if cfg_json.get("trialCommand") is None and trial_function is None:
            raise ExperimentError(f"experiment {experiment_id} runs a Python function trial: pass "
                                  f"trial_function=... to resume it")
        exp = cls.__new__(cls)
        Experiment.__init__(exp, "local", id=experiment_id)
        exp._exp_dir = d
        exp._mode = "resume"
        ts = cfg_json.get("trainingService") or {}
        exp._launch(cfg_json, trial_function, ray_address or ts.get("rayAddress"), resume=True, port=port)
        print(f"Resuming experiment {experiment_id}")
        if wait_completion:
            exp.run()
        return exp

    @classmethod
    def view(cls, experiment_id: str, port: int | None = None, non_blocking: bool = True,
             experiment_dir: str | Path | None = None) -> "Experiment":
        """Open a stopped experiment read-only (nothing runs)."""
        d = cls._locate(experiment_id, experiment_dir)
        exp = cls.__new__(cls)
        Experiment.__init__(exp, "local", id=experiment_id)
        exp._exp_dir = d
        exp._store = ExperimentStore(d, readonly=True)
        exp._mode = "view"
        return exp

    # ------------------------------------------------------------------ reads (from the store)
    def _need_store(self) -> ExperimentStore:
        if self._store is None:
            raise ExperimentError("the experiment has not been started")
        return self._store

    def get_status(self) -> str:
        if self._mode == "view":
            return ExperimentStatus.VIEWED.value
        if self._runtime is not None:
            try:
                return self._runtime.status()["status"]
            except Exception:  # noqa: BLE001 - the controller is gone: the files say what is known
                pass
        side = sidecar.read(self._exp_dir) if self._exp_dir is not None else None
        if side is not None:  # the store could not take the last status
            return side["status"]
        return self._need_store().get_meta("status", "UNKNOWN")

    def get_errors(self) -> list[str]:
        """Why the experiment is in ERROR: from the controller (which keeps them in memory, also
        when the store cannot be written), else from the store and the status side file."""
        if self._runtime is not None:
            try:
                return list(self._runtime.status()["errors"])
            except Exception:  # noqa: BLE001 - gone: read the files
                pass
        errors = list(self._need_store().get_meta("errors", []))
        side = sidecar.read(self._exp_dir) if self._exp_dir is not None else None
        for err in (side or {}).get("errors", []):
            if err not in errors:
                errors.append(err)
        return errors

    def get_experiment_profile(self) -> dict:
        if self._runtime is not None:
            return self._runtime.profile()
        s = self._need_store()
        return {"id": self.id, "params": s.get_meta("config"), "execDuration": s.get_meta("exec_duration"),
                "logDir": str(self._exp_dir), "startTime": s.get_meta("start_time"), "endTime": s.get_meta("end_time"),
                "nextSequenceId": s.max_sequence_id() + 1, "revision": s.get_meta("revision", 0),
                "status": self.get_status()}

    def export_data(self) -> list[TrialResult]:
        return [TrialResult(d["parameter"], d["value"], d["trialJobId"]) for d in self._need_store().completed_results()]

    def list_trial_jobs(self, status: str | None = None) -> list[TrialJob]:
        s = self._need_store()
        out = []
        # Read through the store's batched path (one query per batch, not per trial).
        trials = list(s.iter_trials((status,) if status else ()))
        finals = s.finals_of([t.trial_id for t in trials])
        for t in trials:
            tdir = self._exp_dir / "trials" / t.trial_id
            out.append(TrialJob(t.trial_id, t.status.value, [t.hyper_params], t.sequence_id,
                                t.start_time, t.end_time, t.message,
                                [self._metric(m.as_dict()) for m in finals.get(t.trial_id, [])],
                                str(tdir / "trial.log"), str(tdir / "stderr")))
        return out

    def get_trial_job(self, trial_job_id: str) -> TrialJob:
        for t in self.list_trial_jobs():
            if t.trialJobId == trial_job_id:
                return t
        raise ExperimentError(f"no trial {trial_job_id!r} in experiment {self.id}")

    @staticmethod
    def _metric(m: dict) -> TrialMetricData:
        return TrialMetricData(m["timestamp"], m["trial_id"], m["parameter_id"], m["type"], m["sequence"], m["value"])

    def get_job_statistics(self) -> list[dict]:
        return [{"trialJobStatus": k, "trialJobNumber": v} for k, v in sorted(self._need_store().status_counts().items())]

    def get_job_metrics(self, trial_job_id: str | None = None) -> dict[str, list[TrialMetricData]]:
        out: dict[str, list] = {}
        for m in self._need_store().metrics(trial_job_id):
            out.setdefault(m["trial_id"], []).append(self._metric(m))
        return out

    # ------------------------------------------------------------------ changes (via the controller)
    def _need_runtime(self) -> Any:
        if self._runtime is None:
            raise ExperimentError("the experiment is not running")
        return self._runtime

    def _update(self, field: str, value: Any) -> None:
        self._need_runtime().update(field, value)

    def update_trial_concurrency(self, value: int) -> None:
        self._update("trialConcurrency", int(value))

    def update_max_trial_number(self, value: int) -> None:
        self._update("maxTrialNumber", int(value))

    def update_max_experiment_duration(self, value: str) -> None:
        parse_duration(value, "maxExperimentDuration")
        self._update("maxExperimentDuration", value)

    def update_search_space(self, value: dict | str | Path) -> None:
        if not isinstance(value, dict):
            value = json.loads(Path(value).read_text())
        self._update("searchSpace", value)

    def kill_trial_job(self, trial_job_id: str) -> bool:
        return self._need_runtime().kill_trial(trial_job_id)

    def import_data(self, data: list[dict]) -> int:
        data = list(data)
        space = self._store.get_meta("search_space") if self._store is not None else None
        try:
            check_import_records(space, data)
        except SearchSpaceError as e:
            raise ExperimentError(str(e)) from None
        return self._need_runtime().import_data(data)

    def add_customized_trial(self, parameters: dict) -> dict:
        """Run a trial with these parameters (NNI's customized trial: the web UI's "add trial",
        ``POST /trial-jobs``); ``{trialJobId, sequenceId}`` (None while it waits for a slot)."""
        if not isinstance(parameters, dict):
            raise ExperimentError(f"a customized trial's parameters must be a dict, got {type(parameters).__name__}")
        return self._need_runtime().add_customized_trial(dict(parameters))

    @property
    def experiment_dir(self) -> Path | None:
        return self._exp_dir
