"""Auto-compression: the search space round trip through a real tuner, trials in-process, tuner check."""
from __future__ import annotations

import pytest
import torch

from nniray.compression.auto_compress import (AbstractAutoCompressionModule, AutoCompressionExperiment,
                                              AutoCompressionSearchSpaceGenerator, parse_params,
                                              run_auto_compression_trial)
from nniray.compression.evaluator import TorchEvaluator

X = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = (X.mean((1, 2, 3)) > 0).long()


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 64, 2))


class Module(AbstractAutoCompressionModule):
    flops_weight = 0.5

    @classmethod
    def model(cls):
        return _net()

    @classmethod
    def evaluator(cls):
        def acc(model):
            with torch.no_grad():
                return (model(X).argmax(1) == Y).float().mean().item()
        return acc

    @classmethod
    def dummy_input(cls):
        return X[:2]

    @classmethod
    def compression_evaluator(cls, model):
        return TorchEvaluator(evaluating_func=cls.evaluator(), dummy_input=X[:2])


def _space():
    g = AutoCompressionSearchSpaceGenerator()
    g.add_config("l1", [{"sparse_ratio": {"_type": "uniform", "_value": [0.2, 0.6]}, "op_names": ["0"]}])
    g.add_config("ptq", [{"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight"],
                          "quant_dtype": {"_type": "choice", "_value": ["int8", "uint8"]}}])
    return g.dumps()


def test_search_space_round_trip_through_a_tuner():
    from nniray.strategies.random_tuner import RandomTuner
    tuner = RandomTuner(seed=1)
    tuner.update_search_space(_space())
    seen = set()
    for i in range(12):
        name, config_list = parse_params(tuner.generate_parameters(i))
        seen.add(name)
        if name == "l1":
            assert 0.2 <= config_list[0]["sparse_ratio"] <= 0.6 and config_list[0]["op_names"] == ["0"]
        else:
            assert config_list[0]["quant_dtype"] in ("int8", "uint8")
            assert config_list[0]["target_names"] == ["_input_", "weight"]
    assert seen == {"l1", "ptq"}
    with pytest.raises(ValueError, match="unknown algorithm"):
        AutoCompressionSearchSpaceGenerator().add_config("magic", [{}])


def test_trials_prune_with_speedup_or_quantize():
    g = AutoCompressionSearchSpaceGenerator()
    pruned = run_auto_compression_trial(Module, {"algorithm_name": {
        "_name": "l1", "_config_list_template": '[{"op_names": ["0"]}]', "config_list::0::sparse_ratio": 0.5}})
    assert pruned["flops_ratio"] < 0.75  # conv 0 lost half its filters, conv 2 half its inputs
    assert pruned["default"] == pytest.approx(pruned["accuracy"] - 0.5 * pruned["flops_ratio"])
    quant = run_auto_compression_trial(Module, {"algorithm_name": {
        "_name": "ptq", "_config_list_template": '[{"op_types": ["Conv2d", "Linear"]}]'}})
    assert quant["flops_ratio"] == 1.0 and quant["algorithm"] == "ptq"
    assert abs(quant["accuracy"] - Module.evaluator()(_net())) <= 0.05


def test_unsupported_tuner_is_refused(tmp_path):
    exp = AutoCompressionExperiment(Module, "local")
    exp.config.search_space = _space()
    exp.config.tuner.name = "GridSearch"
    with pytest.raises(ValueError, match="TPE"):
        exp.start()
