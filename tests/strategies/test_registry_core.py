"""The core algorithms build from their registered names with NNI classArgs, and bad classArgs
are refused naming the argument."""
import pytest

from nniray.assessor import AssessResult
from nniray.strategies.registry import AlgorithmError, create_algorithm

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "k": {"_type": "choice", "_value": [1, 2]}}


@pytest.mark.parametrize("name,args", [
    ("TPE", {"optimize_mode": "minimize", "parallel_optimize": True, "constant_liar_type": "mean", "seed": 1}),
    ("TPE", {"tpe_args": {"n_startup_jobs": 3, "multivariate": False}}),
    ("Random", {}),
    ("Anneal", {"optimize_mode": "maximize"}),
    ("Evolution", {"optimize_mode": "maximize", "population_size": 8}),
    ("GridSearch", {}),
])
def test_tuners_build_from_names_and_run(name, args):
    t = create_algorithm("tuner", name, args)
    space = SPACE if name != "GridSearch" else {"k": {"_type": "choice", "_value": [1, 2]}}
    t.update_search_space(space)
    ps = t.generate_multiple_parameters([0, 1])
    assert len(ps) == 2
    for i, p in enumerate(ps):
        t.receive_trial_result(i, p, {"default": 0.5, "loss": 1.0})
        t.trial_end(i, True)


def test_batch_and_medianstop_build_from_names():
    b = create_algorithm("tuner", "BatchTuner", {})
    b.update_search_space({"combine_params": {"_type": "choice", "_value": [{"a": 1}]}})
    assert b.generate_multiple_parameters([0, 1]) == [{"a": 1}]
    m = create_algorithm("assessor", "Medianstop", {"optimize_mode": "minimize", "start_step": 2})
    assert m.assess_trial("t", [1.0]) is AssessResult.Good


@pytest.mark.parametrize("name,args,field", [
    ("TPE", {"constant_liar_type": "median"}, "constant_liar_type"),
    ("Evolution", {"population_size": -3}, "population_size"),
    ("Anneal", {"optimize_mode": "smallest"}, "optimize_mode"),
    ("Random", {"seed": "abc"}, "seed"),
    ("TPE", {"parallel": True}, "parallel"),
])
def test_bad_class_args_name_the_field(name, args, field):
    with pytest.raises(AlgorithmError, match=field):
        create_algorithm("tuner", name, args)


@pytest.mark.parametrize("name,args", [("TPE", {"tpe_args": {"n_startup_jobs": 3}}), ("Random", {}), ("Anneal", {}),
                                       ("Evolution", {"population_size": 3}), ("GridSearch", {})])
def test_tuner_state_pickles(name, args):
    """A tuner (its whole state) survives pickling, e.g. for an actor checkpoint."""
    import pickle
    t = create_algorithm("tuner", name, dict(args, seed=3) if name != "GridSearch" else args)
    t.update_search_space({"k": {"_type": "choice", "_value": [1, 2, 3, 4, 5, 6, 7]}} if name == "GridSearch" else SPACE)
    for i in range(6):
        p = t.generate_parameters(i)
        t.receive_trial_result(i, p, float(i))
        t.trial_end(i, True)
    clone = pickle.loads(pickle.dumps(t))
    assert clone.generate_parameters(6) == t.generate_parameters(6)
