"""``ModelSpeedupTensorRT``: NNI's quantization speedup API (``nni.compression.pytorch.quantization_speedup``).

``ModelSpeedupTensorRT(model, input_shape, config=calibration_config, ...)``; ``compress()`` exports
the float model to ONNX, inserts QDQ nodes carrying the calibration config (see :mod:`.onnx_qdq`) and
builds the engine; ``inference(data)`` returns ``(output, latency_seconds)``;
``export_quantized_model(path)`` / ``load_quantized_model(path)`` save and reload the engine.

The engine is ONNX Runtime unless TensorRT is installed (``backend='auto'``), or the one named by
``backend`` ('onnxruntime', 'tensorrt', or any :class:`~.engines.InferenceEngine` instance).
Modules absent from ``config`` run in float (NNI's ``extra_layer_bits=32``); with ``config=None`` the
whole model runs in float.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .engines import (Backend, InferenceEngine, OnnxRuntimeEngine, TensorRTEngine, check_tensorrt_config,
                      tensorrt_available)
from .onnx_qdq import export_onnx, insert_qdq

__all__ = ["BaseModelSpeedup", "ModelSpeedupTensorRT"]


class BaseModelSpeedup:
    """NNI's backend interface: ``compress()``, ``inference(data)``, ``export_quantized_model(path)``."""

    def __init__(self, model: torch.nn.Module, config: Optional[Dict[str, Any]]):
        self.model = model
        self.config = config

    def compress(self) -> None:
        raise NotImplementedError  # abstract

    def inference(self, test_data: Any) -> Tuple[torch.Tensor, float]:
        raise NotImplementedError  # abstract

    def export_quantized_model(self, path: str) -> None:
        raise NotImplementedError  # abstract


class ModelSpeedupTensorRT(BaseModelSpeedup):
    """Parameters follow NNI's; the extra ``backend`` and ``num_threads`` choose and tune the engine.

    ``input_shape`` is the export shape (its batch is NNI's engine batch; here the batch dimension
    stays dynamic).  ``extra_layer_bits`` must be 32 (layers outside the config run in float) and
    ``strict_datatype``/``calibrate_type``/``calib_data_loader``/``calibration_cache`` are accepted
    for compatibility: calibration comes from ``config`` (a quantizer's calibration config).
    """

    def __init__(self, model: torch.nn.Module, input_shape: Sequence[int], config: Optional[Dict[str, Any]] = None,
                 onnx_path: str = "default_model.onnx", extra_layer_bits: int = 32, strict_datatype: bool = True,
                 calibrate_type: Any = None, calib_data_loader: Any = None, calibration_cache: str = "calibration.cache",
                 batchsize: int = 1, input_names: Sequence[str] = ("actual_input_1",),
                 output_names: Sequence[str] = ("output1",),
                 backend: Union[str, Backend, InferenceEngine] = Backend.AUTO, num_threads: Optional[int] = None):
        super().__init__(model, config)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"ModelSpeedupTensorRT: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(input_shape, (list, tuple, torch.Size)) or not all(
                isinstance(d, int) and d > 0 for d in input_shape):
            raise ValueError(f"ModelSpeedupTensorRT: input_shape must be a tuple of positive ints such as "
                             f"(32, 1, 28, 28), got {input_shape!r}")
        if extra_layer_bits != 32:
            raise ValueError(f"ModelSpeedupTensorRT: extra_layer_bits={extra_layer_bits}; layers outside the config run "
                             f"in float (32). Put the layers to quantize in the config instead")
        if calib_data_loader is not None:
            warnings.warn("ModelSpeedupTensorRT: calib_data_loader is ignored; calibrate with PtqQuantizer and pass its "
                          "calibration config as config=", stacklevel=2)
        self.input_shape = tuple(input_shape)
        self.onnx_path = onnx_path
        self.batchsize = batchsize
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.engine = self._choose_engine(backend, num_threads)
        self.onnx_model: Any = None

    # ---- engine ------------------------------------------------------------------------------
    def _choose_engine(self, backend: Any, num_threads: Optional[int]) -> InferenceEngine:
        if isinstance(backend, InferenceEngine):
            return backend
        try:
            backend = Backend(backend)
        except ValueError:
            raise ValueError(f"ModelSpeedupTensorRT: backend must be one of {[b.value for b in Backend]} or an "
                             f"InferenceEngine, got {backend!r}") from None
        if backend is Backend.AUTO:
            backend = Backend.TENSORRT if tensorrt_available() and torch.cuda.is_available() else Backend.ONNXRUNTIME
        if backend is Backend.TENSORRT:
            if self.config:
                check_tensorrt_config(self.config)
            return TensorRTEngine()
        return OnnxRuntimeEngine(num_threads=num_threads)

    @property
    def backend(self) -> str:
        """Which engine runs the model ('onnxruntime', 'tensorrt', ...)."""
        return self.engine.name

    # ---- NNI API -----------------------------------------------------------------------------
    def compress(self) -> None:
        """Export, insert the calibration's QDQ nodes, build the engine (and write ``onnx_path``)."""
        device = next(iter(self.model.parameters()), torch.zeros(())).device
        dummy = torch.randn(self.input_shape, device=device)
        raw = export_onnx(self.model, dummy, self.input_names, self.output_names)
        if self.config:
            self.onnx_model = insert_qdq(raw, self.config)
        else:
            import onnx
            self.onnx_model = onnx.load_from_string(raw)
        if self.onnx_path:
            with open(self.onnx_path, "wb") as f:
                f.write(self.onnx_model.SerializeToString())
        self.engine.build(self.onnx_model, quantized=bool(self.config))

    def inference(self, test_data: Any, reset_context: bool = False) -> Tuple[torch.Tensor, float]:
        """``(output, seconds)`` for one batch; the time covers the engine run only."""
        inputs = test_data if isinstance(test_data, (list, tuple)) else [test_data]
        arrays = [np.ascontiguousarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x),
                                       dtype=np.float32) for x in inputs]
        start = time.perf_counter()
        outputs = self.engine.run(arrays)
        elapsed = time.perf_counter() - start
        tensors: List[torch.Tensor] = [torch.from_numpy(np.asarray(o)) for o in outputs]
        return (tensors[0] if len(tensors) == 1 else tensors), elapsed  # type: ignore[return-value]

    def export_quantized_model(self, path: str) -> None:
        """Save the engine (ONNX Runtime: the QDQ ONNX model; TensorRT: the serialized engine)."""
        self.engine.save(path)

    def load_quantized_model(self, path: str) -> None:
        self.engine.load(path)
