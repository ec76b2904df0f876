"""Inference engines behind :class:`~.ModelSpeedupTensorRT`: one small interface, two backends.

``InferenceEngine``: ``build(onnx_model, quantized)``, ``run(inputs) -> outputs`` (NumPy in and out),
``save(path)``, ``load(path)``.  ``OnnxRuntimeEngine`` runs here (CPU, or CUDA when ONNX Runtime has
it); ``TensorRTEngine`` needs TensorRT (and CUDA) and says so when it is missing.  Both consume the
same QDQ ONNX model (TensorRT's explicit quantization), so TensorRT needs symmetric int8 scales.
"""
from __future__ import annotations

import abc
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .onnx_qdq import DeploymentError

__all__ = ["Backend", "InferenceEngine", "OnnxRuntimeEngine", "TensorRTEngine", "check_tensorrt_config",
           "tensorrt_available"]


class Backend(str, Enum):
    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"


class InferenceEngine(abc.ABC):
    """What ModelSpeedupTensorRT needs from an engine."""

    name = "engine"

    @abc.abstractmethod
    def build(self, onnx_model: Any, quantized: bool) -> None:
        """Prepare to run ``onnx_model`` (a ``ModelProto``)."""

    @abc.abstractmethod
    def run(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Outputs for ``inputs`` (in the model's input order)."""

    @abc.abstractmethod
    def save(self, path: str) -> None:
        """Write what ``load`` reads back."""

    @abc.abstractmethod
    def load(self, path: str) -> None:
        """Read a saved engine."""


class OnnxRuntimeEngine(InferenceEngine):
    """ONNX Runtime session with all graph optimisations (QDQ -> QLinearConv/QGemm fusion)."""

    name = "onnxruntime"

    def __init__(self, num_threads: Optional[int] = None, providers: Optional[Sequence[str]] = None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:  # pragma: no cover - onnxruntime is in the lock file
            raise ImportError("the ONNX Runtime backend needs onnxruntime: pip install 'nniray[onnx]'") from exc
        self.num_threads = num_threads
        self.providers = list(providers) if providers else None
        self._model_bytes: Optional[bytes] = None
        self._session: Any = None

    def build(self, onnx_model: Any, quantized: bool) -> None:
        self._model_bytes = onnx_model.SerializeToString()
        self._session = self._new_session(self._model_bytes)

    def _new_session(self, data: bytes) -> Any:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.num_threads is not None:
            so.intra_op_num_threads = int(self.num_threads)
            so.inter_op_num_threads = 1
        providers = self.providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                                       if p in ort.get_available_providers()]
        return ort.InferenceSession(data, so, providers=providers)

    @property
    def session(self) -> Any:
        if self._session is None:
            raise RuntimeError("the engine is not built: call compress() (or load_quantized_model) first")
        return self._session

    def run(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        names = [i.name for i in self.session.get_inputs()]
        return self.session.run(None, dict(zip(names, inputs)))

    def save(self, path: str) -> None:
        if self._model_bytes is None:
            raise RuntimeError("nothing to save: call compress() first")
        with open(path, "wb") as f:
            f.write(self._model_bytes)

    def load(self, path: str) -> None:
        with open(path, "rb") as f:
            self._model_bytes = f.read()
        self._session = self._new_session(self._model_bytes)


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ImportError("the TensorRT backend needs TensorRT >= 8 and CUDA: install TensorRT from NVIDIA "
                          "(https://developer.nvidia.com/tensorrt; `pip install tensorrt` fetches it from NVIDIA's "
                          "index), or use backend='onnxruntime'") from exc
    return trt


def check_tensorrt_config(calibration_config: Dict[str, Dict[str, Dict[str, Any]]]) -> None:
    """TensorRT's explicit quantization takes symmetric int8 only (zero point 0)."""
    import torch
    for module_name, targets in calibration_config.items():
        for target, entry in targets.items():
            zp = entry.get("zero_point")
            dtype = entry.get("quant_dtype", "int8")
            if dtype != "int8" or (zp is not None and bool(torch.any(torch.as_tensor(zp) != 0))):
                raise DeploymentError(f"calibration_config[{module_name!r}][{target!r}] is {dtype} with zero point "
                                      f"{torch.as_tensor(zp).flatten()[:3].tolist() if zp is not None else None}; "
                                      f"TensorRT runs symmetric int8 only: quantize with quant_dtype='int8', "
                                      f"quant_scheme='symmetric'")


class TensorRTEngine(InferenceEngine):
    """A TensorRT engine built from the QDQ ONNX model (explicit int8 precision)."""

    name = "tensorrt"

    def __init__(self, workspace_bytes: int = 1 << 30):
        self.trt = _import_tensorrt()
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("the TensorRT backend needs a CUDA GPU; none is visible. Use backend='onnxruntime'")
        self.workspace_bytes = workspace_bytes
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self._engine: Any = None
        self._serialized: Optional[bytes] = None

    def build(self, onnx_model: Any, quantized: bool) -> None:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_model.SerializeToString()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise DeploymentError(f"TensorRT could not parse the ONNX model: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        if quantized:
            config.set_flag(trt.BuilderFlag.INT8)
        # dynamic batch: one optimisation profile from 1 to the exported batch x 64
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = list(tensor.shape)
            rest = [d if d > 0 else 1 for d in shape[1:]]
            profile.set_shape(tensor.name, [1] + rest, [32] + rest, [256] + rest)
        config.add_optimization_profile(profile)
        self._serialized = bytes(builder.build_serialized_network(network, config))
        self._deserialize()

    def _deserialize(self) -> None:
        runtime = self.trt.Runtime(self.logger)
        self._engine = runtime.deserialize_cuda_engine(self._serialized)
        self._context = self._engine.create_execution_context()

    def run(self, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        import torch
        trt = self.trt
        engine, context = self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        in_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        buffers = {}
        for n, x in zip(in_names, inputs):
            t = torch.from_numpy(np.ascontiguousarray(x)).cuda()
            context.set_input_shape(n, tuple(t.shape))
            buffers[n] = t
        outs = []
        for n in names:
            if n in buffers:
                continue
            t = torch.empty(tuple(context.get_tensor_shape(n)), dtype=torch.float32, device="cuda")
            buffers[n] = t
            outs.append(n)
        for n, t in buffers.items():
            context.set_tensor_address(n, t.data_ptr())
        stream = torch.cuda.current_stream()
        context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return [buffers[n].cpu().numpy() for n in outs]

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self._serialized)

    def load(self, path: str) -> None:
        with open(path, "rb") as f:
            self._serialized = f.read()
        self._deserialize()
