import numpy as np

from nniray.strategies.nas import Random, TPEStrategy

from .helpers import run


def test_tpe_proposes_valid_models_and_learns():
    models = run(TPEStrategy(seed=0), max_models=30)
    assert len(models) == 30 and all(m.status.value == "trained" for m in models)
    tpe_best = np.mean([max(m.metric for m in run(TPEStrategy(seed=s), max_models=15)) for s in range(5)])
    rnd_best = np.mean([max(m.metric for m in run(Random(seed=s), max_models=15)) for s in range(5)])
    assert tpe_best >= rnd_best - 1.0


def test_tpe_survives_failures():
    def evaluate(model):
        if model.sample["b"] == 0:
            raise RuntimeError("boom")
        return float(model.sample["a"])

    models = run(TPEStrategy(seed=1), evaluate=evaluate, max_models=20)
    assert len(models) == 20 and any(m.status.value == "failed" for m in models)
