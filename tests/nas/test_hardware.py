import pytest

import nniray.nas.nn as nn
from nniray.nas.execution.trial import ModelBuilder
from nniray.nas.hardware import LatencyFilter
from nniray.strategies.nas import Model, Random, SequentialEngine, set_execution_engine
from nniray.strategies.nas.base import mutators_of


class Space(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, nn.ValueChoice([2, 8, 32], label="w"), 3)

    def forward(self, x):
        return self.conv(x)


def test_flops_filter_keeps_small_models_and_caches():
    space = Space()
    builder = ModelBuilder(Space, space.__dict__["_nniray_init_args"])
    filt = LatencyFilter(threshold=8 * 9 * 36 + 1e-6, dummy_input=[1, 1, 8, 8], metric="flops")
    engine = SequentialEngine(lambda m: 1.0)
    set_execution_engine(engine)
    try:
        Random(model_filter=filt, seed=0).run(Model(space.simplify(), builder=builder), mutators_of(space.simplify()))
    finally:
        set_execution_engine(None)
    assert sorted(m.sample["w"] for m in engine.models) == [2, 8]  # 32 channels exceed the FLOPs budget
    assert len(filt.cache) == 3
    assert filt.value(Model(space.simplify(), {"w": 32}, builder=builder)) > filt.threshold


def test_latency_metric_measures_and_reverse():
    space = Space()
    builder = ModelBuilder(Space, space.__dict__["_nniray_init_args"])
    filt = LatencyFilter(threshold=0.0, dummy_input=[1, 1, 8, 8], repeat=3, reverse=True)
    assert filt(Model(space.simplify(), {"w": 2}, builder=builder))  # any measured time is >= 0 ms
    with pytest.raises(ValueError, match="metric"):
        LatencyFilter(1.0, metric="energy")
