"""``nniray log stdout|stderr``: the daemon's own output (the first place to look when an
experiment fails to start or dies)."""
from __future__ import annotations

from typing import Any

from . import locate
from .errors import CliError


def log(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    d = locate.experiment_dir(exp_id)
    path = d / "log" / f"nniray.{args.log_kind}"
    if args.path:
        print(path)
        return 0
    if not path.exists():
        raise CliError(f"{path} does not exist (the experiment was not started by `nniray create`)")
    if args.head is not None and args.tail is not None:
        raise CliError("--head and --tail cannot be used together")
    lines = path.read_text(errors="replace").splitlines()
    if args.head is not None:
        lines = lines[: args.head]
    elif args.tail is not None:
        lines = lines[-args.tail:] if args.tail > 0 else []
    print("\n".join(lines))
    return 0
