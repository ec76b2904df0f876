import copy

import pytest
import torch

from nniray.compression import TorchEvaluator
from nniray.compression.quantization import PtqQuantizer, QATQuantizer
from nniray.compression.quantization.fusion import Absorbed

from quant_helpers import DigitsCNN, accuracy, digits, evaluator, trained_cnn


def test_quant_start_step_delays_quantization():
    model = trained_cnn(epochs=1)
    q = QATQuantizer(model, [{"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight"]}],
                     evaluator(model, lr=1e-4), quant_start_step=3)
    x = digits()[2][:16]
    q.compress(max_steps=2)
    assert q.step_count == 2
    wrapped = model.fc.weight.detach()
    assert torch.equal(wrapped, model.fc.weight_orig.detach())  # still float
    q.compress(max_steps=2)  # steps 3 and 4: quantization on
    model.eval()
    w, scale = model.fc.weight.detach(), q.get_calibration_config()["fc"]["weight"]["scale"]
    codes = w / scale
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert not torch.equal(w, model.fc.weight_orig.detach())
    with torch.no_grad():
        model(x)


def test_bn_folding_during_training_and_restored_at_export():
    model = trained_cnn(epochs=1)
    ref = copy.deepcopy(model)
    cfg = [{"op_names": ["conv1"], "target_names": ["weight"], "quant_dtype": "int8",
            "granularity": "per_channel", "fuse_names": [("conv1", "bn1")]}]
    q = QATQuantizer(model, cfg, evaluator(model, lr=1e-3))
    assert isinstance(model.bn1, Absorbed)
    model.eval()
    x = digits()[2][:32]
    # eval: conv computes with the folded (then quantized) weight; the absorbed BN is an identity
    f = ref.bn1.weight / torch.sqrt(ref.bn1.running_var + ref.bn1.eps)
    folded = ref.conv1.weight * f.reshape(-1, 1, 1, 1)
    calib = q.get_calibration_config()["conv1"]["weight"]
    assert torch.allclose(calib["tracked_max"].flatten(), folded.detach().flatten(1).amax(1), atol=1e-6)
    with torch.no_grad():
        fused_out = model.conv1(x)
        ref_out = ref.bn1(ref.conv1(x))
    assert torch.allclose(fused_out, ref_out, atol=0.05 * ref_out.abs().max().item())
    q.compress(max_steps=5)
    bn_before = ref.bn1.running_mean.clone()
    q.unwrap_model()
    assert isinstance(model.bn1, torch.nn.BatchNorm2d)
    assert not torch.allclose(model.bn1.running_mean, bn_before)  # BN statistics were updated by the fused conv
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert set(model.state_dict()) == set(ref.state_dict())
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (32, 10)


def test_qat_converges_on_digits_from_scratch():
    torch.manual_seed(0)
    model = DigitsCNN()
    cfg = [{"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight"], "quant_dtype": "int8",
            "fuse_names": [("conv1", "bn1", "relu1")]},
           {"op_names": ["relu2"], "target_names": ["_output_"], "quant_dtype": "uint8"}]
    q = QATQuantizer(model, cfg, evaluator(model), quant_start_step=10)
    _, calib = q.compress(max_epochs=3)
    assert accuracy(model) > 0.9
    assert calib["relu2"]["_output_"]["quant_dtype"] == "uint8"
    assert float(calib["relu2"]["_output_"]["tracked_min"]) == 0.0


def test_qat_resumes_from_ptq_calibration():
    model = trained_cnn(epochs=1)
    cfg = [{"op_types": ["Linear"], "target_names": ["_input_", "weight"]}]
    ptq_model = copy.deepcopy(model)
    _, calib = PtqQuantizer(ptq_model, cfg, evaluator(ptq_model)).compress()
    q = QATQuantizer(model, cfg, evaluator(model))
    q.update_calibration_config(calib)
    assert torch.equal(q.get_calibration_config()["fc"]["_input_"]["scale"], calib["fc"]["_input_"]["scale"])
    with pytest.raises(KeyError, match="conv1"):
        q.update_calibration_config({"conv1": {"weight": calib["fc"]["weight"]}})


def test_legacy_config_runs():
    model = trained_cnn(epochs=1)
    q = QATQuantizer(model, [{"quant_types": ["weight", "input"], "quant_bits": {"weight": 8, "input": 8},
                              "op_types": ["Conv2d"], "quant_scheme": "per_channel_symmetric",
                              "quant_dtype": "int"}], evaluator(model))
    _, calib = q.compress(max_steps=3)
    assert calib["conv2"]["weight"]["scale"].shape == (32, 1, 1, 1)
    assert calib["conv2"]["_input_"]["granularity"] == "per_channel"


def test_qat_needs_a_training_evaluator():
    from nniray.compression.base import EvaluatorError
    with pytest.raises(EvaluatorError, match="training_func"):
        QATQuantizer(DigitsCNN(), [{"op_types": ["Linear"]}], TorchEvaluator(evaluating_func=accuracy))
