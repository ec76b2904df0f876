"""Auto-compression through an HPO experiment (NNI's ``auto_compress``)."""
from .algorithms import ALGORITHMS, AlgorithmKind
from .experiment import (SUPPORTED_TUNERS, AbstractAutoCompressionModule, AutoCompressionExperiment,
                         run_auto_compression_trial)
from .search_space import AutoCompressionSearchSpaceGenerator, parse_params

__all__ = ["AutoCompressionExperiment", "AbstractAutoCompressionModule", "AutoCompressionSearchSpaceGenerator",
           "run_auto_compression_trial", "parse_params", "ALGORITHMS", "AlgorithmKind", "SUPPORTED_TUNERS"]
