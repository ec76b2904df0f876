"""Quantization ``config_list``: legacy translation, validation and target resolution.

Selection keys (``op_types``, ``op_names``, ``op_names_re``, ``exclude_*``) mean what they mean for
pruners (the same :func:`~nniray.compression.base.config.select_modules` is used).  Setting keys:

* ``quant_dtype``: ``'int2'`` ... ``'int8'`` or ``'uint2'`` ... ``'uint8'`` (also ``int1``/``uint1``
  for BNN-style binary targets); None means ``int8``.
* ``quant_scheme``: ``'affine'`` or ``'symmetric'``; None lets the quantizer choose.
* ``granularity``: ``'default'`` (one scale per tensor), ``'per_channel'`` (weights: dim 0;
  activations: dim 1) or a list of block sizes, one per dimension (``-1`` = the whole dimension).
* ``fuse_names``: ``[('conv1', 'bn1'), ...]``: the first module absorbs the others (see ``fusion``).

Legacy v1/v2 keys are translated per config: ``quant_types`` (``weight``/``input``/``output``) become
``target_names`` (``weight``/``_input_``/``_output_``); ``quant_bits`` (an int or a per-type dict)
and the v2.5 ``quant_dtype`` (``'int'``/``'uint'``) become a 3.0 ``quant_dtype`` per target; the v2.5
schemes ``per_tensor_affine`` ... ``per_channel_symmetric`` become ``quant_scheme`` + ``granularity``.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import torch

from ..base.config import (INDEX_KEY, SELECT_KEYS, ConfigError, _check_list, _closest, _str_list,
                           select_modules)
from ..base.setting import INPUT_PREFIX, OUTPUT_PREFIX, is_activation_target

__all__ = ["QuantDtype", "QuantScheme", "QuantizationSetting", "validate_quant_config_list",
           "resolve_quant_targets", "QUANT_SETTING_KEYS"]

QUANT_SETTING_KEYS = ("quant_dtype", "quant_scheme", "granularity", "apply_method")
_STRUCTURE_KEYS = ("target_names", "target_settings", "fuse_names")
_LEGACY_TYPES = {"weight": "weight", "input": INPUT_PREFIX, "output": OUTPUT_PREFIX}
_LEGACY_SCHEMES = {
    "per_tensor_affine": ("affine", "default"),
    "per_tensor_symmetric": ("symmetric", "default"),
    "per_channel_affine": ("affine", "per_channel"),
    "per_channel_symmetric": ("symmetric", "per_channel"),
}


class QuantScheme(str, Enum):
    AFFINE = "affine"
    SYMMETRIC = "symmetric"


@dataclass(frozen=True)
class QuantDtype:
    """An integer type: ``bits`` wide, signed or not (``int8`` = 8 bits signed)."""
    bits: int
    signed: bool

    @classmethod
    def parse(cls, value: Any, where: str) -> "QuantDtype":
        if value is None:
            return cls(8, True)
        match = re.fullmatch(r"(u?)int(\d+)", value) if isinstance(value, str) else None
        if match is None or not 1 <= int(match.group(2)) <= 8:
            raise ConfigError(f"{where} must be 'int1'...'int8' or 'uint1'...'uint8', got {value!r}")
        return cls(int(match.group(2)), match.group(1) == "")

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.bits}"

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2 ** self.bits - 1


class QuantizationSetting:
    """Registry ``module type name -> default target names`` (NNI 3.0's ``QuantizationSetting``)."""

    _default = {"quant_dtype": None, "quant_scheme": None, "granularity": "default"}
    registry: Dict[str, Dict[str, Dict[str, Any]]] = {}

    @classmethod
    def register(cls, module_type: str, setting: Dict[str, Dict[str, Any]]) -> None:
        cls.registry[module_type] = copy.deepcopy(setting)

    @classmethod
    def get(cls, module: torch.nn.Module) -> Dict[str, Dict[str, Any]]:
        """Default targets of a module: ``_input_``, ``weight`` (if it has one) and ``_output_``."""
        mtype = type(module).__name__
        if mtype in cls.registry:
            return copy.deepcopy(cls.registry[mtype])
        names = [INPUT_PREFIX] + (["weight"] if isinstance(getattr(module, "weight", None), torch.Tensor) else []) \
            + [OUTPUT_PREFIX]
        return {n: dict(cls._default) for n in names}


# --------------------------------------------------------------------------------------------
# legacy translation
# --------------------------------------------------------------------------------------------

def _legacy_value(value: Any, qtype: str, where: str) -> Any:
    """A v2 key may be one value or a dict per quant type."""
    if isinstance(value, Mapping):
        unknown = set(value) - set(_LEGACY_TYPES)
        if unknown:
            raise ConfigError(f"{where} has unknown quant type(s) {sorted(unknown)}; use 'weight', 'input', 'output'")
        return value.get(qtype)
    return value


def _translate_legacy(cfg: Dict[str, Any], where: str) -> Dict[str, Any]:
    qtypes = cfg.pop("quant_types")
    if isinstance(qtypes, str):
        qtypes = [qtypes]
    if not isinstance(qtypes, (list, tuple)) or not qtypes:
        raise ConfigError(f"{where}.quant_types must be a non-empty list of 'weight'/'input'/'output', got {qtypes!r}")
    bits = cfg.pop("quant_bits", None)
    if bits is None:
        raise ConfigError(f"{where} has quant_types but no quant_bits; add e.g. 'quant_bits': 8 "
                          f"(or the 3.0 form 'quant_dtype': 'int8')")
    dtype = cfg.pop("quant_dtype", None)
    scheme = cfg.pop("quant_scheme", None)
    if "target_names" in cfg or "target_settings" in cfg:
        raise ConfigError(f"{where} mixes the legacy quant_types with target_names/target_settings; use one form")
    settings: Dict[str, Dict[str, Any]] = {}
    for qtype in qtypes:
        if qtype not in _LEGACY_TYPES:
            raise ConfigError(f"{where}.quant_types has {qtype!r}; use 'weight', 'input' or 'output'")
        b = _legacy_value(bits, qtype, f"{where}.quant_bits")
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 8:
            raise ConfigError(f"{where}.quant_bits for {qtype!r} must be an int in 1..8, got {b!r}")
        d = _legacy_value(dtype, qtype, f"{where}.quant_dtype") or "uint"  # v2.5 default: uint
        if d not in ("int", "uint"):
            raise ConfigError(f"{where}.quant_dtype (v2.5 form) must be 'int' or 'uint', got {d!r}")
        s = _legacy_value(scheme, qtype, f"{where}.quant_scheme") or "per_tensor_affine"  # v2.5 default
        if s not in _LEGACY_SCHEMES:
            raise ConfigError(f"{where}.quant_scheme (v2.5 form) must be one of {sorted(_LEGACY_SCHEMES)}, got {s!r}")
        q_scheme, granularity = _LEGACY_SCHEMES[s]
        settings[_LEGACY_TYPES[qtype]] = {"quant_dtype": f"{d}{b}", "quant_scheme": q_scheme,
                                          "granularity": granularity}
    cfg["target_names"] = list(settings)
    cfg["target_settings"] = settings
    return cfg


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def _validate_setting(setting: Mapping[str, Any], where: str, extra_keys: Sequence[str]) -> None:
    for key, value in setting.items():
        path = f"{where}.{key}"
        if key in extra_keys:
            continue
        if key == "quant_dtype":
            QuantDtype.parse(value, path)
        elif key == "quant_scheme":
            if value is not None and value not in [s.value for s in QuantScheme]:
                hint = " (v2.5 names go with 'quant_types'/'quant_bits')" if value in _LEGACY_SCHEMES else ""
                raise ConfigError(f"{path} must be 'affine' or 'symmetric', got {value!r}{hint}")
        elif key == "granularity":
            if isinstance(value, str):
                if value not in ("default", "per_channel"):
                    raise ConfigError(f"{path} must be 'default', 'per_channel' or a list of block sizes, got {value!r}")
            elif not (isinstance(value, (list, tuple)) and value and all(
                    isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1) for v in value)):
                raise ConfigError(f"{path} must be 'default', 'per_channel' or a list of positive ints / -1, "
                                  f"got {value!r}")
        elif key == "apply_method":
            if not isinstance(value, str):
                raise ConfigError(f"{path} must be a string, got {value!r}")
        else:
            known = sorted(set(QUANT_SETTING_KEYS) | set(extra_keys))
            raise ConfigError(f"{path} is not a quantization setting key; known keys: {known}")


def validate_quant_config_list(config_list: Sequence[Mapping[str, Any]], extra_keys: Iterable[str] = ()
                               ) -> List[Dict[str, Any]]:
    """Translate legacy keys and check every key; returns the canonical 3.0 list (a new list)."""
    extra_keys = tuple(extra_keys)
    _check_list(config_list)
    out: List[Dict[str, Any]] = []
    excludes: Dict[str, List[str]] = {"exclude_op_types": [], "exclude_op_names": [], "exclude_op_names_re": []}
    for i, raw in enumerate(config_list):
        cfg = copy.deepcopy(dict(raw))
        where = f"config_list[{i}]"
        if "op_partial_names" in cfg:
            parts = _str_list(cfg.pop("op_partial_names"), f"{where}.op_partial_names")
            cfg["op_names_re"] = list(cfg.get("op_names_re", [])) + [f".*{re.escape(p)}.*" for p in parts]
        if cfg.pop("exclude", False):
            for key in ("op_types", "op_names", "op_names_re"):
                if key in cfg:
                    excludes[f"exclude_{key}"] += _str_list(cfg[key], f"{where}.{key}")
            continue
        if "quant_types" in cfg:
            cfg = _translate_legacy(cfg, where)
        elif "quant_bits" in cfg:
            raise ConfigError(f"{where}.quant_bits needs 'quant_types' (legacy form); in the 3.0 form write "
                              f"'quant_dtype': 'int{cfg['quant_bits']}'")
        for key in cfg:
            if key in ("sparse_ratio", "sparsity", "total_sparsity", "sparsity_per_layer"):
                raise ConfigError(f"{where}.{key} is a pruning key; quantizers do not accept it (use a pruner, "
                                  f"then Quantizer.from_compressor(pruner, quant_config_list))")
            if key not in SELECT_KEYS and key not in _STRUCTURE_KEYS and key not in QUANT_SETTING_KEYS \
                    and key not in extra_keys:
                known = sorted(set(SELECT_KEYS) | set(_STRUCTURE_KEYS) | set(QUANT_SETTING_KEYS) | set(extra_keys)
                               | {"quant_types", "quant_bits"})
                hint = _closest(key, known)
                raise ConfigError(f"{where}.{key} is not a quantization config key" +
                                  (f" (did you mean {hint!r}?)" if hint else "") + f"; known keys: {known}")
        for key in SELECT_KEYS:
            if key in cfg:
                cfg[key] = _str_list(cfg[key], f"{where}.{key}")
        if not any(k in cfg for k in ("op_types", "op_names", "op_names_re")):
            raise ConfigError(f"{where} selects nothing: add 'op_types', 'op_names' or 'op_names_re'")
        if "target_names" in cfg:
            cfg["target_names"] = _str_list(cfg["target_names"], f"{where}.target_names")
            if not cfg["target_names"]:
                raise ConfigError(f"{where}.target_names is empty")
        _validate_setting({k: v for k, v in cfg.items() if k in QUANT_SETTING_KEYS or k in extra_keys},
                          where, extra_keys)
        ts = cfg.get("target_settings", {})
        if not isinstance(ts, Mapping):
            raise ConfigError(f"{where}.target_settings must be a dict {{target_name: setting}}")
        for tname, tset in ts.items():
            if not isinstance(tset, Mapping):
                raise ConfigError(f"{where}.target_settings.{tname} must be a dict of setting keys")
            _validate_setting(tset, f"{where}.target_settings.{tname}", extra_keys)
        if "fuse_names" in cfg:
            cfg["fuse_names"] = _check_fuse_names(cfg["fuse_names"], f"{where}.fuse_names")
        cfg[INDEX_KEY] = i
        out.append(cfg)
    if not out:
        raise ConfigError("config_list has only exclude configs: add a config that selects ops to quantize")
    for cfg in out:
        for key, names in excludes.items():
            if names:
                cfg[key] = list(cfg.get(key, [])) + names
    return out


def _check_fuse_names(value: Any, where: str) -> List[Tuple[str, ...]]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list of tuples of module names, e.g. [('conv1', 'bn1')]")
    groups = []
    for j, group in enumerate(value):
        if not isinstance(group, (list, tuple)) or not 2 <= len(group) <= 3 or not all(isinstance(n, str) for n in group):
            raise ConfigError(f"{where}[{j}] must be a tuple of 2 or 3 module names such as ('conv1', 'bn1'), "
                              f"got {group!r}")
        groups.append(tuple(group))
    return groups


# --------------------------------------------------------------------------------------------
# resolution
# --------------------------------------------------------------------------------------------

def resolve_quant_targets(model: torch.nn.Module, configs: Sequence[Mapping[str, Any]],
                          default_op_types: Sequence[str], extra_keys: Iterable[str] = ()
                          ) -> Dict[str, Dict[str, Tuple[Dict[str, Any], int]]]:
    """``{module_name: {target_name: (setting, config_index)}}``; later configs replace earlier ones."""
    extra_keys = tuple(extra_keys)
    result: Dict[str, Dict[str, Tuple[Dict[str, Any], int]]] = {}
    for cfg in configs:
        i = cfg[INDEX_KEY]
        where = f"config_list[{i}]"
        selected = select_modules(model, cfg, i, default_op_types)
        shorthand = {k: copy.deepcopy(v) for k, v in cfg.items() if k in QUANT_SETTING_KEYS or k in extra_keys}
        target_settings = cfg.get("target_settings", {})
        matched = 0
        for name, (module, named_exactly) in selected.items():
            defaults = QuantizationSetting.get(module)
            tnames = list(cfg.get("target_names") or defaults)
            for t in tnames:
                if not is_activation_target(t) and not isinstance(getattr(module, t, None), torch.Tensor):
                    if cfg.get("target_names") is None:
                        continue
                    raise ConfigError(f"{where}.target_names has {t!r}, but module {name!r} "
                                      f"({type(module).__name__}) has no such parameter; use 'weight', "
                                      f"'_input_' or '_output_'")
                setting = dict(defaults.get(t, QuantizationSetting._default))
                setting.update(copy.deepcopy(shorthand))
                setting.update(copy.deepcopy(dict(target_settings.get(t, {}))))
                result.setdefault(name, {})[t] = (setting, i)
            matched += 1
        if matched == 0:
            raise ConfigError(f"{where} selects no module of the model; check op_types/op_names against "
                              f"model.named_modules()")
    return result
