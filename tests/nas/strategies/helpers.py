"""A small tabular problem for strategy tests: 4 x 4 x 3 architectures, known best."""
import nniray.mutable as m
from nniray.strategies.nas import Model, SequentialEngine, set_execution_engine
from nniray.strategies.nas.base import mutators_of

SPACE = {"a": m.Categorical([0, 1, 2, 3], label="a"), "b": m.Categorical([0, 1, 2, 3], label="b"),
         "c": m.CategoricalMultiple([0, 1, 2], n_chosen=1, label="c")}
SIZE = 4 * 4 * 3


def score(sample):
    return sample["a"] * sample["b"] + sample["c"][0]  # best: a=b=3, c=[2] -> 11


def run(strategy, evaluate=None, max_models=None, space=SPACE):
    engine = SequentialEngine(evaluate or (lambda model: score(model.sample)), max_models=max_models)
    set_execution_engine(engine)
    try:
        strategy.run(Model(space), mutators_of(space))
    finally:
        set_execution_engine(None)
    return engine.models
