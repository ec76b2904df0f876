import threading

import pytest

import nniray
from nniray.nas.evaluator import FunctionalEvaluator
from nniray.trace import NotSerializableError


def fit(model_cls, scale):
    nniray.report_final_result(model_cls()(scale))


def test_fit_receives_a_class_and_kwargs():
    ev = FunctionalEvaluator(fit, scale=3)
    assert ev.arguments == {"scale": 3}
    got = []
    FunctionalEvaluator(lambda cls, k: got.append((cls(), k)), k=1).evaluate(lambda: "model")
    assert got == [("model", 1)]
    import torch
    module = torch.nn.Linear(1, 1)
    FunctionalEvaluator(lambda cls: got.append(cls())).evaluate(module)  # an instance is handed over as is
    assert got[-1] is module


def test_non_serializable_argument_is_named_and_says_trace():
    with pytest.raises(NotSerializableError, match="FunctionalEvaluator argument 'lock'.*nniray.trace"):
        FunctionalEvaluator(fit, lock=threading.Lock())
    with pytest.raises(TypeError, match="callable"):
        FunctionalEvaluator("fit")
