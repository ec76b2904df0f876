"""``nniray update searchspace|concurrency|duration|trialnum``: NNI's run-time updates, sent
as ``PUT /experiment?update_type=...`` with the profile's changed ``params`` field."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nniray.storage import default_registry

from . import client, locate
from .console import info
from .errors import CliError, read_json_file

WHAT = {  # subcommand → (update_type, params field, words for messages)
    "searchspace": ("SEARCH_SPACE", "searchSpace", "search space"),
    "concurrency": ("TRIAL_CONCURRENCY", "trialConcurrency", "concurrency"),
    "duration": ("MAX_EXEC_DURATION", "maxExperimentDuration", "duration"),
    "trialnum": ("MAX_TRIAL_NUM", "maxTrialNumber", "maxtrialnum"),
}


def _value(kind: str, args: Any) -> Any:
    if kind == "searchspace":
        path = Path(args.filename)
        space = read_json_file(args.filename)
        if not isinstance(space, dict):
            raise CliError(f"{path} must hold a JSON object (the search space), got {type(space).__name__}")
        from nniray.search_space import SearchSpaceError, parse
        try:
            parse(space)  # the format; the tuner checks what it supports when the daemon applies it
        except SearchSpaceError as e:
            raise CliError(f"{path}: {e}") from None
        return space
    raw = args.value
    if kind == "duration":
        from nniray.config import ConfigError, parse_duration
        try:
            parse_duration(raw, "--value")
        except ConfigError as e:
            raise CliError(str(e)) from None
        return raw
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1 or str(n) != str(raw).strip():
        raise CliError(f"--value must be a positive integer, got {raw!r}")
    return n


def update(args: Any) -> int:
    kind = args.update_kind
    update_type, field, words = WHAT[kind]
    value = _value(kind, args)
    exp_id = locate.resolve(args.id, running_only=True)
    entry = default_registry().get(exp_id) or {}
    if not entry.get("port"):
        raise CliError(f"experiment {exp_id} was started from Python: update it with experiment.update_*()")
    port = int(entry["port"])
    info(f"Updating experiment {words}...")
    prof = client.get(port, "/experiment")
    prof["params"][field] = value
    client.put(port, f"/experiment?update_type={update_type}", prof)
    info(f"Successfully updated {words}!")
    return 0
