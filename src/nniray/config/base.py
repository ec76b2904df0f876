"""Shared machinery for NNI's v2 config: camelCase in YAML, snake_case in Python, clear errors.

Every config class forbids unknown fields, and every error is re-raised as
:class:`ConfigError` naming the camelCase field path (``trainingService.machineList[0].host``)
with a hint for misspellings, instead of pydantic's own report.
"""
from __future__ import annotations

from nniray.errors import NniRayError
import difflib
import math
import re
from pathlib import Path
from typing import Any

import os

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel


# One ConfigError for the whole project, under the NniRayError root.
from nniray.errors import ConfigError  # noqa: E402,F401


class ConfigBase(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        # Validated as a whole when the experiment starts: a Python user sets fields one by one.
        validate_assignment=False,
        arbitrary_types_allowed=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _paths_as_text(cls, data: Any) -> Any:
        # pathlib.Path (any os.PathLike) is accepted wherever a path is, as NNI does.
        if isinstance(data, dict):
            return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in data.items()}
        return data

    def json_dict(self) -> dict:
        """The camelCase dict that YAML and NNI's REST API use (None fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"trial_function"})


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, field: str) -> float | None:
    """``'10m'``, ``'0.5h'``, ``'2d'``, ``'30s'`` or a number of seconds → seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(f"{field}: {value!r} is not a duration; write a number with a unit s, m, h or d, "
                              f"e.g. '10m' or '0.5h'")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds):
        # YAML's .nan/.inf (or NaN over REST) must not silently mean "no limit"
        raise ConfigError(f"{field}: duration must be a finite number of seconds or a string such as '10m', "
                          f"got {value!r}; leave the field out for no limit")
    if seconds <= 0:
        raise ConfigError(f"{field}: duration must be positive, got {value!r}")
    return seconds


def format_duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _loc_to_path(loc: tuple, model: type[BaseModel] | None) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = to_camel(str(part)) if "_" in str(part) else str(part)
            out += ("." if out else "") + name
    return out or "config"


def _known_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def raise_config_error(e: ValidationError, model: type[BaseModel], prefix: str = "") -> None:
    """Turn pydantic's report into one clear ConfigError (the first problem, plus a count)."""
    msgs = []
    errors = e.errors()
    # A union (single training service or a list of them) reports one error per branch: keep
    # the branch the user wrote.
    plain = [err for err in errors if not any(isinstance(p, str) and p.startswith("list[") for p in err.get("loc", ()))]
    errors = plain or errors
    for err in errors:
        loc = err.get("loc", ())
        loc = tuple(p for i, p in enumerate(loc)
                    if not (i > 0 and str(loc[i - 1]).startswith("tagged-union") and isinstance(p, str)))
        # Drop pydantic's union-branch tags (e.g. 'LocalConfig') from the path.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p[:1].isupper() and p.endswith("Config")))
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("function-", "tagged-union"))))
        path = prefix + _loc_to_path(loc, model)
        typ = err.get("type")
        if typ == "extra_forbidden":
            field = str(loc[-1]) if loc else "?"
            hint = difflib.get_close_matches(field, _known_fields(model) + _all_aliases(), n=1)
            msgs.append(f"{path}: unknown field" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                        + "; remove it or fix its spelling")
        elif typ == "missing":
            msgs.append(f"{path}: required field is missing")
        else:
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            given = err.get("input")
            if isinstance(given, (str, int, float, bool)) or given is None:
                msgs.append(f"{path}: {msg} (got {given!r})")
            else:
                msgs.append(f"{path}: {msg}")
    extra = f" (and {len(msgs) - 1} more problem{'s' if len(msgs) > 2 else ''}: {'; '.join(msgs[1:3])})" if len(msgs) > 1 else ""
    raise ConfigError(msgs[0] + extra) from None


_ALIASES: list[str] = []


def _all_aliases() -> list[str]:
    return _ALIASES


def register_aliases(*models: type[BaseModel]) -> None:
    for m in models:
        _ALIASES.extend(_known_fields(m))


def resolve_path(value: str | None, base: Path | None, field: str = "path") -> str | None:
    """``~`` expanded; relative paths against the YAML file's folder (YAML) or the cwd (Python).
    A path the OS cannot take (a NUL byte, a name too long) is a ConfigError naming ``field``."""
    if value is None:
        return None
    text = str(value)
    if "\x00" in text:
        raise ConfigError(f"{field}: {text!r} contains a NUL byte; give a real path")
    try:
        p = Path(text).expanduser()
        if not p.is_absolute():
            p = (base or Path.cwd()) / p
        return str(p.resolve())
    except (OSError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{field}: {text!r} is not a usable path ({e})") from None
