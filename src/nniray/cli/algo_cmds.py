"""``nniray algo register|list|show|unregister``: user algorithms as if built in."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .console import console, info, table
from .errors import CliError


def _registry():
    from nniray.strategies import registry
    return registry


def register(args: Any) -> int:
    reg = _registry()
    if not Path(args.meta).exists():
        raise CliError(f"--meta: {args.meta} does not exist")
    try:
        meta = reg.register(args.meta)
    except reg.AlgorithmError as e:
        raise CliError(str(e)) from None
    info(f"Registered {meta.kind} {meta.name!r} ({meta.class_name})")
    return 0


def list_(args: Any) -> int:
    rows = []
    for m in _registry().all_algorithms().values():
        module, cls = m.class_name.rsplit(".", 1)
        rows.append((m.name, m.kind, m.source, cls, module))
    console().print(table(None, ("Name", "Type", "Source", "Class Name", "Module Name"), rows))
    return 0


def show(args: Any) -> int:
    reg = _registry()
    m = reg.all_algorithms().get(args.name)
    if m is None:
        raise CliError(f"no algorithm named {args.name!r} (see `nniray algo list`)")
    print(f"builtinName: {m.name}\nalgoType: {m.kind}\nclassName: {m.class_name}\nsource: {m.source}"
          + (f"\nclassArgsValidator: {m.validator}" if m.validator else ""))
    return 0


def unregister(args: Any) -> int:
    reg = _registry()
    try:
        reg.unregister(args.name)
    except reg.AlgorithmError as e:
        raise CliError(str(e)) from None
    info(f"Unregistered {args.name!r}")
    return 0
