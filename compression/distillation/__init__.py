"""Distillers (NNI 3.0 ``nni.compression.distillation``): plain PyTorch, no Ray."""
from .config import DistilMethod
from .distiller import Adaptive1dLayerwiseDistiller, Distiller, DynamicLayerwiseDistiller, distil_loss

__all__ = ["Distiller", "DynamicLayerwiseDistiller", "Adaptive1dLayerwiseDistiller", "DistilMethod", "distil_loss"]
