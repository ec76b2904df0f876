"""Random search: every suggestion is an independent draw from the search space's prior.

NNI's baseline tuner (``Random``).  Supports every type and nested choices.  It keeps no
history, so ``receive_trial_result`` and ``import_data`` only validate their input.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._core_base import CoreTuner, sample_flat


class RandomTuner(CoreTuner):
    """Random search.

    Parameters
    ----------
    seed : int, optional
        Same seed ⇒ same suggestion for the same parameter id.  First, as in NNI 3.0's
        ``RandomTuner(seed=None)``.
    optimize_mode : 'maximize' | 'minimize', optional
        Accepted for NNI compatibility (results do not change what Random suggests).
    parallel_optimize, constant_liar_type :
        Accepted for NNI compatibility (its Random shares TPE's classArgs); no effect.
    """

    algorithm_name = "Random"

    def __init__(self, seed: int | None = None, optimize_mode: str | None = None,
                 parallel_optimize: bool = False, constant_liar_type: str = "min") -> None:
        super().__init__(optimize_mode or "maximize", seed)
        # accepted (and validated) because NNI's Random shares TPE's classArgs; no effect
        self._init_liar(parallel_optimize, constant_liar_type)

    def _suggest(self, parameter_id: Any, rng: np.random.Generator) -> dict:
        return sample_flat(self.space, rng)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        # The hot path (hundreds of calls a second): skip the bookkeeping of the base class.
        space = self._require_space()
        return space.format(sample_flat(space, self.rng_for(parameter_id)))

    def _observe(self, parameter_id: Any, flat: dict, reward: float) -> None:
        # Random search does not learn; nothing to keep.
        return None
