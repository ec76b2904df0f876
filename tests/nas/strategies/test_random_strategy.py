import pytest

from nniray.strategies.nas import Random
from nniray.strategies.nas.base import sample_key

from .helpers import SIZE, run


def test_dedup_never_repeats_and_stops_when_exhausted():
    models = run(Random(seed=1))
    keys = [sample_key(m.sample) for m in models]
    assert len(keys) == len(set(keys)) == SIZE  # every architecture once, then 500 duplicates end it


def test_without_dedup_repeats_and_respects_budget():
    models = run(Random(dedup=False, seed=1), max_models=100)
    assert len(models) == 100 and len({sample_key(m.sample) for m in models}) < 100


def test_variational_with_dedup_is_refused():
    with pytest.raises(ValueError, match="dedup.*variational"):
        Random(variational=True)
    models = run(Random(variational=True, dedup=False, seed=0), max_models=10)
    assert len(models) == 10 and all(m.status.value == "trained" for m in models)


def test_model_filter_sees_each_model_and_drops_it():
    seen = []

    def only_a0(model):
        seen.append(model.sample["a"])
        return model.sample["a"] == 0

    models = run(Random(model_filter=only_a0, seed=0))
    assert models and all(m.sample["a"] == 0 for m in models) and len(models) == 4 * 3
    assert set(seen) == {0, 1, 2, 3}


def test_failed_models_do_not_stop_the_search():
    def flaky(model):
        if model.sample["a"] == 1:
            raise RuntimeError("shape mismatch")
        return 1.0

    models = run(Random(seed=0), evaluate=flaky, max_models=30)
    failed = [m for m in models if m.status.value == "failed"]
    assert len(models) == 30 and failed and all(m.metric is None for m in failed)
