"""Pruners (NNI 3.0 names).  Every class loads on first use from the module named below, so the
advanced pruners appear here as soon as their files exist.

Basic: LevelPruner, L1NormPruner, L2NormPruner, FPGMPruner.  Training-aware: SlimPruner, TaylorPruner,
MovementPruner.  Scheduled: LinearPruner, AGPPruner.  Advanced: the activation, ADMM, lottery-ticket,
simulated-annealing, auto-compress, AMC, NetAdapt, sensitivity and transformer-head pruners.
"""
import importlib
from typing import Any, Dict, List

_LAZY: Dict[str, str] = {
    "LevelPruner": "basic_pruner",
    "L1NormPruner": "basic_pruner",
    "L2NormPruner": "basic_pruner",
    "FPGMPruner": "basic_pruner",
    "SlimPruner": "slim_pruner",
    "TaylorPruner": "taylor_pruner",
    "MovementPruner": "movement_pruner",
    "LinearPruner": "scheduled_pruner",
    "AGPPruner": "scheduled_pruner",
    "ActivationAPoZRankPruner": "activation_pruner",
    "ActivationMeanRankPruner": "activation_pruner",
    "ADMMPruner": "admm_pruner",
    "LotteryTicketPruner": "lottery_ticket_pruner",
    "SimulatedAnnealingPruner": "simulated_annealing_pruner",
    "AutoCompressPruner": "auto_compress_pruner",
    "AMCPruner": "amc_pruner",
    "NetAdaptPruner": "net_adapt_pruner",
    "SensitivityPruner": "sensitivity_pruner",
    "TransformerHeadPruner": "transformer_head_pruner",
    # base classes, for users writing their own pruner
    "Pruner": "nniray.compression.base.compressor",
}

__all__: List[str] = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module.startswith("nniray."):
        mod = importlib.import_module(module)
    else:
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module}":
                raise AttributeError(f"{name} is not available yet: {__name__}.{module} does not exist") from None
            raise
    return getattr(mod, name)


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
