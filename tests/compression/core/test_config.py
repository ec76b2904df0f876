import pytest
import torch
from torch import nn

from nniray.compression.base.config import (ConfigError, INDEX_KEY, resolve_targets, trans_legacy_config_list,
                                            validate_config_list)
from nniray.compression.pruning import L1NormPruner, LevelPruner


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, bias=False)
        self.fc1 = nn.Linear(16, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        x = self.conv2(torch.relu(self.bn1(self.conv1(x))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def strip(configs):
    return [{k: v for k, v in c.items() if k != INDEX_KEY} for c in configs]


@pytest.mark.parametrize("config_list, message", [
    ([{"op_types": ["Conv2d"], "sparse_ratio": 0.5}, {"op_names": ["fc1"], "sparse_ratio": 1.5}],
     "config_list[1].sparse_ratio must be in [0, 1), got 1.5"),
    ([{"op_types": ["Conv2d"], "sparse_ratio": -0.1}], "config_list[0].sparse_ratio must be in [0, 1), got -0.1"),
    ([{"op_types": ["Conv2d"], "sparse_ratio": "0.5"}], "config_list[0].sparse_ratio must be a number"),
    ([{"op_types": ["Conv2d"], "max_sparse_ratio": 0}], "config_list[0].max_sparse_ratio must be in (0, 1]"),
    ([{"op_types": ["Conv2d"], "min_sparse_ratio": 0.6, "max_sparse_ratio": 0.5}],
     "config_list[0].min_sparse_ratio (0.6) must not exceed max_sparse_ratio (0.5)"),
    ([{"op_types": ["Conv2d"], "sparse_ratio": 0.5, "sparse_threshold": 0.1}], "config_list[0] sets both sparse_ratio"),
    ([{"op_types": "Conv2d", "sparse_ratio": 0.5}], "config_list[0].op_types must be a list of strings"),
    ([{"op_types": ["Conv2d"], "sparse_raito": 0.5}], "did you mean 'sparse_ratio'"),
    ([{"sparse_ratio": 0.5}], "config_list[0] selects nothing"),
    ([{"op_types": ["Conv2d"], "granularity": "row"}], "config_list[0].granularity must be one of"),
    ([{"op_types": ["Conv2d"], "granularity": [2, 0]}], "config_list[0].granularity must be one of"),
    ([{"op_types": ["Conv2d"], "apply_method": "div"}], "config_list[0].apply_method must be one of"),
    ([{"op_types": ["Conv2d"], "target_settings": {"weight": {"sparse_ratio": 2}}}],
     "config_list[0].target_settings.weight.sparse_ratio must be in [0, 1), got 2"),
    ([{"op_types": ["Conv2d"], "align": {"target_name": "weight"}}], "config_list[0].align.dims"),
    ([{"op_names_re": ["conv("], "sparse_ratio": 0.5}], "invalid regular expression"),
    ([{"op_types": ["Conv2d"], "quant_bits": 8}], "config_list[0].quant_bits is a quantization key"),
    ({"op_types": ["Conv2d"]}, "config_list must be a list of dicts"),
    ([], "config_list is empty"),
    ([{"op_types": ["Conv2d"], "sparsity": 0.5, "sparse_ratio": 0.5}], "config_list[0] sets both 'sparsity'"),
    ([{"exclude": True, "op_names": ["fc2"], "sparsity": 0.2}], "config_list[0] has exclude=True together with"),
])
def test_validation_errors_name_index_and_key(config_list, message):
    with pytest.raises(ConfigError) as info:
        validate_config_list(config_list)
    assert message in str(info.value)


def test_index_after_exclude_translation_is_the_users():
    with pytest.raises(ConfigError, match=r"config_list\[2\]\.sparse_ratio must be in \[0, 1\), got 1.5"):
        validate_config_list([{"op_names": ["fc2"], "exclude": True}, {"op_types": ["Conv2d"], "sparsity": 0.5},
                              {"op_types": ["Linear"], "sparsity": 1.5}])


def test_legacy_translation():
    out = strip(trans_legacy_config_list([
        {"sparsity": 0.8, "op_types": ["Conv2d"]},
        {"sparsity_per_layer": 0.6, "op_partial_names": ["fc"]},
        {"total_sparsity": 0.5, "max_sparsity_per_layer": 0.9, "op_types": ["Linear"]},
        {"exclude": True, "op_names": ["fc2"], "op_types": ["BatchNorm2d"]},
    ]))
    excl = {"exclude_op_names": ["fc2"], "exclude_op_types": ["BatchNorm2d"]}
    assert out == [
        {"sparse_ratio": 0.8, "op_types": ["Conv2d"], **excl},
        {"sparse_ratio": 0.6, "op_names_re": [".*fc.*"], **excl},
        {"sparse_ratio": 0.5, "max_sparse_ratio": 0.9, "op_types": ["Linear"],
         "global_group_id": "_total_sparsity_config_2", **excl},
    ]


def test_legacy_list_prunes_like_new_keys():
    torch.manual_seed(0)
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    _, m1 = L1NormPruner(a, [{"sparsity": 0.5, "op_types": ["Conv2d"]}, {"exclude": True, "op_names": ["conv2"]}]).compress()
    _, m2 = L1NormPruner(b, [{"sparse_ratio": 0.5, "op_types": ["Conv2d"], "exclude_op_names": ["conv2"]}]).compress()
    assert set(m1) == set(m2) == {"conv1"}
    assert torch.equal(m1["conv1"]["weight"], m2["conv1"]["weight"])


def test_later_config_overrides_earlier_for_same_target():
    # the documented v2.5 example: default ops 0.8, fc1 0.6, fc2 excluded
    model = Net()
    configs = validate_config_list([
        {"sparsity": 0.8, "op_types": ["Conv2d", "Linear"]},
        {"sparsity": 0.6, "op_names": ["fc1"]},
        {"exclude": True, "op_names": ["fc2"]},
    ])
    resolved = resolve_targets(model, configs)
    assert set(resolved) == {"conv1", "conv2", "fc1"}
    assert resolved["conv1"]["weight"][0]["sparse_ratio"] == 0.8
    assert resolved["fc1"]["weight"][0]["sparse_ratio"] == 0.6
    assert resolved["fc1"]["weight"][1] == 1  # the setting came from config 1
    _, masks = LevelPruner(model, [{"sparse_ratio": 0.8, "op_types": ["Linear"]},
                                   {"sparse_ratio": 0.25, "op_names": ["fc1"]}]).compress()
    assert masks["fc1"]["weight"].mean().item() == pytest.approx(0.75)
    assert masks["fc2"]["weight"].mean().item() == pytest.approx(4 / 16)  # floor(0.8 * 16) = 12 pruned


def test_shorthand_and_target_settings():
    model = Net()
    resolved = resolve_targets(model, validate_config_list([
        {"op_names": ["fc1"], "sparse_ratio": 0.5, "granularity": "in_channel",
         "target_settings": {"bias": {"align": None, "sparse_ratio": 0.25}}}]))
    w, b = resolved["fc1"]["weight"][0], resolved["fc1"]["bias"][0]
    assert w["sparse_ratio"] == 0.5 and w["granularity"] == "in_channel" and w["apply_method"] == "mul"
    assert b["align"] is None and b["sparse_ratio"] == 0.25
    # a module without bias has only its weight as target
    assert set(resolve_targets(model, validate_config_list([{"op_names": ["conv2"], "sparse_ratio": 0.5}]))["conv2"]) == {"weight"}


def test_unknown_op_name_and_empty_selection_are_errors():
    with pytest.raises(ConfigError, match=r"config_list\[1\]\.op_names has 'conv9', which is not a module"):
        L1NormPruner(Net(), [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}, {"op_names": ["conv9"], "sparse_ratio": 0.5}])
    with pytest.raises(ConfigError, match=r"config_list\[0\] selects no module"):
        L1NormPruner(Net(), [{"op_types": ["Conv3d"], "sparse_ratio": 0.5}])
    with pytest.raises(ConfigError, match=r"config_list\[0\] selects no module"):
        L1NormPruner(Net(), [{"op_types": ["Conv2d"], "sparse_ratio": 0.5, "exclude_op_names_re": ["conv.*"]}])
    with pytest.raises(ConfigError, match=r"config_list\[0\]\.target_names has 'gamma'"):
        L1NormPruner(Net(), [{"op_names": ["fc1"], "target_names": ["gamma"], "sparse_ratio": 0.5}])


def test_regex_is_full_match_and_default_op_types():
    model = Net()
    configs = validate_config_list([{"op_names_re": ["fc"], "sparse_ratio": 0.5}])
    with pytest.raises(ConfigError, match="selects no module"):
        resolve_targets(model, configs)
    resolved = resolve_targets(model, validate_config_list([{"op_names_re": ["fc.*"], "sparse_ratio": 0.5}]))
    assert set(resolved) == {"fc1", "fc2"}
    pruner = L1NormPruner(Net(), [{"op_types": ["default"], "sparse_ratio": 0.5}])
    assert set(pruner._target_spaces) == {"conv1", "conv2", "fc1", "fc2"}


def test_target_settings_for_a_missing_parameter_is_an_error():
    with pytest.raises(ConfigError, match=r"config_list\[0\]\.target_settings has 'gamma'"):
        L1NormPruner(Net(), [{"op_names": ["fc1"], "sparse_ratio": 0.5, "target_settings": {"gamma": {}}}])
