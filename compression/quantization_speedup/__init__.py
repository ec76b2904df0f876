"""Real int8 deployment of quantized models (NNI's ``quantization_speedup``).

``ModelSpeedupTensorRT`` keeps NNI's name and interface; ONNX Runtime is the engine that runs here,
TensorRT is used when installed (import-guarded).
"""
from .engines import (Backend, InferenceEngine, OnnxRuntimeEngine, TensorRTEngine, check_tensorrt_config,
                      tensorrt_available)
from .model_speedup import BaseModelSpeedup, ModelSpeedupTensorRT
from .onnx_qdq import DeploymentError, export_onnx, insert_qdq

__all__ = ["ModelSpeedupTensorRT", "BaseModelSpeedup", "Backend", "InferenceEngine", "OnnxRuntimeEngine",
           "TensorRTEngine", "DeploymentError", "export_onnx", "insert_qdq", "check_tensorrt_config",
           "tensorrt_available"]
