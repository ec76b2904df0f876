import pytest
import torch
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from nniray.compression.quantization import QuantGrad, QuantType
from nniray.compression.quantization.config import QuantDtype, QuantScheme
from nniray.compression.quantization.functional import (block_sizes, calculate_qparams, expand_blocks,
                                                        fake_quantize, reduce_range)

X = torch.tensor([[-1.3, 0.2, 0.7, 2.9], [0.05, -0.4, 1.1, -2.2]])


@pytest.mark.parametrize("dtype, scheme, tdtype, qscheme", [
    ("int8", QuantScheme.SYMMETRIC, torch.qint8, torch.per_tensor_symmetric),
    ("int8", QuantScheme.AFFINE, torch.qint8, torch.per_tensor_affine),
    ("uint8", QuantScheme.AFFINE, torch.quint8, torch.per_tensor_affine),
    ("uint8", QuantScheme.SYMMETRIC, torch.quint8, torch.per_tensor_symmetric),
])
def test_per_tensor_qparams_match_pytorch_observer(dtype, scheme, tdtype, qscheme):
    obs = MinMaxObserver(dtype=tdtype, qscheme=qscheme)
    obs(X)
    ref_scale, ref_zp = obs.calculate_qparams()
    lo, hi = reduce_range(X, block_sizes("default", X.shape, False))
    scale, zp = calculate_qparams(lo, hi, QuantDtype.parse(dtype, "t"), scheme)
    assert torch.allclose(scale.flatten(), ref_scale, rtol=1e-6)
    assert torch.equal(zp.flatten().long(), ref_zp.long())
    fq = fake_quantize(X, scale, zp, QuantDtype.parse(dtype, "t"))
    q = QuantDtype.parse(dtype, "t")
    ref = torch.fake_quantize_per_tensor_affine(X, float(ref_scale), int(ref_zp), q.qmin, q.qmax)
    assert torch.allclose(fq, ref, atol=1e-6)


def test_per_channel_qparams_match_pytorch_observer():
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    obs(X)
    ref_scale, _ = obs.calculate_qparams()
    sizes = block_sizes("per_channel", X.shape, False)
    lo, hi = reduce_range(X, sizes)
    scale, zp = calculate_qparams(lo, hi, QuantDtype(8, True), QuantScheme.SYMMETRIC)
    assert scale.shape == (2, 1)
    assert torch.allclose(scale.flatten(), ref_scale, rtol=1e-6)
    assert torch.all(zp == 0)


def test_low_bit_affine_by_hand():
    # uint2, range [-1, 2]: scale 3/3 = 1, zero point 0 - round(-1 / 1) = 1
    x = torch.tensor([-1.2, 0.4, 1.6, 3.0])
    scale, zp = calculate_qparams(torch.tensor(-1.0), torch.tensor(2.0), QuantDtype(2, False), QuantScheme.AFFINE)
    assert float(scale) == 1.0 and float(zp) == 1.0
    # codes clamp(round(x) + 1, 0, 3) = [0, 1, 3, 3] -> values (q - 1) * 1
    assert fake_quantize(x, scale, zp, QuantDtype(2, False)).tolist() == [-1.0, 0.0, 2.0, 2.0]


def test_range_always_contains_zero():
    scale, zp = calculate_qparams(torch.tensor(2.0), torch.tensor(4.0), QuantDtype(8, False), QuantScheme.AFFINE)
    assert float(zp) == 0.0 and abs(float(scale) - 4.0 / 255) < 1e-7


def test_block_granularity():
    x = torch.arange(8.0).reshape(2, 4) - 3.0  # [[-3,-2,-1,0],[1,2,3,4]]
    sizes = block_sizes([1, 2], x.shape, False)
    lo, hi = reduce_range(x, sizes)
    assert lo.tolist() == [[-3.0, -1.0], [1.0, 3.0]] and hi.tolist() == [[-2.0, 0.0], [2.0, 4.0]]
    assert expand_blocks(hi, sizes, x.shape).tolist() == [[-2, -2, 0, 0], [2, 2, 4, 4]]
    with pytest.raises(ValueError, match="not a multiple"):
        block_sizes([1, 3], x.shape, False)


def test_activation_per_channel_uses_dim_1():
    x = torch.randn(5, 3, 4, 4)
    lo, _ = reduce_range(x, block_sizes("per_channel", x.shape, True))
    assert lo.shape == (1, 3, 1, 1)
    assert torch.allclose(lo.flatten(), x.transpose(0, 1).reshape(3, -1).min(1).values)


def test_straight_through_gradient_clipped_to_range_and_custom_backward():
    scale, zp = torch.tensor(0.1), torch.tensor(0.0)
    x = torch.tensor([0.05, 1.0, 20.0, -20.0], requires_grad=True)
    fake_quantize(x, scale, zp, QuantDtype(8, True)).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]

    class Halve(QuantGrad):
        @staticmethod
        def quant_backward(tensor, grad_output, quant_type, scale, zero_point, qmin, qmax):
            assert quant_type is QuantType.OUTPUT
            return grad_output * 0.5

    x.grad = None
    fake_quantize(x, scale, zp, QuantDtype(8, True), Halve, QuantType.OUTPUT).sum().backward()
    assert x.grad.tolist() == [0.5] * 4
