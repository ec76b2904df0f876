"""Refusals before anything runs (no Ray needed)."""
import threading

import pytest
import torch

import nniray.nas.nn as nn
import nniray.nas.strategy as strategy
from nniray.nas.evaluator import FunctionalEvaluator
from nniray.nas.experiment import RetiariiExeConfig, RetiariiExperiment
from nniray.strategies.nas import Mutator
from nniray.trace import NotSerializableError


def fit(model_cls):
    return None


class Space(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        self.op = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="op")


class NoChoices(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)


class Unwrapped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.op = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="op")


class MyMutator(Mutator):
    def mutate(self, model):
        self.choice([1, 2])


def test_refusals_name_the_problem():
    ev = FunctionalEvaluator(fit)
    with pytest.raises(RuntimeError, match="cannot be mixed"):
        RetiariiExperiment(Space(), ev, [MyMutator()], strategy.Random())
    with pytest.raises(ValueError, match="NoChoices has no choices"):
        RetiariiExperiment(NoChoices(), ev, strategy=strategy.Random())
    with pytest.raises(TypeError, match="@model_wrapper"):
        RetiariiExperiment(Unwrapped(), ev, strategy=strategy.Random())
    with pytest.raises(TypeError, match="strategy must be"):
        RetiariiExperiment(Space(), ev, strategy="random")
    with pytest.raises(TypeError, match="evaluator must be"):
        RetiariiExperiment(Space(), fit, strategy=strategy.Random())
    with pytest.raises(NotSerializableError, match="argument 'lock'.*nniray.trace"):
        RetiariiExperiment(Space(), FunctionalEvaluator(fit, lock=threading.Lock()), strategy=strategy.Random())


def test_config_fields_are_checked():
    cfg = RetiariiExeConfig("local")
    with pytest.raises(AttributeError, match="did you mean 'trial_concurrency'"):
        cfg.trial_concurency = 2
    with pytest.raises(AttributeError, match="reserved"):
        cfg.trial_command = "python train.py"
    cfg.execution_engine = "warp"
    from nniray.config import ConfigError
    with pytest.raises(ConfigError, match="execution_engine"):
        cfg.validate()
