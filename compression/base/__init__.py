"""Compression framework internals: config_list, targets, wrappers, compressor/pruner bases."""
from .compressor import Compressor, EvaluatorError, Masks, Pruner
from .config import ConfigError, trans_legacy_config_list, validate_config_list
from .setting import PruningSetting
from .sparsity import SparsityError
from .target_space import PruningTargetSpace, TargetType
from .wrapper import ModuleWrapper

__all__ = ["Compressor", "Pruner", "EvaluatorError", "Masks", "ConfigError", "trans_legacy_config_list",
           "validate_config_list", "PruningSetting", "SparsityError", "PruningTargetSpace", "TargetType",
           "ModuleWrapper"]
