"""Built-in and user-registered algorithm names → classes, and building one from a config.

Names and kinds follow ``nnictl algo list``.  Classes are imported lazily so that asking for
TPE never imports torch (DNGO) or tianshou (PPO).  User registrations (``nniray algo
register --meta FILE``) live in ``$NNIRAY_HOME/registered_algorithms.yml``
(default ``~/.nniray``).
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nniray.errors import NniRayError


@dataclass(frozen=True)
class AlgoMeta:
    name: str
    kind: str  # "tuner" | "assessor" | "advisor"
    class_name: str  # "module.path.ClassName"
    source: str = "nniray"  # or "User"
    validator: str | None = None  # "module.path.ValidatorClass"


_S = "nniray.strategies."
BUILTIN: dict[str, AlgoMeta] = {m.name: m for m in [
    AlgoMeta("TPE", "tuner", _S + "tpe.TpeTuner"),
    AlgoMeta("Random", "tuner", _S + "random_tuner.RandomTuner"),
    AlgoMeta("Anneal", "tuner", _S + "anneal.AnnealTuner"),
    AlgoMeta("Evolution", "tuner", _S + "evolution.EvolutionTuner"),
    AlgoMeta("BatchTuner", "tuner", _S + "batch_tuner.BatchTuner"),
    AlgoMeta("GridSearch", "tuner", _S + "gridsearch.GridSearchTuner"),
    AlgoMeta("NetworkMorphism", "tuner", _S + "networkmorphism.NetworkMorphismTuner"),
    AlgoMeta("MetisTuner", "tuner", _S + "metis.MetisTuner"),
    AlgoMeta("GPTuner", "tuner", _S + "gp.GPTuner"),
    AlgoMeta("PBTTuner", "tuner", _S + "pbt.PBTTuner"),
    AlgoMeta("SMAC", "tuner", _S + "smac_tuner.SMACTuner"),
    AlgoMeta("PPOTuner", "tuner", _S + "ppo.PPOTuner"),
    AlgoMeta("DNGOTuner", "tuner", _S + "dngo.DNGOTuner"),
    # NNI 3.0 keeps its hyperopt-based class behind this name (algorithm_name defaults to 'tpe').
    AlgoMeta("TPE_legacy", "tuner", _S + "hyperopt_tuner.HyperoptTuner"),
    AlgoMeta("RegularizedEvolution", "tuner", _S + "regularized_evolution.RegularizedEvolutionTuner"),
    AlgoMeta("Medianstop", "assessor", _S + "medianstop.MedianstopAssessor"),
    AlgoMeta("Curvefitting", "assessor", _S + "curvefitting.CurvefittingAssessor"),
    AlgoMeta("Hyperband", "advisor", _S + "hyperband.Hyperband"),
    AlgoMeta("BOHB", "advisor", _S + "bohb.BOHB"),
]}
# Accepted spellings from older NNI configs.
ALIASES = {"GP": "GPTuner", "Metis": "MetisTuner", "PBT": "PBTTuner", "PPO": "PPOTuner", "DNGO": "DNGOTuner",
           "Batch": "BatchTuner", "GridSearchTuner": "GridSearch", "MedianStop": "Medianstop"}


class AlgorithmError(NniRayError, ValueError):
    """An algorithm config that cannot be built; the message names the field and the fix."""


def nniray_home() -> Path:
    return Path(os.environ.get("NNIRAY_HOME", Path.home() / ".nniray")).expanduser()


def _user_file() -> Path:
    return nniray_home() / "registered_algorithms.yml"


def user_registered() -> dict[str, AlgoMeta]:
    f = _user_file()
    if not f.exists():
        return {}
    data = yaml.safe_load(f.read_text()) or {}
    return {n: AlgoMeta(n, d["kind"], d["class_name"], "User", d.get("validator")) for n, d in data.items()}


def all_algorithms() -> dict[str, AlgoMeta]:
    out = dict(BUILTIN)
    out.update(user_registered())
    return out


def register(meta_file: str | Path) -> AlgoMeta:
    """``nniray algo register --meta FILE``: keys algoType, builtinName, className, classArgsValidator."""
    data = yaml.safe_load(Path(meta_file).read_text()) or {}
    for key in ("algoType", "builtinName", "className"):
        if key not in data:
            raise AlgorithmError(f"{meta_file}: meta file needs {key!r} (keys: algoType, builtinName, className, "
                                 f"optional classArgsValidator)")
    kind = data["algoType"]
    if kind not in ("tuner", "assessor", "advisor"):
        raise AlgorithmError(f"{meta_file}: algoType must be tuner, assessor or advisor, got {kind!r}")
    name = data["builtinName"]
    if name in BUILTIN:
        raise AlgorithmError(f"{name!r} is a built-in algorithm name; choose another builtinName")
    meta = AlgoMeta(name, kind, data["className"], "User", data.get("classArgsValidator"))
    _import_class(meta.class_name, None, f"className of {meta_file}")  # must be importable now
    f = _user_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    cur = yaml.safe_load(f.read_text()) if f.exists() else {}
    cur = cur or {}
    cur[name] = {"kind": kind, "class_name": meta.class_name, "validator": meta.validator}
    f.write_text(yaml.safe_dump(cur))
    return meta


def unregister(name: str) -> None:
    if name in BUILTIN:
        raise AlgorithmError(f"{name!r} is built in and cannot be unregistered")
    f = _user_file()
    cur = (yaml.safe_load(f.read_text()) or {}) if f.exists() else {}
    if name not in cur:
        raise AlgorithmError(f"no user-registered algorithm named {name!r} (see `nniray algo list`)")
    del cur[name]
    f.write_text(yaml.safe_dump(cur))


def lookup(name: str, kind: str | None = None) -> AlgoMeta:
    algos = all_algorithms()
    meta = algos.get(name) or algos.get(ALIASES.get(name, ""))
    if meta is None:
        lowered = {k.lower(): v for k, v in algos.items()}
        meta = lowered.get(name.lower())
    if meta is None:
        names = sorted(n for n, m in algos.items() if kind is None or m.kind == kind)
        hint = difflib.get_close_matches(name, names, n=1)
        raise AlgorithmError(f"unknown {kind or 'algorithm'} name {name!r}"
                             + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; built-in and registered {kind or 'algorithm'}s: {', '.join(names)}")
    if kind is not None and meta.kind != kind:
        raise AlgorithmError(f"{meta.name!r} is an {meta.kind}, not a {kind}; configure it under `{meta.kind}:`")
    return meta


def _import_class(qualname: str, code_directory: str | None, field: str):
    if "." not in qualname:
        raise AlgorithmError(f"{field} must be 'module.ClassName', got {qualname!r}")
    module_name, cls_name = qualname.rsplit(".", 1)
    if code_directory:
        code_directory = str(Path(code_directory).expanduser().resolve())
        if code_directory not in sys.path:
            sys.path.insert(0, code_directory)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        where = f" in codeDirectory {code_directory!r}" if code_directory else ""
        raise AlgorithmError(f"{field}: cannot import module {module_name!r}{where}: {e}") from None
    try:
        return getattr(module, cls_name)
    except AttributeError:
        raise AlgorithmError(f"{field}: module {module_name!r} has no class {cls_name!r}") from None


def check_class_args(cls: type, class_args: dict, label: str) -> None:
    """Refuse classArgs the constructor does not take, before anything runs."""
    sig = inspect.signature(cls.__init__)
    params = list(sig.parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for k in class_args:
        if k not in accepted:
            hint = difflib.get_close_matches(k, accepted, n=1)
            raise AlgorithmError(f"classArgs.{k}: {label} takes no argument {k!r}"
                                 + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                 + f"; it takes: {', '.join(accepted) or 'no arguments'}")
    missing = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in class_args]
    if missing:
        raise AlgorithmError(f"classArgs: {label} needs {', '.join(missing)}")


def resolve_class(kind: str, name: str | None = None, class_name: str | None = None,
                  code_directory: str | None = None) -> tuple[type, str, AlgoMeta | None]:
    """The algorithm class for a config (built-in/registered ``name``, or ``className`` +
    ``codeDirectory``), with the label used in messages."""
    if name and class_name:
        raise AlgorithmError(f"{kind}: give either `name` (built-in or registered) or `className`, not both")
    if name:
        meta = lookup(name, kind)
        return _import_class(meta.class_name, None, f"{kind}.name"), meta.name, meta
    if class_name:
        return _import_class(class_name, code_directory, f"{kind}.className"), class_name, None
    raise AlgorithmError(f"{kind}: give `name` (e.g. TPE) or `className` + `codeDirectory`")


def create_algorithm(kind: str, name: str | None = None, class_args: dict | None = None,
                     class_name: str | None = None, code_directory: str | None = None) -> Any:
    """Build the algorithm object, validating classArgs first (signature and any registered
    ``ClassArgsValidator``)."""
    class_args = dict(class_args or {})
    cls, label, meta = resolve_class(kind, name, class_name, code_directory)
    if meta is not None and meta.validator:
        validator_cls = _import_class(meta.validator, None, "classArgsValidator")
        try:
            validator_cls().validate_class_args(**class_args)
        except Exception as e:  # the validator's own message is what the user needs
            raise AlgorithmError(f"classArgs of {label}: {e}") from None
    check_class_args(cls, class_args, label)
    try:
        return cls(**class_args)
    except (TypeError, ValueError) as e:
        raise AlgorithmError(f"classArgs of {label}: {e}") from None
