"""Real speedup of pruned models (NNI 3.0 ``nni.compression.speedup``).

``ModelSpeedup(model, dummy_input, masks).speedup_model()`` removes the channels that the
masks prune, in place.  Dependency analysis (``ChannelDependency``, ``GroupDependency``,
``auto_set_denpendency_group_ids``) lives in :mod:`.dependency`.
"""
from .mask_updater import MaskUpdater
from .model_speedup import ModelSpeedup, SpeedupVerificationError, UnsupportedOperationError
from .replacers import CannotReplace, ReplaceContext, Replacer
from .tracer import concrete_trace

__all__ = ["ModelSpeedup", "MaskUpdater", "Replacer", "ReplaceContext", "CannotReplace",
           "UnsupportedOperationError", "SpeedupVerificationError", "concrete_trace"]

try:  # dependency analysis is optional at import time while it is being built
    from .dependency import (ChannelDependency, GroupDependency, auto_set_denpendency_group_ids,  # noqa: F401
                             auto_set_dependency_group_ids, not_safe_to_prune)
    __all__ += ["ChannelDependency", "GroupDependency", "auto_set_denpendency_group_ids",
                "auto_set_dependency_group_ids", "not_safe_to_prune"]
except ImportError:  # pragma: no cover
    pass
