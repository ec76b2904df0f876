import pytest
import torch

from nniray.compression.base import ConfigError
from nniray.compression.quantization import PtqQuantizer
from nniray.compression.quantization.config import QuantDtype, validate_quant_config_list


def test_legacy_keys_translate_to_targets_dtypes_and_schemes():
    cfg = validate_quant_config_list([{
        "op_types": ["Conv2d"], "quant_types": ["weight", "input", "output"],
        "quant_bits": {"weight": 4, "input": 8, "output": 8},
        "quant_scheme": {"weight": "per_channel_symmetric", "input": "per_tensor_affine",
                         "output": "per_tensor_symmetric"},
        "quant_dtype": {"weight": "int", "input": "uint"},
    }])[0]
    assert cfg["target_names"] == ["weight", "_input_", "_output_"]
    ts = cfg["target_settings"]
    assert ts["weight"] == {"quant_dtype": "int4", "quant_scheme": "symmetric", "granularity": "per_channel"}
    assert ts["_input_"] == {"quant_dtype": "uint8", "quant_scheme": "affine", "granularity": "default"}
    # v2.5 default dtype is uint
    assert ts["_output_"]["quant_dtype"] == "uint8" and ts["_output_"]["quant_scheme"] == "symmetric"


def test_dtype_ranges():
    assert (QuantDtype.parse("int8", "x").qmin, QuantDtype.parse("int8", "x").qmax) == (-128, 127)
    assert (QuantDtype.parse("uint4", "x").qmin, QuantDtype.parse("uint4", "x").qmax) == (0, 15)
    assert QuantDtype.parse(None, "x").name == "int8"


@pytest.mark.parametrize("bad, words", [
    ({"op_types": ["Linear"], "quant_dtype": "int9"}, ["config_list[0].quant_dtype", "int8"]),
    ({"op_types": ["Linear"], "quant_scheme": "per_tensor_affine"}, ["config_list[0].quant_scheme", "v2.5"]),
    ({"op_types": ["Linear"], "quant_dtyp": "int8"}, ["quant_dtyp", "did you mean 'quant_dtype'"]),
    ({"op_types": ["Linear"], "sparse_ratio": 0.5}, ["pruning key", "from_compressor"]),
    ({"op_types": ["Linear"], "quant_bits": 8}, ["quant_types", "int8"]),
    ({"op_types": ["Linear"], "granularity": "out_channel"}, ["granularity", "per_channel"]),
    ({"op_types": ["Linear"], "fuse_names": ["fc"]}, ["fuse_names[0]", "tuple"]),
])
def test_bad_config_names_the_field(bad, words):
    with pytest.raises(ConfigError) as info:
        validate_quant_config_list([bad])
    for w in words:
        assert w in str(info.value)


def test_default_targets_and_exclude():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    from nniray.compression import TorchEvaluator
    ev = TorchEvaluator(evaluating_func=lambda m: m(torch.randn(8, 4)).sum().item())
    q = PtqQuantizer(model, [{"op_types": ["Linear"]}, {"exclude": True, "op_names": ["2"]}], ev)
    assert set(q._quant_targets) == {"0"}
    assert set(q._quant_targets["0"]) == {"_input_", "weight", "_output_"}
    with pytest.raises(ConfigError, match="target_names has 'gamma'"):
        PtqQuantizer(torch.nn.Sequential(torch.nn.Linear(2, 2)), [{"op_names": ["0"], "target_names": ["gamma"]}], ev)
