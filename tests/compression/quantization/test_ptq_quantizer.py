import pytest
import torch

from nniray.compression import TorchEvaluator
from nniray.compression.base import EvaluatorError
from nniray.compression.quantization import PtqQuantizer
from nniray.compression.quantization.config import QuantDtype, QuantScheme
from nniray.compression.quantization.functional import calculate_qparams, fake_quantize

from quant_helpers import accuracy, evaluator, trained_cnn


def _linear_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


DATA = torch.randn(64, 6) * 2 + 0.5


def _calib_evaluator(data=DATA):
    return TorchEvaluator(evaluating_func=lambda m: m(data).sum().item())


def test_calibration_records_ranges_and_quantizes_exactly():
    model = _linear_model()
    reference = [m for m in model]  # same modules, float until compress
    q = PtqQuantizer(model, [{"op_names": ["0"], "target_names": ["_input_", "weight"],
                              "target_settings": {"_input_": {"quant_dtype": "uint8", "quant_scheme": "affine"},
                                                  "weight": {"quant_dtype": "int8", "granularity": "per_channel"}}}],
                     _calib_evaluator())
    with torch.no_grad():
        float_out = model(DATA)  # observing only before compress: float results
    w = model[0].weight_orig.detach().clone() if hasattr(model[0], "weight_orig") else reference[0].weight.detach()
    _, calib = q.compress()
    entry = calib["0"]["_input_"]
    assert entry["tracked_min"].item() == pytest.approx(DATA.min().item())
    assert entry["tracked_max"].item() == pytest.approx(DATA.max().item())
    scale, zp = calculate_qparams(DATA.min(), DATA.max(), QuantDtype(8, False), QuantScheme.AFFINE)
    assert entry["scale"].item() == pytest.approx(scale.item()) and entry["zero_point"].item() == zp.item()
    wentry = calib["0"]["weight"]
    assert wentry["scale"].shape == (5, 1) and torch.all(wentry["zero_point"] == 0)
    assert torch.allclose(wentry["scale"].flatten(), w.abs().amax(1) / 127.5)
    # the quantized model computes exactly fake-quant(input) @ fake-quant(weight)
    xq = fake_quantize(DATA, scale, zp, QuantDtype(8, False))
    wq = fake_quantize(w, wentry["scale"], wentry["zero_point"], QuantDtype(8, True))
    expected = model[2](model[1](torch.nn.functional.linear(xq, wq, model[0].bias)))
    with torch.no_grad():
        got = model(DATA)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, float_out, atol=1e-5)
    q.unwrap_model()
    with torch.no_grad():
        assert torch.allclose(model(DATA), float_out, atol=1e-6)


def test_int8_ptq_keeps_digits_accuracy():
    model = trained_cnn()
    fp32 = accuracy(model)
    cfg = [{"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight"], "quant_dtype": "int8"},
           {"op_names": ["relu1", "relu2"], "target_names": ["_output_"], "quant_dtype": "uint8"}]
    _, calib = PtqQuantizer(model, cfg, evaluator(model)).compress()
    assert set(calib) == {"conv1", "conv2", "fc", "relu1", "relu2"}
    assert abs(accuracy(model) - fp32) <= 0.01


def test_bias_correction_removes_mean_output_shift():
    torch.manual_seed(3)
    data = torch.rand(256, 32) + 1.0  # a large input mean makes the weight error shift the output
    results = {}
    for corr in (False, True):
        torch.manual_seed(4)
        model = torch.nn.Sequential(torch.nn.Linear(32, 8))
        with torch.no_grad():
            float_out = model(data)
        q = PtqQuantizer(model, [{"op_types": ["Linear"], "target_names": ["weight"], "quant_dtype": "int3"}],
                         _calib_evaluator(data), is_bias_correction=corr)
        q.compress()
        with torch.no_grad():
            results[corr] = (model(data) - float_out).mean(0).abs().max().item()
    assert results[True] < results[False] / 10


def test_needs_evaluating_func():
    with pytest.raises(EvaluatorError, match="evaluating_func"):
        PtqQuantizer(_linear_model(), [{"op_types": ["Linear"]}], TorchEvaluator())


def test_unobserved_module_is_a_clear_error():
    model = _linear_model()
    q = PtqQuantizer(model, [{"op_types": ["Linear"]}], TorchEvaluator(evaluating_func=lambda m: 0.0))
    with pytest.raises(RuntimeError, match="calibration never ran"):
        q.compress()
