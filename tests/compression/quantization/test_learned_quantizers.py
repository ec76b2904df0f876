"""LSQ, LSQ+, DoReFa and BNN: values on their grids, learned parameters, gradients."""
import pytest
import torch

from nniray.compression.quantization import BNNQuantizer, DoReFaQuantizer, LsqPlusQuantizer, LsqQuantizer

from quant_helpers import accuracy, digits, evaluator, trained_cnn

CFG = [{"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight"], "quant_dtype": "int8"}]


def test_lsq_learns_step_sizes_and_values_lie_on_their_grid():
    model = trained_cnn(epochs=2)
    q = LsqQuantizer(model, CFG, evaluator(model, lr=1e-3))
    s0 = q._quant_targets["fc"]["weight"].params["scale"].detach().clone()
    w = model.fc.weight_orig.detach()
    assert torch.allclose(s0, 2 * w.abs().mean() / 127 ** 0.5)  # LSQ's initial step size
    _, calib = q.compress(max_steps=20)
    s1 = calib["fc"]["weight"]["scale"]
    assert not torch.allclose(s1, s0)  # trained by the user's optimizer
    model.eval()
    with torch.no_grad():
        model(digits()[2][:4])
    codes = model.fc.weight.detach() / s1.abs()
    assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.abs().max() <= 128
    assert accuracy(model) > 0.85


def test_lsq_requires_symmetric_and_lsq_plus_affine():
    model = trained_cnn(epochs=1)
    with pytest.raises(ValueError, match="symmetric"):
        LsqQuantizer(model, [dict(CFG[0], quant_scheme="affine")], evaluator(model))
    with pytest.raises(ValueError, match="affine"):
        LsqPlusQuantizer(model, [dict(CFG[0], quant_scheme="symmetric")], evaluator(model))


def test_lsq_plus_learns_scale_and_offset():
    model = trained_cnn(epochs=2)
    q = LsqPlusQuantizer(model, [dict(CFG[0], quant_dtype="uint8")], evaluator(model, lr=1e-3))
    qt = q._quant_targets["conv2"]["_input_"]
    _, calib = q.compress(max_steps=15)
    assert set(qt.params) == {"scale", "offset"}
    entry = calib["conv2"]["_input_"]
    assert entry["scale"].item() > 0 and entry["quant_scheme"] == "affine"
    assert accuracy(model) > 0.85


def test_dorefa_weight_grid():
    model = trained_cnn(epochs=1)
    q = DoReFaQuantizer(model, [{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "uint2"}],
                        evaluator(model))
    w = model.fc.weight.detach()
    levels = sorted(set(round(v, 5) for v in w.flatten().tolist()))
    assert levels == [-1.0, round(-1 / 3, 5), round(1 / 3, 5), 1.0]  # 2 * round(t * 3) / 3 - 1
    t = torch.tanh(model.fc.weight_orig.detach())
    t = t / (2 * t.abs().max()) + 0.5
    assert torch.allclose(w, 2 * torch.round(t * 3) / 3 - 1)
    calib = q.get_calibration_config()["fc"]["weight"]
    assert calib["scale"].item() == pytest.approx(2 / 3)
    q.compress(max_steps=5)


def test_bnn_binarizes_with_clipped_gradient():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Hardtanh())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -2.0, 0.0, -0.1]] * 3))
    q = BNNQuantizer(model, [{"op_names": ["0"], "target_names": ["weight"]},
                             {"op_names": ["1"], "target_names": ["_output_"]}], evaluator(model))
    assert model[0].weight[0].tolist() == [1.0, -1.0, 1.0, -1.0]
    x = torch.randn(5, 4)
    out = model(x)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    out.sum().backward()
    grad = model[0].weight_orig.grad
    assert torch.all(grad[:, 1] == 0)  # |w| > 1: the STE is cancelled
    q.unwrap_model()
    assert model[0].weight[0, 1].item() == -2.0
