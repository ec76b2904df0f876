"""NNI's JSON search-space format <-> mutables.

``to_search_space(space)`` turns a mutable (a :class:`MutableDict` of leaves, or anything whose
``simplify()`` gives leaves) into ``{label: {"_type": ..., "_value": ...}}``;
``from_search_space(json)`` does the reverse (validated by :mod:`nniray.search_space`, the one
parser every tuner uses), nested choices included: an option ``{"_name": "conv", "k": ...}``
becomes a :class:`MutableDict` whose leaves are labelled ``<choice>/<name>/<key>`` like the
tuners' flat keys.
"""
from __future__ import annotations

from typing import Any

from nniray.search_space import Param, parse

from .mutable import Categorical, LabeledMutable, Mutable, MutableDict, Numerical

__all__ = ["to_search_space", "from_search_space"]


def _leaf_json(leaf: LabeledMutable) -> dict:
    if isinstance(leaf, Categorical):
        values = []
        for v in leaf.values:
            if isinstance(v, MutableDict):
                sub = {"_name": v.get("_name")}
                for k, m in v.items():
                    if k != "_name":
                        sub[k] = _leaf_json(m) if isinstance(m, LabeledMutable) else m
                values.append(sub)
            elif isinstance(v, Mutable):
                raise ValueError(f"label {leaf.label!r}: option {v!r} has no JSON search-space form")
            else:
                values.append(v)
        return {"_type": "choice", "_value": values}
    if isinstance(leaf, Numerical):
        q = leaf.quantize
        if leaf.integer:
            return {"_type": "randint", "_value": [int(leaf.low), int(leaf.high)]}
        if leaf.is_normal:
            t = ("q" if q else "") + ("lognormal" if leaf.log_distributed else "normal")
            return {"_type": t, "_value": [leaf.mu, leaf.sigma] + ([q] if q else [])}
        t = ("q" if q else "") + ("loguniform" if leaf.log_distributed else "uniform")
        return {"_type": t, "_value": [leaf.low, leaf.high] + ([q] if q else [])}
    raise ValueError(f"label {leaf.label!r}: {type(leaf).__name__} has no JSON search-space form "
                     f"(choose several with a list-valued choice instead)")


def to_search_space(space: Mutable | dict) -> dict:
    """The JSON search space of a mutable space (top-level leaves; nested options inline)."""
    if isinstance(space, dict) and not isinstance(space, Mutable):
        space = MutableDict(space)
    leaves = list(space.leaf_mutables(lambda m: isinstance(m, LabeledMutable)))
    out: dict[str, Any] = {}
    for leaf in leaves:
        out[leaf.label] = _leaf_json(leaf)
    return out


def _param_to_mutable(p: Param) -> LabeledMutable:
    t, v, label = p.type, p.value, p.key
    if t == "choice":
        if p.children:
            values = []
            for opt, child in zip(v, p.children):
                if child is None:
                    values.append(opt)
                else:
                    d = MutableDict({"_name": opt["_name"]})
                    for cp in child.params:
                        d[cp.name] = _param_to_mutable(cp)
                    values.append(d)
            return Categorical(values, label=label)
        return Categorical(list(v), label=label)
    if t == "randint":
        return Numerical(v[0], v[1], integer=True, label=label)
    q = float(v[2]) if t.startswith("q") else None
    if t in ("uniform", "quniform", "loguniform", "qloguniform"):
        return Numerical(v[0], v[1], log_distributed="log" in t, quantize=q, label=label)
    return Numerical(mu=v[0], sigma=v[1], log_distributed="log" in t, quantize=q, label=label)


def from_search_space(search_space: dict) -> MutableDict:
    """A :class:`MutableDict` ``{name: leaf}`` of a JSON search space; its ``freeze(sample)`` is the
    parameter dict a trial would receive (nested choices as ``{"_name": ..., ...}``)."""
    parsed = parse(search_space)
    return MutableDict({p.name: _param_to_mutable(p) for p in parsed.params})
