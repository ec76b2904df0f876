"""``ExperimentConfig`` and ``AlgorithmConfig`` (NNI's v2 schema) plus YAML loading."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml
from pydantic import Field, StrictInt, ValidationError, field_validator, model_validator

from .base import (
    ConfigBase, ConfigError, format_duration, parse_duration, raise_config_error, register_aliases, resolve_path,
)
from .training_service import (
    PLATFORM_CLASSES, LocalConfig, SharedStorageConfig, TrainingServiceConfig,
)

LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")
# A sane upper bound on trialConcurrency, checked before anything runs.  The real cap is the
# runtime's (what the Ray cluster can ever run at once); this one refuses values no cluster
# will serve (100000 once made the runner pool reserve that many slots).
MAX_TRIAL_CONCURRENCY = 10_000


class AlgorithmConfig(ConfigBase):
    """``tuner`` / ``assessor`` / ``advisor``: a built-in or registered ``name``, or a user class
    given by ``className`` (+ ``codeDirectory``), with ``classArgs``."""

    name: Optional[str] = None
    class_name: Optional[str] = None
    code_directory: Optional[str] = None
    class_args: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _one_way(self) -> "AlgorithmConfig":
        if self.name and (self.class_name or self.code_directory):
            raise ValueError("give either `name` (built-in or registered) or `className` + `codeDirectory`, not both")
        if not self.name and not self.class_name:
            raise ValueError("give `name` (e.g. TPE) or `className` + `codeDirectory`")
        return self


CustomAlgorithmConfig = AlgorithmConfig


class ExperimentConfig(ConfigBase):
    """NNI's ``ExperimentConfig``.

    ``ExperimentConfig('local')`` (NNI's positional platform) gives a blank config to fill in
    field by field (``config.tuner.name = 'TPE'`` works: the algorithm sections are
    placeholders); it is validated by :meth:`validate`, :meth:`canonical_copy`, :meth:`json`
    or when the experiment starts.  ``ExperimentConfig(**fields)`` validates at once.
    """

    experiment_name: Optional[str] = None
    search_space_file: Optional[str] = None
    search_space: Optional[dict[str, Any]] = None
    trial_command: Optional[str] = None
    # nniray extension: a Python callable (or "module:function") run as a function trial.
    trial_function: Optional[Union[str, Callable]] = Field(None, exclude=True)
    trial_code_directory: str = "."
    # Strict: YAML `true` or '2' are mistakes, not 1 and 2.
    trial_concurrency: StrictInt = Field(ge=1, le=MAX_TRIAL_CONCURRENCY)
    trial_gpu_number: Optional[float] = Field(None, ge=0)
    max_experiment_duration: Optional[Union[str, float]] = None
    max_trial_number: Optional[StrictInt] = Field(None, ge=1)
    max_trial_duration: Optional[Union[str, float]] = None
    nni_manager_ip: Optional[str] = None
    use_annotation: bool = False
    debug: bool = False
    log_level: Optional[str] = None
    experiment_working_directory: str = "~/nni-experiments"
    tuner_gpu_indices: Optional[Union[list[int], str, int]] = None
    tuner: Optional[AlgorithmConfig] = None
    assessor: Optional[AlgorithmConfig] = None
    advisor: Optional[AlgorithmConfig] = None
    training_service: Union[TrainingServiceConfig, list[TrainingServiceConfig]] = Field(default_factory=LocalConfig)
    shared_storage: Optional[SharedStorageConfig] = None

    def __init__(self, training_service_platform: Any = None, /, **kwargs: Any) -> None:
        if training_service_platform is None:
            super().__init__(**kwargs)
            return
        blank = blank_config(training_service_platform, **kwargs)
        for attr in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
            object.__setattr__(self, attr, getattr(blank, attr))

    # -- NNI's config API ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        """``ExperimentConfig.load(path)``: read a YAML file (v2, or NNI's legacy v1 converted)."""
        return load_config(path)

    def canonical_copy(self) -> "ExperimentConfig":
        """A validated copy in canonical form: absolute paths, durations as NNI writes them
        (``'10m'``, ``'90s'``), placeholder algorithm sections removed."""
        cfg = build_config(config_input(self))
        upd = {}
        for name in ("max_experiment_duration", "max_trial_duration"):
            value = getattr(cfg, name)
            if value is not None:
                upd[name] = format_duration(parse_duration(value, name))
        return cfg.model_copy(update=upd)

    def validate(self) -> None:  # type: ignore[override]  # NNI's name; pydantic's is deprecated
        """Raise :class:`ConfigError` naming the field when the config cannot be used (schema,
        and what must exist on this machine before a start: :meth:`check_runnable`)."""
        build_config(config_input(self)).check_runnable()

    def check_runnable(self) -> None:
        """What a start needs beyond the schema, checked before anything runs: the trial code
        directory exists and is a folder (otherwise every trial would fail).  Not part of
        parsing, so that a stored config of an old experiment can still be viewed."""
        code_dir = Path(resolve_path(self.trial_code_directory, None, "trialCodeDirectory"))
        if not code_dir.is_dir():
            what = "is not a directory" if code_dir.exists() else "does not exist"
            raise ConfigError(f"trialCodeDirectory: {code_dir} {what}; give the folder the trial command runs in "
                              f"(relative paths are relative to the config file)")

    def json(self) -> dict:  # type: ignore[override]
        """NNI's canonical camelCase dict (what YAML and the REST API use).  pydantic's JSON
        string is :meth:`model_dump_json`."""
        return self.canonical_copy().json_dict()

    @field_validator("max_experiment_duration", "max_trial_duration")
    @classmethod
    def _duration(cls, v: Any, info: Any) -> Any:
        if v is None:
            return None
        try:
            parse_duration(v, "")
        except ConfigError as e:
            raise ValueError(str(e).removeprefix(": ")) from None
        return v

    @field_validator("trial_command")
    @classmethod
    def _command(cls, v: Any) -> Any:
        if v is not None and not str(v).strip():
            raise ValueError("trialCommand is empty: give the command that runs one trial, e.g. 'python3 trial.py'")
        return v

    @field_validator("search_space")
    @classmethod
    def _space_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key in v:
                if not isinstance(key, str) or not key.strip():
                    raise ValueError(f"search-space keys must be non-empty names, got {key!r}")
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: Any) -> Any:
        if v is not None and v not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return v

    @model_validator(mode="after")
    def _exclusions(self) -> "ExperimentConfig":
        if self.search_space is not None and self.search_space_file is not None:
            raise ValueError("searchSpace and searchSpaceFile are mutually exclusive; keep one")
        if self.use_annotation and (self.search_space is not None or self.search_space_file is not None):
            raise ValueError("useAnnotation generates the search space; remove searchSpace/searchSpaceFile")
        if self.trial_command is None and self.trial_function is None:
            raise ValueError("trialCommand is required (or, from Python, trial_function)")
        if self.trial_command is not None and self.trial_function is not None:
            raise ValueError("trialCommand and trial_function are mutually exclusive; keep one")
        if self.advisor is not None and (self.tuner is not None or self.assessor is not None):
            raise ValueError("an advisor replaces tuner and assessor: remove `tuner`/`assessor` or `advisor`")
        if self.advisor is None and self.tuner is None:
            raise ValueError("give a `tuner` (e.g. {name: TPE}) or an `advisor`")
        return self

    # -- derived values used by the runtime ------------------------------------------------------
    @property
    def max_experiment_seconds(self) -> float | None:
        return parse_duration(self.max_experiment_duration, "maxExperimentDuration")

    @property
    def max_trial_seconds(self) -> float | None:
        return parse_duration(self.max_trial_duration, "maxTrialDuration")

    @property
    def platforms(self) -> list[str]:
        ts = self.training_service if isinstance(self.training_service, list) else [self.training_service]
        return [t.platform for t in ts]

    def local_service(self) -> LocalConfig:
        ts = self.training_service
        if isinstance(ts, list) or ts.platform != "local":
            raise ConfigError(f"trainingService.platform: {self.platforms} is not implemented yet in nniray; "
                              f"use platform 'local' (it runs on any Ray cluster: set trainingService.rayAddress)")
        return ts

    def load_search_space(self) -> dict:
        """The search space dict (inline or from ``searchSpaceFile``); ``{}`` for annotation-less
        custom tuners that take none."""
        if self.search_space is not None:
            return self.search_space
        if self.search_space_file is not None:
            p = Path(self.search_space_file)
            if not p.exists():
                raise ConfigError(f"searchSpaceFile: {p} does not exist")
            try:
                return json.loads(p.read_text())
            except json.JSONDecodeError as e:
                raise ConfigError(f"searchSpaceFile: {p} is not valid JSON ({e})") from None
        raise ConfigError("searchSpace is not set: give `searchSpace` (use {} for an empty one) or `searchSpaceFile`")

    def canonical(self, base: Path | None = None) -> "ExperimentConfig":
        """Paths made absolute (relative to ``base``: the YAML's folder, or the cwd)."""
        upd: dict[str, Any] = {
            "trial_code_directory": resolve_path(self.trial_code_directory, base, "trialCodeDirectory"),
            "experiment_working_directory": resolve_path(self.experiment_working_directory, base,
                                                         "experimentWorkingDirectory"),
        }
        if self.search_space_file:
            upd["search_space_file"] = resolve_path(self.search_space_file, base, "searchSpaceFile")
        if self.use_annotation:
            upd.update(_expand_annotations(upd["trial_code_directory"]))
        new = self.model_copy(update=upd)
        for kind in ("tuner", "assessor", "advisor"):
            algo = getattr(new, kind)
            if algo is not None and algo.code_directory:
                setattr(new, kind, algo.model_copy(update={
                    "code_directory": resolve_path(algo.code_directory, base, f"{kind}.codeDirectory")}))
        return new


def _expand_annotations(code_dir: str) -> dict:
    """``useAnnotation: true``: the trials run from a temporary copy of the code with the
    annotations rewritten, and the search space is generated from them (NNI's behaviour).  The
    canonical config then names that copy and its space (``useAnnotation`` false), so it reads
    back as is on resume/view."""
    from nniray.annotation import AnnotationError, expand_annotations
    if not Path(code_dir).is_dir():
        raise ConfigError(f"trialCodeDirectory: {code_dir} is not a directory; useAnnotation rewrites the trial code "
                          f"found there")
    try:
        copy, space = expand_annotations(code_dir)
    except AnnotationError as e:
        raise ConfigError(f"useAnnotation: {e}") from None
    except OSError as e:
        raise ConfigError(f"useAnnotation: cannot copy trialCodeDirectory {code_dir} ({e})") from None
    return {"trial_code_directory": copy, "search_space": space, "use_annotation": False}


def _blank_algorithm() -> AlgorithmConfig:
    return AlgorithmConfig.model_construct(name=None, class_name=None, code_directory=None, class_args={})


def blank_config(platform: Any, **fields: Any) -> ExperimentConfig:
    """An unvalidated config for ``platform`` (a name, or a list of names) with placeholder
    tuner/assessor/advisor sections, to be filled in field by field (NNI's
    ``ExperimentConfig('local')``)."""
    def service(name: Any):
        if name not in PLATFORM_CLASSES:
            raise ConfigError(f"trainingService.platform: unknown platform {name!r}; "
                              f"known: {', '.join(sorted(PLATFORM_CLASSES))}")
        return PLATFORM_CLASSES[name].model_construct(platform=name)

    ts = [service(p) for p in platform] if isinstance(platform, (list, tuple)) else service(platform)
    by_alias = {(f.alias or n): n for n, f in ExperimentConfig.model_fields.items()}
    values = {"training_service": ts, "tuner": _blank_algorithm(), "assessor": _blank_algorithm(),
              "advisor": _blank_algorithm()}
    for k, v in fields.items():
        name = by_alias.get(k, k)
        if name not in ExperimentConfig.model_fields:
            raise ConfigError(f"{k}: unknown field of ExperimentConfig")
        values[name] = v
    return ExperimentConfig.model_construct(**values)


def _section(v: Any) -> Any:
    if isinstance(v, ConfigBase):
        out = {}
        for k in type(v).model_fields:
            x = getattr(v, k, None)
            if x is not None:
                out[k] = _section(x)
        return out
    if isinstance(v, list):
        return [_section(x) for x in v]
    return v


def config_input(cfg: ExperimentConfig) -> dict:
    """A (possibly blank-built, field-by-field) config as a snake_case dict for
    :func:`build_config`, placeholder algorithm sections dropped."""
    out: dict[str, Any] = {}
    for name in ExperimentConfig.model_fields:
        v = getattr(cfg, name, None)
        if v is None:
            continue
        if isinstance(v, AlgorithmConfig) and not (getattr(v, "name", None) or getattr(v, "class_name", None)):
            continue
        out[name] = _section(v)
    return out


register_aliases(ExperimentConfig, AlgorithmConfig, *set(PLATFORM_CLASSES.values()), SharedStorageConfig)


def build_config(data: dict, base: Path | None = None) -> ExperimentConfig:
    """Validate a camelCase (YAML) or snake_case (Python) dict into a canonical ExperimentConfig."""
    if not isinstance(data, dict):
        raise ConfigError(f"experiment config must be a mapping of fields, got {type(data).__name__}")
    ts = data.get("trainingService", data.get("training_service"))
    for item in (ts if isinstance(ts, list) else [ts]):
        if isinstance(item, dict):
            plat = item.get("platform")
            if plat is None:
                raise ConfigError("trainingService.platform: required field is missing (e.g. local)")
            if not isinstance(plat, str) or plat not in PLATFORM_CLASSES:
                raise ConfigError(f"trainingService.platform: unknown platform {plat!r}; "
                                  f"known: {', '.join(sorted(PLATFORM_CLASSES))}")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise_config_error(e, ExperimentConfig)
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        # A validator that met an input nobody anticipated: still the config's fault, and said so.
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"config: cannot read this config ({type(e).__name__}: {e}); check the field types "
                          f"against the v2 schema") from None
    return cfg.canonical(base)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read an experiment YAML; relative paths resolve against the YAML file's folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    from .legacy import convert_v1, is_v1
    if is_v1(data):
        data, notes = convert_v1(data)
        try:
            cfg = build_config(data, base=path.parent.resolve())
        except ConfigError as e:
            raise ConfigError(f"{e} (in {path}, converted from NNI's legacy v1 config; `nniray config convert` "
                              f"writes the v2 file to fix)") from None
        # NNI runs v1 files too; say so once, with the way to get the v2 file
        print(f"NOTICE: {path} is NNI's legacy v1 config; it was converted to v2"
              + (f" ({'; '.join(notes)})" if notes else "")
              + f". `nniray config convert --config {path} --output NEW.yml` writes the v2 file.", file=sys.stderr)
        return cfg
    return build_config(data or {}, base=path.parent.resolve())
