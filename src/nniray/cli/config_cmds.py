"""``nniray config convert|show`` and ``nniray ss_gen``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .console import info
from .errors import CliError


def convert(args: Any) -> int:
    """Write the v2 file of an NNI v1 config (``nniray config convert --config v1.yml -o v2.yml``)."""
    from nniray.config import ConfigError
    from nniray.config.legacy import convert_v1, is_v1
    src = Path(args.config)
    try:
        data = yaml.safe_load(src.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CliError(f"{src}: cannot read ({e})") from None
    if not is_v1(data):
        raise CliError(f"{src} is not an NNI v1 config (no authorName, trainingServicePlatform, trial, ... keys)")
    try:
        v2, notes = convert_v1(data)
    except ConfigError as e:
        raise CliError(f"{src}: {e}") from None
    out = Path(args.output) if args.output else src.with_name(src.stem + "_v2.yml")
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    out.write_text(yaml.safe_dump(v2, sort_keys=False))
    for note in notes:
        info(f"note: {note}")
    info(f"Wrote the v2 config to {out}")
    return 0


def show(args: Any) -> int:
    """``nniray config show [id]``: the experiment's config (v2, camelCase YAML)."""
    from . import locate
    exp_id = locate.resolve(args.id, running_only=False)
    store, _ = locate.open_store(exp_id)
    cfg = store.get_meta("config") or {}
    print(f"# experiment {exp_id}")
    print(yaml.safe_dump(cfg, sort_keys=False).rstrip())
    return 0


def ss_gen(args: Any) -> int:
    """``nniray ss_gen``: the search space of the annotations under ``--trial_dir``."""
    from nniray.annotation import AnnotationError, generate_search_space
    trial_dir = Path(args.trial_dir)
    if not trial_dir.is_dir():
        raise CliError(f"--trial_dir: {trial_dir} is not a directory")
    try:
        space = generate_search_space(trial_dir)
    except AnnotationError as e:
        raise CliError(str(e)) from None
    if not space:
        raise CliError(f"no @nni.variable/@nni.function_choice annotation found under {trial_dir}")
    Path(args.file).write_text(json.dumps(space, indent=2))
    info(f"Generated the search space of {len(space)} parameters from {trial_dir} (trial command: "
         f"{args.trial_command!r}) into {args.file}")
    return 0
