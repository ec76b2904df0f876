"""ModelSpeedupTensorRT on ONNX Runtime (the engine that runs here) and on a stand-in engine."""
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from nniray.compression.quantization import PtqQuantizer
from nniray.compression.quantization_speedup import (DeploymentError, InferenceEngine, ModelSpeedupTensorRT,
                                                     check_tensorrt_config, tensorrt_available)

from quant_helpers import accuracy, digits, evaluator, trained_cnn

CFG = [{"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight"], "quant_dtype": "int8"},
       {"op_names": ["relu1", "relu2"], "target_names": ["_output_"], "quant_dtype": "uint8"}]


@pytest.fixture(scope="module")
def calibrated():
    torch.set_num_threads(1)
    model = trained_cnn()
    q = PtqQuantizer(model, CFG, evaluator(model))
    _, calib = q.compress()
    with torch.no_grad():
        simulated = model.eval()(digits()[2])
    q.unwrap_model()
    return model, calib, simulated


def _inits(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_module_scopes_follow_the_exporter():
    from nniray.compression.quantization_speedup.onnx_qdq import module_scope
    assert module_scope("conv1") == "/conv1"
    assert module_scope("features.0") == "/features/features.0"
    assert module_scope("layers.0.conv1") == "/layers/layers.0/conv1"
    assert module_scope("layers.1.down.0") == "/layers/layers.1/down/down.0"


def test_qdq_nodes_carry_the_calibration_scales(calibrated, tmp_path):
    model, calib, _ = calibrated
    engine = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path=str(tmp_path / "m.onnx"),
                                  backend="onnxruntime", num_threads=1)
    engine.compress()
    saved = onnx.load(str(tmp_path / "m.onnx"))
    inits = _inits(saved)
    qnodes = {n.input[0]: n for n in saved.graph.node if n.op_type == "QuantizeLinear"}
    scale = {t: float(inits[n.input[1]]) for t, n in qnodes.items()}
    # the calibrated tensors: conv1 input, relu1 output (= conv2 input), relu2 output
    assert scale["actual_input_1"] == pytest.approx(float(calib["conv1"]["_input_"]["scale"]))
    assert scale["/relu1/Relu_output_0"] == pytest.approx(float(calib["relu1"]["_output_"]["scale"]))
    # max-pool and flatten only move values: they share relu2's scale (the fc input is not requantized)
    for t in ("/relu2/Relu_output_0", "/pool/MaxPool_output_0", "/Flatten_output_0"):
        assert scale[t] == pytest.approx(float(calib["relu2"]["_output_"]["scale"]))
    assert len(qnodes) == 5
    relu_q = qnodes["/relu2/Relu_output_0"]
    relu_zp = inits[relu_q.input[2]]
    assert float(inits[relu_q.input[1]]) == pytest.approx(float(calib["relu2"]["_output_"]["scale"]))
    assert relu_zp.dtype == np.uint8 and int(relu_zp) == int(calib["relu2"]["_output_"]["zero_point"])
    # weights are int8 per output channel: the fc weight is round(w / (max|w| / 127))
    wq = [v for k, v in inits.items() if k == "fc_Gemm_weight_quantized"][0]
    w = model.fc.weight.detach().numpy()
    assert wq.dtype == np.int8
    assert np.array_equal(wq, np.clip(np.round(w / (np.abs(w).max(1, keepdims=True) / 127)), -127, 127))


def test_int8_engine_runs_integer_kernels_and_matches_the_simulation(calibrated, tmp_path):
    model, calib, simulated = calibrated
    engine = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path="", backend="onnxruntime",
                                  num_threads=1)
    engine.engine.providers = ["CPUExecutionProvider"]
    engine.compress()
    assert engine.backend == "onnxruntime"
    # the session ORT optimised: its QDQ groups became integer convolutions
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(engine.onnx_model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QLinearConv") == 2
    X, yte = digits()[2], digits()[3]
    out, latency = engine.inference(X)
    assert isinstance(out, torch.Tensor) and out.shape == (len(X), 10)
    assert isinstance(latency, float) and latency > 0
    agree = (out.argmax(1) == simulated.argmax(1)).float().mean().item()
    assert agree > 0.98
    int8_acc = (out.argmax(1) == yte).float().mean().item()
    assert abs(int8_acc - accuracy(model)) <= 0.01


def test_float_engine_and_export_load_roundtrip(calibrated, tmp_path):
    model, calib, _ = calibrated
    x = digits()[2][:7]
    fp32 = ModelSpeedupTensorRT(model, (1, 1, 8, 8), onnx_path="", backend="onnxruntime")
    fp32.compress()
    out, _ = fp32.inference(x)
    with torch.no_grad():
        assert torch.allclose(out, model.eval()(x), atol=1e-5)
    int8 = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path="", backend="onnxruntime")
    int8.compress()
    path = str(tmp_path / "int8.onnx")
    int8.export_quantized_model(path)
    again = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path="", backend="onnxruntime")
    again.load_quantized_model(path)
    assert torch.equal(again.inference(x)[0], int8.inference(x)[0])


def test_undeployable_configs_are_clear_errors(calibrated):
    model, calib, _ = calibrated
    four_bit = {"fc": {"weight": dict(calib["fc"]["weight"], quant_dtype="int4")}}
    with pytest.raises(DeploymentError, match=r"calibration_config\['fc'\]\['weight'\] is int4"):
        ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=four_bit, onnx_path="", backend="onnxruntime").compress()
    folded = {"bn1": {"_output_": calib["relu1"]["_output_"]}}
    with pytest.raises(DeploymentError, match="folded away"):
        ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=folded, onnx_path="", backend="onnxruntime").compress()
    q = PtqQuantizer(model, CFG, evaluator(model))
    try:
        with pytest.raises(DeploymentError, match="unwrap_model"):
            ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path="", backend="onnxruntime").compress()
    finally:
        q.unwrap_model()
    with pytest.raises(ValueError, match="backend must be one of"):
        ModelSpeedupTensorRT(model, (1, 1, 8, 8), backend="openvino")
    with pytest.raises(ValueError, match="input_shape"):
        ModelSpeedupTensorRT(model, (1, 0, 8))


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is installed here")
def test_tensorrt_backend_says_how_to_install_it(calibrated):
    model, _, _ = calibrated
    with pytest.raises(ImportError, match="install TensorRT"):
        ModelSpeedupTensorRT(model, (1, 1, 8, 8), backend="tensorrt")
    # auto picks the engine that can run here
    assert ModelSpeedupTensorRT(model, (1, 1, 8, 8)).backend == "onnxruntime"


def test_tensorrt_needs_symmetric_int8(calibrated):
    _, calib, _ = calibrated
    with pytest.raises(DeploymentError, match="symmetric int8"):
        check_tensorrt_config(calib)  # uint8 affine activations
    check_tensorrt_config({"fc": {"weight": calib["fc"]["weight"]}})  # int8 symmetric weights pass


class ReferenceEngine(InferenceEngine):
    """A second engine behind the same interface: ONNX's own reference evaluator (pure Python)."""

    name = "onnx-reference"

    def build(self, onnx_model, quantized):
        from onnx.reference import ReferenceEvaluator
        self.model = onnx_model
        self.quantized = quantized
        runnable = onnx.ModelProto()
        runnable.CopyFrom(onnx_model)
        # the reference evaluator implements QuantizeLinear/DequantizeLinear from opset 19 (same
        # semantics for int8/uint8 as the exported opset 17)
        for opset in runnable.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, 19)
        self.session = ReferenceEvaluator(runnable)

    def run(self, inputs):
        names = [i.name for i in self.model.graph.input]
        return self.session.run(None, dict(zip(names, inputs)))

    def save(self, path):
        onnx.save(self.model, path)

    def load(self, path):
        self.build(onnx.load(path), True)


def test_speedup_drives_any_engine_with_the_same_interface(calibrated, tmp_path):
    model, calib, _ = calibrated
    x = digits()[2][:16]
    ref = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path="", backend=ReferenceEngine())
    ref.compress()
    assert ref.backend == "onnx-reference" and ref.engine.quantized
    ort_engine = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=calib, onnx_path="", backend="onnxruntime")
    ort_engine.compress()
    out_ref, t = ref.inference(x)
    out_ort, _ = ort_engine.inference(x)
    assert t > 0
    # both run the same QDQ graph; integer kernels may round a requantization step differently
    step = float(calib["fc"]["_input_"]["scale"]) * float(model.fc.weight.abs().max()) * 20
    assert torch.allclose(out_ref, out_ort, atol=step)
    path = str(tmp_path / "ref.onnx")
    ref.export_quantized_model(path)
    assert os.path.getsize(path) > 0
    ref.load_quantized_model(path)
    assert torch.allclose(ref.inference(x)[0], out_ref)


def test_conv_output_before_relu_is_covered_by_the_relu_quantization_and_bias_is_int32(calibrated):
    model, calib, _ = calibrated
    conv2_out = dict(calib["relu2"]["_output_"])
    config = {**calib, "conv2": {**calib["conv2"], "_output_": conv2_out}}
    engine = ModelSpeedupTensorRT(model, (1, 1, 8, 8), config=config, onnx_path="", backend="onnxruntime")
    engine.compress()
    graph = engine.onnx_model.graph
    quantized = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    assert "/conv2/Conv_output_0" not in quantized and "/relu2/Relu_output_0" in quantized
    inits = _inits(engine.onnx_model)
    bias = [v for k, v in inits.items() if k == "conv2_Conv_bias_quantized"][0]
    assert bias.dtype == np.int32
    s_in = float(calib["relu1"]["_output_"]["scale"])
    w = model.conv2.weight.detach().numpy()
    s_w = np.abs(w).reshape(w.shape[0], -1).max(1) / 127
    assert np.array_equal(bias, np.round(model.conv2.bias.detach().numpy() / (s_in * s_w)).astype(np.int32))
