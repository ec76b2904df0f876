"""``nniray.experiment.Experiment``: NNI's Python experiment API, driving a controller actor.

The driver validates everything before any actor exists (config, search space, the tuner's
support for it, classArgs), then starts the experiment's controller as a detached named actor
on the Ray cluster (a local one is started if none is given).  Reads (trial lists, metrics,
exports) come straight from the experiment's SQLite store; changes go to the controller.
"""
from __future__ import annotations

import os
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nniray.config import ConfigError, ExperimentConfig, build_config, load_config
from nniray.config.experiment_config import AlgorithmConfig
from nniray.config.training_service import LocalConfig
from nniray.storage import ExperimentStore, default_registry

TERMINAL = ("DONE", "STOPPED", "ERROR", "VIEWED")


class ExperimentError(RuntimeError):
    """An experiment that cannot be started, found or changed; the message says why."""


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
    from nniray.config.training_service import PLATFORM_CLASSES
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
    from nniray.search_space import SearchSpaceError
    from nniray.strategies.registry import AlgorithmError, create_algorithm
    space = cfg.load_search_space()
    if cfg.assessor is not None and cfg.tuner is not None and cfg.tuner.name in ("PBTTuner", "PBT"):
        raise ConfigError("assessor: PBTTuner cannot be combined with an assessor (its trials run one step "
                          "each); remove `assessor`")
    for kind in ("tuner", "assessor", "advisor"):
        algo = getattr(cfg, kind)
        if algo is None:
            continue
        try:
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
        self._controller: Any = None
        self._store: ExperimentStore | None = None
        self._exp_dir: Path | None = None
        self._started_ray = False
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
        space = validate_experiment(cfg)
        self.config = cfg
        self.id = self.id or _new_id()
        root = Path(cfg.experiment_working_directory)
        self._exp_dir = root / self.id
        if (self._exp_dir / ExperimentStore.FILENAME).exists() and self._mode == "new":
            raise ExperimentError(f"experiment {self.id} already exists in {root}; use Experiment.resume")
        cfg_json = cfg.json_dict()
        cfg_json["searchSpace"] = space  # searchSpaceFile read once, here; the store keeps both
        self._launch(cfg_json, cfg.trial_function, ray_address or cfg.local_service().ray_address, resume=False)
        print(f"Creating experiment, Experiment ID: {self.id}")

    def _launch(self, cfg_json: dict, trial_function: Any, address: str | None, resume: bool) -> None:
        from nniray.training_services.local import LocalTrainingService
        service = LocalTrainingService(address)
        self._started_ray = service.connect((cfg_json.get("trainingService") or {}).get("gpuIndices"))
        service.check_fits(cfg_json)
        if trial_function is not None:
            service.ship_by_value(trial_function)
        self._exp_dir.mkdir(parents=True, exist_ok=True)
        self._controller = service.start_controller(self.id, str(self._exp_dir), cfg_json, trial_function, resume)
        self._store = ExperimentStore(self._exp_dir, readonly=True)
        default_registry().update(self.id, experimentName=cfg_json.get("experimentName"), logDir=str(self._exp_dir),
                                  status="RUNNING", pid=os.getpid(), startTime=time.time(),
                                  platform="local", rayAddress=service.address)

    def run(self, port: int | None = None, wait_completion: bool = True, debug: bool = False,
            ray_address: str | None = None) -> bool | None:
        """Start, show progress until the experiment ends, then stop.  True if it ended DONE."""
        if self._controller is None:
            self.start(port, debug, ray_address)
        if not wait_completion:
            return None
        try:
            status = self._watch()
        except KeyboardInterrupt:
            print("Interrupted: stopping the experiment")
            self.stop()
            raise
        self.stop()
        return status == "DONE"

    def _watch(self) -> str:
        from nniray.experiment.progress import watch
        return watch(self)

    def stop(self) -> None:
        """Cancel running trials and release the experiment's actors."""
        if self._controller is None:
            return
        import ray
        print("Stopping experiment, please wait...")
        status = "STOPPED"
        try:
            status = ray.get(self._controller.stop.remote(), timeout=60)
        except Exception as e:  # the controller may already be gone
            print(f"warning: controller did not stop cleanly: {e}")
        try:
            ray.kill(self._controller, no_restart=True)
        except Exception:
            pass
        self._controller = None
        default_registry().update(self.id, status=status, endTime=time.time())
        print("Experiment stopped")

    @classmethod
    def connect(cls, experiment_id: str | int, ray_address: str | None = None) -> "Experiment":
        """Attach to a running experiment (started by another driver or ``nniray create``), by
        id, or by its REST port as NNI's ``Experiment.connect(port)``."""
        from nniray.training_services.local import LocalTrainingService
        reg = default_registry().all()
        if isinstance(experiment_id, int):
            ids = [k for k, v in reg.items() if v.get("port") == experiment_id]
            if not ids:
                raise ExperimentError(f"no experiment is serving on port {experiment_id}")
            experiment_id = ids[0]
        info = reg.get(experiment_id) or {}
        service = LocalTrainingService(ray_address or info.get("rayAddress") or "auto")
        service.connect()
        handle = service.find_controller(experiment_id)
        if handle is None:
            raise ExperimentError(f"experiment {experiment_id} is not running on this Ray cluster")
        exp = cls.__new__(cls)
        Experiment.__init__(exp, "local", id=experiment_id)
        exp._controller = handle
        exp._exp_dir = Path(info.get("logDir") or "")
        import ray
        profile = ray.get(handle.get_profile.remote())
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
        exp._launch(cfg_json, trial_function, ray_address or ts.get("rayAddress"), resume=True)
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
            return "VIEWED"
        if self._controller is not None:
            import ray
            try:
                return ray.get(self._controller.get_status.remote(), timeout=30)["status"]
            except Exception:
                pass
        return self._need_store().get_meta("status", "UNKNOWN")

    def get_errors(self) -> list[str]:
        return list(self._need_store().get_meta("errors", []))

    def get_experiment_profile(self) -> dict:
        if self._controller is not None:
            import ray
            return ray.get(self._controller.get_profile.remote())
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
    def _update(self, field: str, value: Any) -> None:
        if self._controller is None:
            raise ExperimentError("the experiment is not running")
        import ray
        try:
            ray.get(self._controller.update.remote(field, value), timeout=60)
        except ray.exceptions.RayTaskError as e:
            raise ExperimentError(str(e.cause) if getattr(e, "cause", None) else str(e)) from None

    def update_trial_concurrency(self, value: int) -> None:
        self._update("trialConcurrency", int(value))

    def update_max_trial_number(self, value: int) -> None:
        self._update("maxTrialNumber", int(value))

    def update_max_experiment_duration(self, value: str) -> None:
        from nniray.config import parse_duration
        parse_duration(value, "maxExperimentDuration")
        self._update("maxExperimentDuration", value)

    def update_search_space(self, value: dict | str | Path) -> None:
        if not isinstance(value, dict):
            import json
            value = json.loads(Path(value).read_text())
        self._update("searchSpace", value)

    def kill_trial_job(self, trial_job_id: str) -> bool:
        import ray
        if self._controller is None:
            raise ExperimentError("the experiment is not running")
        return ray.get(self._controller.kill_trial.remote(trial_job_id))

    def import_data(self, data: list[dict]) -> int:
        import ray
        if self._controller is None:
            raise ExperimentError("the experiment is not running")
        return ray.get(self._controller.import_data.remote(list(data)))

    @property
    def experiment_dir(self) -> Path | None:
        return self._exp_dir
