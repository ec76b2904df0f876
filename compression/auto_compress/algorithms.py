"""Compression algorithms an auto-compression trial can run, by the names NNI used."""
from __future__ import annotations

from enum import Enum
from typing import Any, Dict, Tuple

__all__ = ["AlgorithmKind", "ALGORITHMS", "load_algorithm"]


class AlgorithmKind(str, Enum):
    ONE_SHOT_PRUNER = "one_shot_pruner"
    TRAINING_PRUNER = "training_pruner"
    POST_TRAINING_QUANTIZER = "post_training_quantizer"
    TRAINING_QUANTIZER = "training_quantizer"


#: name -> (module, class, kind); v2 names (l1, l2, level, fpgm, taylorfo, slim, qat, dorefa, bnn) kept
ALGORITHMS: Dict[str, Tuple[str, str, AlgorithmKind]] = {
    "level": ("nniray.compression.pruning", "LevelPruner", AlgorithmKind.ONE_SHOT_PRUNER),
    "l1": ("nniray.compression.pruning", "L1NormPruner", AlgorithmKind.ONE_SHOT_PRUNER),
    "l2": ("nniray.compression.pruning", "L2NormPruner", AlgorithmKind.ONE_SHOT_PRUNER),
    "fpgm": ("nniray.compression.pruning", "FPGMPruner", AlgorithmKind.ONE_SHOT_PRUNER),
    "taylorfo": ("nniray.compression.pruning", "TaylorPruner", AlgorithmKind.TRAINING_PRUNER),
    "slim": ("nniray.compression.pruning", "SlimPruner", AlgorithmKind.TRAINING_PRUNER),
    "ptq": ("nniray.compression.quantization", "PtqQuantizer", AlgorithmKind.POST_TRAINING_QUANTIZER),
    "qat": ("nniray.compression.quantization", "QATQuantizer", AlgorithmKind.TRAINING_QUANTIZER),
    "lsq": ("nniray.compression.quantization", "LsqQuantizer", AlgorithmKind.TRAINING_QUANTIZER),
    "dorefa": ("nniray.compression.quantization", "DoReFaQuantizer", AlgorithmKind.TRAINING_QUANTIZER),
    "bnn": ("nniray.compression.quantization", "BNNQuantizer", AlgorithmKind.TRAINING_QUANTIZER),
}


def load_algorithm(name: str) -> Tuple[Any, AlgorithmKind]:
    import importlib
    module, cls, kind = ALGORITHMS[name]
    return getattr(importlib.import_module(module), cls), kind
