"""``config_list``: validation, legacy translation and module/target selection (NNI 3.0 semantics).

A config is a dict.  *Selection keys* choose modules (``op_types``, ``op_names``, ``op_names_re`` and
their ``exclude_*`` forms); ``target_names`` chooses which tensors of those modules are compressed;
``target_settings`` maps a target name to its setting; any other setting key in the config
(``sparse_ratio``, ``granularity``, ...) is shorthand applied to every selected target.

Rules chosen here (see ``docs/decisions/compression.md``):

* A later config overrides an earlier one for the same (module, target): its whole setting for
  that target replaces the earlier one (v2.5 "applied one by one", so the documented
  ``[{'sparsity': .8, 'op_types': ['default']}, {'sparsity': .6, 'op_names': [...]}]`` works).
* ``op_names_re`` patterns must match the whole module name (``re.fullmatch``).
* An ``op_names`` entry that names no module, or a config that selects no module, is an error.
* Legacy keys are translated per config (any config, not only the first): ``sparsity`` and
  ``sparsity_per_layer`` → ``sparse_ratio``; ``total_sparsity`` → ``sparse_ratio`` plus a
  ``global_group_id`` private to that config; ``max_sparsity_per_layer`` → ``max_sparse_ratio``;
  ``op_partial_names`` → ``op_names_re`` (escaped substring); ``exclude: True`` → its selection is
  excluded from every config.
"""
from __future__ import annotations

import copy
import math
import numbers
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

# A config_list problem is the project's one ConfigError (the message names
# ``config_list[i].key`` and how to fix it).
from nniray.errors import ConfigError

from .layout import out_channel_dim
from .setting import SETTING_KEYS, PruningSetting, is_activation_target

__all__ = [
    "ConfigError", "trans_legacy_config_list", "validate_config_list", "select_modules",
    "resolve_targets", "SELECT_KEYS", "INDEX_KEY", "GRANULARITY_NAMES", "PUBLIC_APPLY_METHODS",
]

SELECT_KEYS = ("op_types", "op_names", "op_names_re", "exclude_op_types", "exclude_op_names",
               "exclude_op_names_re")
STRUCTURE_KEYS = ("target_names", "target_settings")
LEGACY_KEYS = ("sparsity", "sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer",
               "op_partial_names", "exclude")
QUANT_KEYS = ("quant_types", "quant_bits", "quant_dtype", "quant_scheme", "quant_start_step",
              "fuse_names")
GRANULARITY_NAMES = ("default", "in_channel", "out_channel", "per_channel")
PUBLIC_APPLY_METHODS = ("mul", "add")


# --------------------------------------------------------------------------------------------
# legacy translation
# --------------------------------------------------------------------------------------------

INDEX_KEY = "__config_index__"  # the user's index of a config, kept through translation for messages


def trans_legacy_config_list(config_list: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Translate v1/v2 keys into NNI 3.0 keys (a new list; the input is not modified).

    ``exclude: True`` configs disappear: their ``op_types``/``op_names``/``op_names_re`` become
    ``exclude_*`` entries on every other config (NNI 3.0's translator does the same).
    """
    _check_list(config_list)
    out: List[Dict[str, Any]] = []
    global_excludes: Dict[str, List[str]] = {"exclude_op_types": [], "exclude_op_names": [],
                                             "exclude_op_names_re": []}
    for i, raw in enumerate(config_list):
        cfg = copy.deepcopy(dict(raw))
        i = cfg.pop(INDEX_KEY, i)
        where = f"config_list[{i}]"
        if "op_partial_names" in cfg:
            parts = _str_list(cfg.pop("op_partial_names"), f"{where}.op_partial_names")
            cfg["op_names_re"] = list(cfg.get("op_names_re", [])) + [f".*{re.escape(p)}.*" for p in parts]
        if cfg.pop("exclude", False):
            sparse_keys = [k for k in ("sparsity", "sparsity_per_layer", "total_sparsity", "sparse_ratio")
                           if k in cfg]
            if sparse_keys:
                raise ConfigError(f"{where} has exclude=True together with {sparse_keys[0]!r}: an exclude "
                                  f"config only names ops to skip; move {sparse_keys[0]!r} to another config")
            for key, ex_key in (("op_types", "exclude_op_types"), ("op_names", "exclude_op_names"),
                                ("op_names_re", "exclude_op_names_re")):
                if key in cfg:
                    global_excludes[ex_key] += _str_list(cfg[key], f"{where}.{key}")
            if not any(k in cfg for k in ("op_types", "op_names", "op_names_re")):
                raise ConfigError(f"{where} has exclude=True but no op_types/op_names to exclude")
            continue
        ratio_keys = [k for k in ("sparsity", "sparsity_per_layer", "total_sparsity", "sparse_ratio") if k in cfg]
        if len(ratio_keys) > 1:
            raise ConfigError(f"{where} sets both {ratio_keys[0]!r} and {ratio_keys[1]!r}; keep one "
                              f"(3.0 name: 'sparse_ratio', plus 'global_group_id' for a total sparsity)")
        for old in ("sparsity", "sparsity_per_layer"):
            if old in cfg:
                cfg["sparse_ratio"] = cfg.pop(old)
        if "total_sparsity" in cfg:
            cfg["sparse_ratio"] = cfg.pop("total_sparsity")
            # NNI v3.0 wrote 'group_id' here (a bug); a per-config global group is what v2 meant.
            cfg.setdefault("global_group_id", f"_total_sparsity_config_{i}")
        if "max_sparsity_per_layer" in cfg:
            if "max_sparse_ratio" in cfg:
                raise ConfigError(f"{where} sets both 'max_sparsity_per_layer' and 'max_sparse_ratio'; keep "
                                  f"'max_sparse_ratio'")
            value = cfg.pop("max_sparsity_per_layer")
            if isinstance(value, Mapping):
                raise ConfigError(f"{where}.max_sparsity_per_layer as a per-op dict is not supported; write one "
                                  f"config per op with 'max_sparse_ratio'")
            cfg["max_sparse_ratio"] = value
        cfg[INDEX_KEY] = i
        out.append(cfg)
    for cfg in out:
        for ex_key, names in global_excludes.items():
            if names:
                cfg[ex_key] = list(cfg.get(ex_key, [])) + names
    if not out:
        raise ConfigError("config_list has only exclude configs: add a config that selects ops to compress")
    return out


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def _check_list(config_list: Any) -> None:
    if isinstance(config_list, Mapping) or not isinstance(config_list, Sequence) or isinstance(config_list, str):
        raise ConfigError(f"config_list must be a list of dicts, got {type(config_list).__name__}; "
                          f"wrap a single config as [config]")
    if len(config_list) == 0:
        raise ConfigError("config_list is empty: give at least one config, e.g. "
                          "[{'op_types': ['Conv2d'], 'sparse_ratio': 0.5}]")
    for i, cfg in enumerate(config_list):
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"config_list[{i}] must be a dict, got {type(cfg).__name__}")


def _str_list(value: Any, where: str) -> List[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}; write [{value!r}]"
                          if isinstance(value, str) else f"{where} must be a list of strings, got {value!r}")
    for v in value:
        if not isinstance(v, str):
            raise ConfigError(f"{where} must contain only strings, got {v!r}")
    return list(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _validate_setting(setting: Mapping[str, Any], where: str, extra_keys: Iterable[str],
                      internal: bool = False) -> None:
    """Check the setting keys present in ``setting`` (a config or one target_settings entry)."""
    extra = set(extra_keys)
    for key, value in setting.items():
        path = f"{where}.{key}"
        if key in extra:
            continue
        if key == "sparse_ratio" and value is not None:
            v = _number(value, path)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{path} must be in [0, 1), got {value!r}")
        elif key == "max_sparse_ratio" and value is not None:
            v = _number(value, path)
            if not 0.0 < v <= 1.0:
                raise ConfigError(f"{path} must be in (0, 1], got {value!r}")
        elif key == "min_sparse_ratio" and value is not None:
            v = _number(value, path)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{path} must be in [0, 1), got {value!r}")
        elif key == "sparse_threshold" and value is not None:
            _number(value, path)
        elif key in ("global_group_id", "dependency_group_id") and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ConfigError(f"{path} must be an int or a str, got {value!r}")
        elif key == "granularity":
            _validate_granularity(value, path)
        elif key == "apply_method":
            if not internal and value not in PUBLIC_APPLY_METHODS:
                raise ConfigError(f"{path} must be one of {list(PUBLIC_APPLY_METHODS)}, got {value!r}")
        elif key == "align" and value is not None:
            _validate_align(value, path)
        elif key == "internal_metric_block":
            pass
        elif key not in SETTING_KEYS:
            raise ConfigError(f"{path} is not a pruning setting key; known keys: {sorted(SETTING_KEYS)}")
    if setting.get("sparse_ratio") is not None and setting.get("sparse_threshold") is not None:
        raise ConfigError(f"{where} sets both sparse_ratio and sparse_threshold; they are exclusive, keep one")
    lo, hi = setting.get("min_sparse_ratio"), setting.get("max_sparse_ratio")
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"{where}.min_sparse_ratio ({lo}) must not exceed max_sparse_ratio ({hi})")


def _validate_granularity(value: Any, path: str) -> None:
    if isinstance(value, str):
        if value not in GRANULARITY_NAMES:
            raise ConfigError(f"{path} must be one of {list(GRANULARITY_NAMES)} or a list of block sizes, "
                              f"got {value!r}")
        return
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1) for v in value):
        return
    raise ConfigError(f"{path} must be one of {list(GRANULARITY_NAMES)} or a list of positive ints / -1 "
                      f"(block sizes per dimension), got {value!r}")


def _validate_align(value: Any, path: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a dict like {{'module_name': None, 'target_name': 'weight', "
                          f"'dims': [0]}}, got {value!r}")
    unknown = set(value) - {"module_name", "target_name", "dims"}
    if unknown:
        raise ConfigError(f"{path} has unknown key(s) {sorted(unknown)}; use module_name, target_name, dims")
    if value.get("module_name") is not None and not isinstance(value["module_name"], str):
        raise ConfigError(f"{path}.module_name must be a module name or None (this module)")
    if not isinstance(value.get("target_name"), str):
        raise ConfigError(f"{path}.target_name must be a target name such as 'weight'")
    dims = value.get("dims")
    if not isinstance(dims, (list, tuple)) or not dims or not all(isinstance(d, int) for d in dims):
        raise ConfigError(f"{path}.dims must be a non-empty list of ints, got {dims!r}")


def validate_config_list(config_list: Sequence[Mapping[str, Any]],
                         extra_keys: Iterable[str] = ()) -> List[Dict[str, Any]]:
    """Translate legacy keys, then check every key; returns the canonical 3.0 config list.

    ``extra_keys`` are algorithm-specific keys a pruner accepts (e.g. ADMM's ``rho``); they are
    carried into the target settings unchecked.
    """
    extra_keys = tuple(extra_keys)
    configs = trans_legacy_config_list(config_list)
    for cfg in configs:
        i = cfg[INDEX_KEY]
        where = f"config_list[{i}]"
        for key in cfg:
            if key == INDEX_KEY:
                continue
            if key in QUANT_KEYS:
                raise ConfigError(f"{where}.{key} is a quantization key; pruners do not accept it")
            if key not in SELECT_KEYS and key not in STRUCTURE_KEYS and key not in SETTING_KEYS \
                    and key not in extra_keys:
                known = sorted(set(SELECT_KEYS) | set(STRUCTURE_KEYS) | SETTING_KEYS | set(extra_keys))
                hint = _closest(key, known)
                raise ConfigError(f"{where}.{key} is not a known config key" +
                                  (f" (did you mean {hint!r}?)" if hint else "") + f"; known keys: {known}")
        for key in SELECT_KEYS:
            if key in cfg:
                cfg[key] = _str_list(cfg[key], f"{where}.{key}")
                if key.endswith("_re"):
                    for pat in cfg[key]:
                        try:
                            re.compile(pat)
                        except re.error as exc:
                            raise ConfigError(f"{where}.{key} has an invalid regular expression {pat!r}: {exc}")
        if not any(k in cfg for k in ("op_types", "op_names", "op_names_re")):
            raise ConfigError(f"{where} selects nothing: add 'op_types', 'op_names' or 'op_names_re'")
        if "target_names" in cfg:
            cfg["target_names"] = _str_list(cfg["target_names"], f"{where}.target_names")
            if not cfg["target_names"]:
                raise ConfigError(f"{where}.target_names is empty")
        shorthand = {k: v for k, v in cfg.items() if k in SETTING_KEYS or k in extra_keys}
        _validate_setting(shorthand, where, extra_keys)
        if "target_settings" in cfg:
            ts = cfg["target_settings"]
            if not isinstance(ts, Mapping):
                raise ConfigError(f"{where}.target_settings must be a dict {{target_name: setting}}")
            for tname, tset in ts.items():
                if not isinstance(tset, Mapping):
                    raise ConfigError(f"{where}.target_settings.{tname} must be a dict of setting keys")
                _validate_setting(tset, f"{where}.target_settings.{tname}", extra_keys)
    return configs


def _closest(key: str, known: Sequence[str]) -> Optional[str]:
    import difflib
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return match[0] if match else None


# --------------------------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------------------------

def select_modules(model: torch.nn.Module, config: Mapping[str, Any], index: int,
                   default_op_types: Optional[Sequence[str]] = None) -> Dict[str, Tuple[torch.nn.Module, bool]]:
    """Modules a config selects: ``{name: (module, named_exactly)}`` in model order.

    ``named_exactly`` is True when the module was named in ``op_names`` (so missing targets on it
    are an error rather than a silent skip).
    """
    where = f"config_list[{index}]"
    modules = {name: m for name, m in model.named_modules() if name != ""}
    op_types = list(config.get("op_types", []))
    if "default" in op_types:
        op_types.remove("default")
        op_types += list(default_op_types or [])
        if not default_op_types:
            raise ConfigError(f"{where}.op_types has 'default' but this compressor has no default op types; "
                              f"name the types, e.g. ['Conv2d', 'Linear']")
    names = config.get("op_names")
    patterns = [re.compile(p) for p in config.get("op_names_re", [])]
    exact: set = set()
    if names is not None or patterns:
        chosen = []
        for n in names or []:
            if n not in modules:
                raise ConfigError(f"{where}.op_names has {n!r}, which is not a module of the model; "
                                  f"module names come from model.named_modules(), e.g. "
                                  f"{list(modules)[:5]}")
            exact.add(n)
        for name in modules:
            if name in exact or any(p.fullmatch(name) for p in patterns):
                chosen.append(name)
    else:
        chosen = list(modules)
    if op_types:
        chosen = [n for n in chosen if type(modules[n]).__name__ in op_types]
    ex_types = set(config.get("exclude_op_types", []))
    ex_names = set(config.get("exclude_op_names", []))
    ex_patterns = [re.compile(p) for p in config.get("exclude_op_names_re", [])]
    chosen = [n for n in chosen if type(modules[n]).__name__ not in ex_types and n not in ex_names
              and not any(p.fullmatch(n) for p in ex_patterns)]
    return {n: (modules[n], n in exact) for n in chosen}


def _target_exists(module: torch.nn.Module, target_name: str) -> bool:
    if is_activation_target(target_name):
        return True
    value = getattr(module, target_name, None)
    return isinstance(value, torch.Tensor)


def _align_bias_to_output_dim(module: torch.nn.Module, target_name: str, setting: Dict[str, Any]) -> None:
    """The default bias setting aligns with weight dim 0; a ConvTranspose / HF Conv1D keeps its
    output channels in weight dim 1 (``layout.py``), so its bias follows dim 1 (found by isinstance,
    so subclasses are covered too)."""
    align = setting.get("align")
    if target_name == "bias" and isinstance(align, dict) and align.get("module_name") is None \
            and align.get("target_name") == "weight" and list(align.get("dims", [])) == [0]:
        setting["align"] = dict(align, dims=[out_channel_dim(module)])


def resolve_targets(model: torch.nn.Module, configs: Sequence[Mapping[str, Any]],
                    default_op_types: Optional[Sequence[str]] = None,
                    extra_keys: Iterable[str] = ()) -> Dict[str, Dict[str, Tuple[Dict[str, Any], int]]]:
    """``{module_name: {target_name: (setting, config_index)}}`` for validated ``configs``.

    Later configs replace earlier ones per (module, target).
    """
    extra_keys = tuple(extra_keys)
    result: Dict[str, Dict[str, Tuple[Dict[str, Any], int]]] = {}
    for pos, cfg in enumerate(configs):
        i = cfg.get(INDEX_KEY, pos)
        where = f"config_list[{i}]"
        selected = select_modules(model, cfg, i, default_op_types)
        shorthand = {k: copy.deepcopy(v) for k, v in cfg.items() if k in SETTING_KEYS or k in extra_keys}
        explicit_targets = cfg.get("target_names")
        target_settings = cfg.get("target_settings", {})
        matched = 0
        for name, (module, named_exactly) in selected.items():
            mtype = type(module).__name__
            if explicit_targets is not None:
                tnames = list(explicit_targets)
            else:
                tnames = list(PruningSetting.get(mtype).keys())
                for t in target_settings:  # target_settings may add targets beyond the defaults
                    if t not in tnames:
                        tnames.append(t)
            present = [t for t in tnames if _target_exists(module, t)]
            missing = [t for t in tnames if t not in present]
            unknown_ts = [t for t in target_settings if t in missing and (explicit_targets is None or t in tnames)]
            if unknown_ts and (named_exactly or explicit_targets is not None):
                raise ConfigError(f"{where}.target_settings has {unknown_ts[0]!r}, but module {name!r} ({mtype}) has "
                                  f"no such parameter or buffer; use a parameter name or '_input_'/'_output_'")
            if explicit_targets is not None and missing:
                raise ConfigError(f"{where}.target_names has {missing[0]!r}, but module {name!r} ({mtype}) has no "
                                  f"such parameter or buffer; use a parameter name or '_input_'/'_output_'")
            if explicit_targets is None and (not present or (missing and "weight" in missing)):
                if named_exactly:
                    raise ConfigError(f"{where} selects module {name!r} ({mtype}), which has no 'weight'; set "
                                      f"'target_names' (e.g. ['_output_']) to compress its activations")
                continue  # a type/regex match on a container or a weightless module: skip it
            entry = result.setdefault(name, {})
            for t in present:
                setting = PruningSetting.get(mtype, t)
                _align_bias_to_output_dim(module, t, setting)
                setting.update(copy.deepcopy(shorthand))
                if t in target_settings:
                    setting.update(copy.deepcopy(dict(target_settings[t])))
                entry[t] = (setting, i)
            matched += 1
        if matched == 0:
            types = sorted({type(m).__name__ for n, m in model.named_modules() if n})
            raise ConfigError(f"{where} selects no module of the model (after exclusions and skipping modules "
                              f"without a 'weight'); check op_types/op_names against model.named_modules() "
                              f"(module types in this model: {types})")
    return result
