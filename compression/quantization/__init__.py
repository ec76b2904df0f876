"""Quantizers (NNI 3.0 ``nni.compression.quantization``): plain PyTorch, no Ray.

``QATQuantizer``, ``PtqQuantizer``, ``LsqQuantizer``, ``LsqPlusQuantizer``, ``DoReFaQuantizer`` and
``BNNQuantizer`` share the :class:`Quantizer` base: ``compress(max_steps, max_epochs)`` returns
``(model, calibration_config)``; ``from_compressor`` chains them with pruners and distillers.
"""
from .bnn_quantizer import BNNQuantizer
from .config import QuantDtype, QuantizationSetting, QuantScheme
from .dorefa_quantizer import DoReFaQuantizer
from .functional import QuantGrad, QuantType
from .lsq_quantizer import LsqPlusQuantizer, LsqQuantizer
from .ptq_quantizer import PtqQuantizer
from .qat_quantizer import QATQuantizer
from .quantizer import Quantizer
from .target import QuantMode

__all__ = ["Quantizer", "QATQuantizer", "PtqQuantizer", "LsqQuantizer", "LsqPlusQuantizer", "DoReFaQuantizer",
           "BNNQuantizer", "QuantGrad", "QuantType", "QuantDtype", "QuantScheme", "QuantMode",
           "QuantizationSetting"]
