"""Request bodies: bounded, strict JSON.

The size limit is enforced before parsing (by the server's middleware); here the text is
checked for nesting depth before ``json.loads`` sees it (a body nested 100,000 deep would
otherwise raise RecursionError), and numbers that are not finite (``1e309``, ``NaN``) are
refused naming the field, before any handler converts them.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")


class BodyError(ValueError):
    """The body is not acceptable JSON; the message names the field and the fix."""


def _depth(raw: bytes) -> int:
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", raw))
    depth = best = 0
    for b in brackets:
        depth += 1 if b in b"[{" else -1
        best = max(best, depth)
    return best


def _reject_constant(name: str) -> Any:
    raise BodyError(f"the request body contains {name}, which is not JSON: send a finite number")


def _first_non_finite(value: Any, path: str) -> str | None:
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return p
        if isinstance(v, dict):
            stack.extend((x, f"{p}.{k}" if p else str(k)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))
    return None


def parse(raw: bytes) -> Any:
    """The decoded body (None when empty)."""
    if not raw.strip():
        return None
    if _depth(raw) > MAX_DEPTH:
        raise BodyError(f"the request body nests deeper than {MAX_DEPTH} levels; send a flatter object")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BodyError(f"the request body is not valid JSON ({e})") from None
    where = _first_non_finite(value, "")
    if where is not None:
        raise BodyError(f"{where or 'the request body'} must be a finite number (it is beyond float range)")
    return value
