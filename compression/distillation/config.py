"""Distillation ``config_list``: selection keys as for pruners, ``target_names`` (default
``['_output_']``; inputs and outputs only), and per-target ``lambda`` (loss scale, default 1),
``link`` (teacher module name(s), or ``'auto'``: the same name in the teacher) and
``apply_method`` (``'mse'`` for hidden states, ``'kl'`` for logits)."""
from __future__ import annotations

import copy
import numbers
from enum import Enum
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch

from ..base.config import INDEX_KEY, SELECT_KEYS, ConfigError, _check_list, _closest, _str_list, select_modules
from ..base.setting import is_activation_target

__all__ = ["DistilMethod", "validate_distil_config_list", "resolve_distil_targets"]

_SETTING_KEYS = ("lambda", "link", "apply_method")


class DistilMethod(str, Enum):
    MSE = "mse"
    KL = "kl"


def _check_setting(setting: Mapping[str, Any], where: str) -> None:
    for key, value in setting.items():
        path = f"{where}.{key}"
        if key == "lambda":
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
                raise ConfigError(f"{path} must be a number >= 0, got {value!r}")
        elif key == "link":
            if not (value == "auto" or isinstance(value, str) or
                    (isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value))):
                raise ConfigError(f"{path} must be 'auto', a teacher module name or a list of names, got {value!r}")
        elif key == "apply_method":
            if value not in [m.value for m in DistilMethod]:
                raise ConfigError(f"{path} must be 'mse' or 'kl', got {value!r}")
        else:
            raise ConfigError(f"{path} is not a distillation setting key; known keys: {list(_SETTING_KEYS)}")


def validate_distil_config_list(config_list: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    _check_list(config_list)
    out = []
    for i, raw in enumerate(config_list):
        cfg = copy.deepcopy(dict(raw))
        where = f"config_list[{i}]"
        known = set(SELECT_KEYS) | {"target_names", "target_settings"} | set(_SETTING_KEYS)
        for key in cfg:
            if key not in known:
                hint = _closest(key, sorted(known))
                raise ConfigError(f"{where}.{key} is not a distillation config key" +
                                  (f" (did you mean {hint!r}?)" if hint else "") + f"; known keys: {sorted(known)}")
        for key in SELECT_KEYS:
            if key in cfg:
                cfg[key] = _str_list(cfg[key], f"{where}.{key}")
        if not any(k in cfg for k in ("op_types", "op_names", "op_names_re")):
            raise ConfigError(f"{where} selects nothing: add 'op_types', 'op_names' or 'op_names_re'")
        names = _str_list(cfg.get("target_names", ["_output_"]), f"{where}.target_names")
        for t in names:
            if not is_activation_target(t):
                raise ConfigError(f"{where}.target_names has {t!r}; distillation compares inputs/outputs: use "
                                  f"'_output_' (or '_input_', '_output_<i>')")
        cfg["target_names"] = names
        _check_setting({k: v for k, v in cfg.items() if k in _SETTING_KEYS}, where)
        for t, s in (cfg.get("target_settings") or {}).items():
            if not isinstance(s, Mapping):
                raise ConfigError(f"{where}.target_settings.{t} must be a dict")
            _check_setting(s, f"{where}.target_settings.{t}")
        cfg[INDEX_KEY] = i
        out.append(cfg)
    return out


def resolve_distil_targets(model: torch.nn.Module, teacher: torch.nn.Module, configs: Sequence[Mapping[str, Any]]
                           ) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """``{(module, target): {'lambda', 'link': [teacher names], 'apply_method', 'config_index'}}``."""
    teacher_modules = dict(teacher.named_modules())
    result: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for cfg in configs:
        i = cfg[INDEX_KEY]
        where = f"config_list[{i}]"
        selected = select_modules(model, cfg, i, None)
        if not selected:
            raise ConfigError(f"{where} selects no module of the student model")
        shorthand = {k: cfg[k] for k in _SETTING_KEYS if k in cfg}
        for name in selected:
            for t in cfg["target_names"]:
                setting = {"lambda": 1.0, "link": "auto", "apply_method": "mse"}
                setting.update(shorthand)
                setting.update((cfg.get("target_settings") or {}).get(t, {}))
                link = setting["link"]
                links = [name] if link == "auto" else ([link] if isinstance(link, str) else list(link))
                for ln in links:
                    if ln not in teacher_modules:
                        raise ConfigError(f"{where}: {name}.{t} links to teacher module {ln!r}, which the teacher "
                                          f"does not have" + (" (link='auto' needs the same module names in teacher "
                                                              "and student)" if link == "auto" else ""))
                result[(name, t)] = {"lambda": float(setting["lambda"]), "link": links,
                                     "apply_method": DistilMethod(setting["apply_method"]), "config_index": i}
    return result
