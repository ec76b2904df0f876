import numpy as np
import pytest

from nniray.strategies.nas import RegularizedEvolution
from nniray.strategies.nas.base import ModelStatus

from .helpers import run, score


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="sample_size < population_size"):
        RegularizedEvolution(population_size=5, sample_size=5)
    with pytest.raises(ValueError, match="on_failure"):
        RegularizedEvolution(on_failure="retry")


def test_first_population_random_then_mutations_and_cycles():
    evo = RegularizedEvolution(population_size=6, sample_size=3, cycles=40, mutation_prob=0.5, seed=0)
    models = run(evo)
    assert len(models) == 40  # cycles = number of successful trials
    assert len(evo._population) == 6  # aging: the population keeps the newest 6
    assert [ind.x for ind in evo._population] == [m.sample for m in models[-6:]]


def test_child_differs_from_parent_only_where_mutated():
    evo = RegularizedEvolution(population_size=4, sample_size=2, mutation_prob=0.0)
    from .helpers import SPACE
    parent = {"a": 1, "b": 2, "c": [0]}
    assert evo.mutate(parent, SPACE, np.random.RandomState(0)) == parent
    evo.mutation_prob = 1.0
    rng = np.random.RandomState(0)
    kids = [evo.mutate(parent, SPACE, rng) for _ in range(30)]
    assert any(k != parent for k in kids)


def test_tournament_picks_best_of_the_sample():
    evo = RegularizedEvolution(population_size=4, sample_size=3)
    from nniray.strategies.nas.evolution import Individual
    evo._population.extend([Individual({"i": i}, float(i)) for i in range(4)])
    picks = {evo.best_parent(np.random.RandomState(s))["i"] for s in range(30)}
    assert picks <= {2, 3} and 3 in picks  # the worst can never win a tournament of 3 out of 4


def test_evolution_beats_random_on_average():
    from nniray.strategies.nas import Random
    best_evo, best_rand = [], []
    for seed in range(6):
        evo = run(RegularizedEvolution(population_size=6, sample_size=3, cycles=18, mutation_prob=0.3, seed=seed))
        rnd = run(Random(seed=seed), max_models=18)
        best_evo.append(max(m.metric for m in evo))
        best_rand.append(max(m.metric for m in rnd))
    assert np.mean(best_evo) >= np.mean(best_rand) - 1e-9


@pytest.mark.parametrize("on_failure", ["ignore", "worst"])
def test_on_failure(on_failure):
    def evaluate(model):
        if model.sample["a"] == 0:
            raise RuntimeError("bad architecture")
        return score(model.sample)

    evo = RegularizedEvolution(population_size=5, sample_size=2, cycles=20, on_failure=on_failure, seed=2)
    models = run(evo, evaluate=evaluate)
    failed = [m for m in models if m.status == ModelStatus.Failed]
    assert failed
    ys = [ind.y for ind in evo._population]
    if on_failure == "ignore":
        # failed models never join the population and do not count toward cycles
        assert len(models) == 20 + len(failed) and all(np.isfinite(ys))
    else:
        assert len(models) == 20
        assert evo._success_count == 20
