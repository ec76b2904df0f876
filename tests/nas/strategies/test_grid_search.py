from nniray.strategies.nas import GridSearch
from nniray.strategies.nas.base import sample_key

from .helpers import SIZE, run


def test_every_combination_once_in_product_order_without_shuffle():
    models = run(GridSearch(shuffle=False))
    assert len(models) == SIZE and len({sample_key(m.sample) for m in models}) == SIZE
    assert [m.sample for m in models[:3]] == [{"a": 0, "b": 0, "c": [0]}, {"a": 0, "b": 0, "c": [1]},
                                              {"a": 0, "b": 0, "c": [2]}]


def test_shuffle_changes_order_within_each_label_only():
    models = run(GridSearch(shuffle=True, seed=3))
    assert len({sample_key(m.sample) for m in models}) == SIZE
    first_a = models[0].sample["a"]
    # the first label is the slowest: its value stays for the 4*3 combinations of the others
    assert all(m.sample["a"] == first_a for m in models[:12])
    assert [m.sample for m in models] != [m.sample for m in run(GridSearch(shuffle=False))]


def test_budget_stops_grid():
    assert len(run(GridSearch(), max_models=5)) == 5
