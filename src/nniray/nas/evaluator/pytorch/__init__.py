"""``nniray.nas.evaluator.pytorch``: Lightning-based evaluators."""
from .lightning import Classification, DataLoader, Lightning, LightningModule, Regression, Trainer  # noqa: F401

__all__ = ["Classification", "Regression", "Lightning", "LightningModule", "DataLoader", "Trainer"]
