"""NNI's ``nni.algorithms.hpo.hyperband_advisor`` (re-export; the code is in ``nniray.strategies.hyperband``)."""
from nniray.strategies.hyperband import Hyperband  # noqa: F401

__all__ = ["Hyperband"]
