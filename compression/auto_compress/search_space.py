"""``AutoCompressionSearchSpaceGenerator`` (NNI v2.x auto-compression): a nested search space over
compression algorithms and their config_list hyper-parameters.

``g.add_config('l1', [{'sparse_ratio': {'_type': 'uniform', '_value': [0.2, 0.8]}, 'op_types': ['Conv2d']}])``
adds one option of the top-level ``algorithm_name`` choice; every config value written as a
search spec (``{'_type': ..., '_value': ...}``) is tuned, the rest is kept as given.
``dumps()`` returns the search space for an experiment; :func:`parse_params` turns a tuner's
parameters back into ``(algorithm_name, config_list)``.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from .algorithms import ALGORITHMS

__all__ = ["AutoCompressionSearchSpaceGenerator", "parse_params"]

_TEMPLATE = "_config_list_template"
_KEY_SEP = "::"


def _is_spec(value: Any) -> bool:
    return isinstance(value, Mapping) and "_type" in value and "_value" in value


class AutoCompressionSearchSpaceGenerator:
    def __init__(self) -> None:
        self.algorithm_choice_list: List[Dict[str, Any]] = []

    def add_config(self, algorithm_name: str, config_list: Sequence[Mapping[str, Any]]) -> "AutoCompressionSearchSpaceGenerator":
        if algorithm_name not in ALGORITHMS:
            raise ValueError(f"add_config: unknown algorithm {algorithm_name!r}; choose from {sorted(ALGORITHMS)}")
        if any(o["_name"] == algorithm_name for o in self.algorithm_choice_list):
            raise ValueError(f"add_config: {algorithm_name!r} was added already; give all its configs in one call")
        if not isinstance(config_list, (list, tuple)) or not config_list:
            raise ValueError("add_config: config_list must be a non-empty list of dicts")
        option: Dict[str, Any] = {"_name": algorithm_name}
        template: List[Dict[str, Any]] = []
        for i, cfg in enumerate(config_list):
            fixed = {}
            for key, value in cfg.items():
                if _is_spec(value):
                    option[f"config_list{_KEY_SEP}{i}{_KEY_SEP}{key}"] = copy.deepcopy(dict(value))
                else:
                    fixed[key] = copy.deepcopy(value)
            template.append(fixed)
        # the fixed part travels as a one-value choice: tuners pass it through unchanged
        option[_TEMPLATE] = {"_type": "choice", "_value": [json.dumps(template)]}
        self.algorithm_choice_list.append(option)
        return self

    def dumps(self) -> Dict[str, Any]:
        if not self.algorithm_choice_list:
            raise ValueError("no algorithm added: call add_config(algorithm_name, config_list) first")
        return {"algorithm_name": {"_type": "choice", "_value": copy.deepcopy(self.algorithm_choice_list)}}


def parse_params(params: Mapping[str, Any]) -> Tuple[str, List[Dict[str, Any]]]:
    """``(algorithm_name, config_list)`` from one trial's parameters."""
    chosen = params.get("algorithm_name")
    if not isinstance(chosen, Mapping) or "_name" not in chosen or _TEMPLATE not in chosen:
        raise ValueError(f"these parameters were not drawn from an AutoCompressionSearchSpaceGenerator space: "
                         f"{dict(params)!r}")
    config_list = json.loads(chosen[_TEMPLATE])
    for key, value in chosen.items():
        if key.startswith(f"config_list{_KEY_SEP}"):
            _, index, name = key.split(_KEY_SEP, 2)
            config_list[int(index)][name] = value
    return str(chosen["_name"]), config_list
