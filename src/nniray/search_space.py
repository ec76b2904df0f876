"""NNI's search-space format: validation, parsing and sampling, in one place.

Every tuner validates and samples through this module, so the ten types mean the same
thing everywhere (formulas from NNI's SearchSpaceSpec):

=============  ===================  ==================================================
``_type``      ``_value``           value
=============  ===================  ==================================================
choice         [opt, ...]           one option; a dict option with ``_name`` is a nested
                                    sub-space, active only when chosen
randint        [lower, upper]       integer in [lower, upper)  (upper exclusive)
uniform        [low, high]          uniform(low, high); low == high is a constant
quniform       [low, high, q]       clip(round(uniform(low, high) / q) * q, low, high)
loguniform     [low, high]          exp(uniform(log low, log high)), 0 < low < high
qloguniform    [low, high, q]       clip(round(loguniform(low, high) / q) * q, low, high)
normal         [mu, sigma]          normal(mu, sigma), sigma > 0
qnormal        [mu, sigma, q]       round(normal(mu, sigma) / q) * q
lognormal      [mu, sigma]          exp(normal(mu, sigma))
qlognormal     [mu, sigma, q]       round(exp(normal(mu, sigma)) / q) * q
=============  ===================  ==================================================

A nested choice yields the chosen dict with its own sub-parameters sampled, e.g.
``{"layer": {"_name": "conv", "kernel": 3}}``, exactly as NNI's built-in tuners do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nniray.errors import NniRayError

ALL_TYPES = (
    "choice", "randint", "uniform", "quniform", "loguniform", "qloguniform",
    "normal", "qnormal", "lognormal", "qlognormal",
)
NUMERIC_BOUNDED = ("randint", "uniform", "quniform", "loguniform", "qloguniform")
NORMAL_TYPES = ("normal", "qnormal", "lognormal", "qlognormal")


class SearchSpaceError(NniRayError, ValueError):
    """A search space that cannot be used; the message names the key path and the fix."""


def _path_str(path: Sequence[str]) -> str:
    return "/".join(str(p) for p in path) if path else "<root>"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(float(x))


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its name, key path (outer choice names included) and definition."""

    name: str
    path: tuple
    type: str
    value: tuple
    # For ``choice``: the nested sub-spaces, one per option (None for a plain option).
    children: tuple = ()

    # -- plain properties ------------------------------------------------------------------
    @cached_property
    def key(self) -> str:
        """Unique flat key, e.g. ``layer/conv/kernel`` for a nested parameter (computed once:
        it is on the hot path of every suggestion)."""
        return _path_str(self.path)

    @property
    def is_nested_choice(self) -> bool:
        return self.type == "choice" and any(c is not None for c in self.children)

    @property
    def q(self) -> float | None:
        return float(self.value[2]) if self.type.startswith("q") else None

    @property
    def is_log(self) -> bool:
        return self.type in ("loguniform", "qloguniform", "lognormal", "qlognormal")

    @property
    def is_numeric_choice(self) -> bool:
        return self.type == "choice" and all(_is_number(v) for v in self.value)

    @property
    def low(self) -> float:
        """Lower bound in value space (bounded types only)."""
        return float(self.value[0])

    @property
    def high(self) -> float:
        """Upper bound in value space; for randint the largest value it can take."""
        return float(self.value[1]) - 1 if self.type == "randint" else float(self.value[1])

    # -- sampling --------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Any:
        """Sample from the prior (nested choices return the option index, see SearchSpace)."""
        t, v = self.type, self.value
        if t == "choice":
            return int(rng.integers(len(v)))
        if t == "randint":
            return int(rng.integers(int(v[0]), int(v[1])))
        if t in ("uniform", "quniform"):
            return self.quantize(rng.uniform(v[0], v[1]))
        if t in ("loguniform", "qloguniform"):
            return self.quantize(math.exp(rng.uniform(math.log(v[0]), math.log(v[1]))))
        if t in ("normal", "qnormal"):
            return self.quantize(rng.normal(v[0], v[1]))
        if t in ("lognormal", "qlognormal"):
            # Clamped so that an extreme draw gives a huge finite number, not OverflowError.
            return self.quantize(math.exp(min(rng.normal(v[0], v[1]), 709.0)))
        raise AssertionError(t)

    def quantize(self, x: float) -> float:
        """Apply the q rounding and (for bounded types) the clip of NNI's formulas."""
        x = float(x)
        if self.q:
            x = round(x / self.q) * self.q
        if self.type in ("uniform", "quniform", "loguniform", "qloguniform"):
            x = min(max(x, float(self.value[0])), float(self.value[1]))
        return x

    # -- unit-cube encoding for model-based tuners (bounded numeric types) -----------------
    def to_unit(self, x: float) -> float:
        """Map a value to [0, 1] (log scale for log types); randint/choice use index order."""
        lo, hi = self._internal_bounds()
        xv = math.log(x) if self.is_log else float(x)
        if self.type == "choice":
            xv = float(x)
        return 0.5 if hi == lo else (xv - lo) / (hi - lo)

    def from_unit(self, u: float) -> Any:
        """Inverse of :meth:`to_unit`, rounded and clipped to a legal value."""
        lo, hi = self._internal_bounds()
        u = min(max(float(u), 0.0), 1.0)
        xv = lo + u * (hi - lo)
        if self.type == "choice":
            return int(min(len(self.value) - 1, max(0, round(xv))))
        if self.type == "randint":
            return int(min(int(self.value[1]) - 1, max(int(self.value[0]), round(xv))))
        return self.quantize(math.exp(xv) if self.is_log else xv)

    def _internal_bounds(self) -> tuple[float, float]:
        t, v = self.type, self.value
        if t == "choice":
            return 0.0, float(len(v) - 1)
        if t == "randint":
            return float(v[0]), float(v[1]) - 1
        if t in ("uniform", "quniform"):
            return float(v[0]), float(v[1])
        if t in ("loguniform", "qloguniform"):
            return math.log(v[0]), math.log(v[1])
        raise SearchSpaceError(f"{self.key!r}: type {t!r} has no bounded encoding")


@dataclass
class SearchSpace:
    """A parsed, validated search space: a tree of :class:`Param` (nested choices branch)."""

    raw: dict
    params: list[Param] = field(default_factory=list)

    # -- views -------------------------------------------------------------------------------
    def walk(self) -> Iterable[Param]:
        """Every parameter in the tree, nested ones included, parents first."""
        stack = list(reversed(self.params))
        while stack:
            p = stack.pop()
            yield p
            for child in reversed(p.children):
                if child is not None:
                    stack.extend(reversed(child.params))

    @property
    def is_nested(self) -> bool:
        return any(p.is_nested_choice for p in self.params)

    @property
    def types(self) -> set[str]:
        return {p.type for p in self.walk()}

    def __len__(self) -> int:
        return len(self.params)

    # -- sampling and formatting ---------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        """One random configuration, formatted as NNI hands it to a trial."""
        return self.format({p.key: p.sample(rng) for p in self.walk()})

    def format(self, assignment: Mapping[str, Any]) -> dict:
        """Turn ``{flat key: internal value}`` into the trial's parameter dict.

        Choices are given by option index.  Parameters of inactive branches are ignored;
        a missing active parameter is an error.
        """
        return _format_level(self.params, assignment)

    def flatten(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of :meth:`format`: a trial's parameter dict → ``{flat key: internal value}``
        for the active parameters (choices as option index).  Used by ``import_data``."""
        out: dict[str, Any] = {}
        _flatten_level(self.params, params, out)
        return out


def _format_level(params: Sequence[Param], assignment: Mapping[str, Any]) -> dict:
    out: dict[str, Any] = {}
    for p in params:
        if p.key not in assignment:
            raise KeyError(f"no value for search-space key {p.key!r}")
        x = assignment[p.key]
        if p.type == "choice":
            idx = int(x)
            option = p.value[idx]
            child = p.children[idx] if p.children else None
            if child is not None:
                sub = {"_name": option["_name"]}
                sub.update(_format_level(child.params, assignment))
                out[p.name] = sub
            else:
                out[p.name] = option
        elif p.type == "randint":
            out[p.name] = int(x)
        else:
            out[p.name] = float(x)
    return out


def _flatten_level(params: Sequence[Param], values: Mapping[str, Any], out: dict) -> None:
    for p in params:
        if p.name not in values:
            raise SearchSpaceError(f"parameter {p.key!r} missing from {dict(values)!r}")
        v = values[p.name]
        if p.type == "choice":
            idx = _choice_index(p, v)
            out[p.key] = idx
            child = p.children[idx] if p.children else None
            if child is not None:
                _flatten_level(child.params, v, out)
        elif p.type == "randint":
            out[p.key] = int(v)
        else:
            out[p.key] = float(v)


def _choice_index(p: Param, v: Any) -> int:
    for i, opt in enumerate(p.value):
        if isinstance(opt, dict) and isinstance(v, dict):
            if opt.get("_name") == v.get("_name"):
                return i
        elif opt == v and (type(opt) is type(v) or (_is_number(opt) and _is_number(v))):
            return i
    raise SearchSpaceError(f"{p.key!r}: value {v!r} is not one of the choices {list(p.value)!r}")


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

def parse(space: Any, path: tuple = ()) -> SearchSpace:
    """Validate ``space`` and return the parsed :class:`SearchSpace`.

    Raises :class:`SearchSpaceError` naming the key path and what to change.
    """
    if space is None:
        raise SearchSpaceError("search space is not set: give `searchSpace` (use {} for an empty one) or `searchSpaceFile`")
    if not isinstance(space, Mapping):
        raise SearchSpaceError(f"{_path_str(path)}: a search space must be a JSON object of "
                               f"name -> {{\"_type\": ..., \"_value\": ...}}, got {type(space).__name__}")
    params = []
    for name, spec in space.items():
        if name == "_name" and path:
            continue
        if not isinstance(name, str) or not name.strip():
            raise SearchSpaceError(f"{_path_str(path)}: a search-space key must be a non-empty name, got {name!r}")
        params.append(_parse_param(str(name), spec, path + (str(name),)))
    return SearchSpace(raw=dict(space), params=params)


def _parse_param(name: str, spec: Any, path: tuple) -> Param:
    where = _path_str(path)
    if not isinstance(spec, Mapping) or "_type" not in spec or "_value" not in spec:
        raise SearchSpaceError(f"{where!r}: each entry must be {{\"_type\": TYPE, \"_value\": VALUE}}, got {spec!r}")
    extra = set(spec) - {"_type", "_value"}
    if extra:
        raise SearchSpaceError(f"{where!r}: unknown key(s) {sorted(extra)}; an entry has only \"_type\" and \"_value\"")
    t, v = spec["_type"], spec["_value"]
    if t not in ALL_TYPES:
        hint = _closest(str(t), ALL_TYPES)
        raise SearchSpaceError(f"{where!r}: unknown _type {t!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                               + f"; valid types: {', '.join(ALL_TYPES)}")
    if not isinstance(v, (list, tuple)):
        raise SearchSpaceError(f"{where!r}: \"_value\" for {t} must be a list, got {v!r}")
    v = list(v)
    if t == "choice":
        if not v:
            raise SearchSpaceError(f"{where!r}: \"_value\" for choice needs at least one option")
        children = []
        for i, opt in enumerate(v):
            if isinstance(opt, Mapping):
                if "_name" not in opt:
                    raise SearchSpaceError(f"{where!r}: option {i} is a nested search space and needs a \"_name\" key "
                                           f"that names it, e.g. {{\"_name\": \"option{i}\", ...}}")
                children.append(parse({k: s for k, s in opt.items() if k != "_name"}, path + (str(opt["_name"]),)))
            else:
                children.append(None)
        names = [o["_name"] for o in v if isinstance(o, Mapping)]
        if len(names) != len(set(names)):
            raise SearchSpaceError(f"{where!r}: nested choice options must have distinct \"_name\" values, got {names}")
        return Param(name, path, t, tuple(v), tuple(children) if any(c is not None for c in children) else ())
    n = 3 if t.startswith("q") else 2
    if len(v) != n or not all(_is_number(x) for x in v):
        form = {"randint": "[lower, upper]", "uniform": "[low, high]", "loguniform": "[low, high]",
                "quniform": "[low, high, q]", "qloguniform": "[low, high, q]", "normal": "[mu, sigma]",
                "lognormal": "[mu, sigma]", "qnormal": "[mu, sigma, q]", "qlognormal": "[mu, sigma, q]"}[t]
        raise SearchSpaceError(f"{where!r}: \"_value\" for {t} must be {n} finite numbers {form}, got {spec['_value']!r}")
    a, b = float(v[0]), float(v[1])
    if t == "randint":
        if int(a) != a or int(b) != b:
            raise SearchSpaceError(f"{where!r}: \"_value\" for randint must be integers [lower, upper), got {v!r}")
        if not a < b:
            raise SearchSpaceError(f"{where!r}: \"_value\" for randint needs lower < upper (upper is exclusive), got {v!r}")
        if b == a + 1:  # one integer (randint [10, 11]): a constant every tuner handles
            return Param(name, path, "choice", (int(a),))
    elif t in ("uniform", "quniform", "loguniform", "qloguniform") and a == b and (a > 0 or not t.endswith("loguniform")):
        # NNI accepts a degenerate range (uniform [x, x], loguniform [1, 1], qloguniform
        # [2, 2, 1]): a constant.  It becomes a one-option choice, which every tuner handles.
        if n == 3 and not float(v[2]) > 0:
            raise SearchSpaceError(f"{where!r}: \"_value\" for {t} needs q > 0, got {v!r}")
        return Param(name, path, "choice", (float(a),))
    elif t in ("uniform", "quniform"):
        if not a < b:
            raise SearchSpaceError(f"{where!r}: \"_value\" for {t} needs low < high, got {v!r}")
    elif t in ("loguniform", "qloguniform"):
        if not 0 < a < b:
            raise SearchSpaceError(f"{where!r}: \"_value\" for {t} needs 0 < low < high, got {v!r}")
    else:
        if not b > 0:
            raise SearchSpaceError(f"{where!r}: \"_value\" for {t} needs sigma > 0, got {v!r}")
    if n == 3 and not float(v[2]) > 0:
        raise SearchSpaceError(f"{where!r}: \"_value\" for {t} needs q > 0, got {v!r}")
    return Param(name, path, t, tuple(v))


def _closest(word: str, options: Iterable[str]) -> str | None:
    import difflib
    m = difflib.get_close_matches(word, list(options), n=1)
    return m[0] if m else None


def check_supported(space: SearchSpace, algorithm: str, supported: Iterable[str] | None,
                    nested: bool = True, numeric_choice_only: bool = False) -> None:
    """Refuse, by name, a type or nesting the algorithm cannot handle (NNI's support matrix)."""
    supported = set(supported) if supported is not None else set(ALL_TYPES)
    for p in space.walk():
        if p.type not in supported:
            raise SearchSpaceError(f"{algorithm} does not support _type {p.type!r} (key {p.key!r}); "
                                   f"it supports: {', '.join(t for t in ALL_TYPES if t in supported)}")
        if p.is_nested_choice and not nested:
            raise SearchSpaceError(f"{algorithm} does not support nested choice (key {p.key!r}); "
                                   f"use TPE, Random, Anneal, Evolution or GridSearch")
        if numeric_choice_only and p.type == "choice" and not p.is_numeric_choice:
            raise SearchSpaceError(f"{algorithm} supports only numerical choice options (key {p.key!r} has "
                                   f"{list(p.value)!r})")


# Keys the runtime or an algorithm adds to a trial's parameters (not search-space keys).
EXTRA_PARAMETER_KEYS = ("TRIAL_BUDGET", "load_checkpoint_dir", "save_checkpoint_dir")


def check_import_records(space_json: Any, records: Sequence[Mapping], where: str = "import-data") -> None:
    """Refuse ``import-data`` records whose parameters this space cannot have produced (one
    check for the CLI, the REST route and ``Experiment.import_data``).  A space in a tuner's own
    format (BatchTuner, NAS) is not parsed here: that tuner judges its records itself."""
    if not space_json:
        return
    try:
        parsed = parse(space_json)
    except SearchSpaceError:
        return
    for i, rec in enumerate(records):
        params = rec.get("parameter", rec.get("parameters")) if isinstance(rec, Mapping) else None
        try:
            check_parameters(parsed, params, f"{where}[{i}].parameter")
        except SearchSpaceError as e:
            raise SearchSpaceError(f"{e}; fix or drop that record") from None


def check_parameters(space: SearchSpace, params: Any, where: str = "parameter") -> None:
    """Refuse a parameter dict that this space cannot have produced: an unknown key, a missing
    one, a choice that is not an option, or a value outside its range (``import-data``)."""
    if not isinstance(params, Mapping):
        raise SearchSpaceError(f"{where} must be an object of hyperparameter values, got {type(params).__name__}")
    _check_level(space.params, params, where)


def _check_level(params: Sequence[Param], values: Mapping[str, Any], where: str) -> None:
    names = {p.name for p in params}
    unknown = [k for k in values if k not in names and k not in EXTRA_PARAMETER_KEYS and k != "_name"]
    if unknown:
        raise SearchSpaceError(f"{where}: {', '.join(map(repr, unknown))} not in the search space "
                               f"(its keys: {', '.join(sorted(names))})")
    for p in params:
        at = f"{where}.{p.name}"
        if p.name not in values:
            raise SearchSpaceError(f"{at}: missing (every search-space key needs a value)")
        v = values[p.name]
        if p.type == "choice":
            idx = _choice_index(p, v)
            child = p.children[idx] if p.children else None
            if child is not None:
                _check_level(child.params, v, at)
            continue
        if not _is_number(v):
            raise SearchSpaceError(f"{at}: {v!r} is not a finite number ({p.type} {list(p.value)})")
        x = float(v)
        lo, hi = float(p.value[0]), float(p.value[1])
        if p.type == "randint" and not (int(x) == x and lo <= x < hi):
            raise SearchSpaceError(f"{at}: {v!r} is not an integer in [{p.value[0]}, {p.value[1]})")
        if p.type in ("uniform", "quniform", "loguniform", "qloguniform") and not lo <= x <= hi:
            raise SearchSpaceError(f"{at}: {v!r} is outside [{p.value[0]}, {p.value[1]}]")
        if p.type in ("lognormal", "qlognormal") and x < 0:
            raise SearchSpaceError(f"{at}: {v!r} is negative; {p.type} values are >= 0")
