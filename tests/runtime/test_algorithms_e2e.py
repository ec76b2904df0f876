"""Every built-in algorithm runs in a real experiment on Ray, from Python (function trials) and
from YAML (command trials, ``Experiment.from_yaml``), and its trials get parameters that fit
the search space."""
from __future__ import annotations

import json
import sys

import pytest
import yaml

from nniray.config import load_config
from nniray.experiment import Experiment

from runtime_helpers import make_config

pytestmark = pytest.mark.usefixtures("ray_session")

MIXED = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "units": {"_type": "randint", "_value": [1, 8]},
    "opt": {"_type": "choice", "_value": ["sgd", "adam"]},
    "drop": {"_type": "quniform", "_value": [0, 0.5, 0.1]},
}
NESTED = dict(MIXED, layer={"_type": "choice", "_value": [
    {"_name": "conv", "k": {"_type": "choice", "_value": [3, 5]}}, {"_name": "pool"}]})
NUMERIC = {"x": {"_type": "uniform", "_value": [-2, 2]}, "n": {"_type": "randint", "_value": [0, 4]},
           "c": {"_type": "choice", "_value": [1, 2, 4]}}
GRID = {"a": {"_type": "choice", "_value": [1, 2]}, "b": {"_type": "quniform", "_value": [0, 1, 0.5]}}
BATCH = {"combine_params": {"_type": "choice", "_value": [{"a": 1, "b": 2}, {"a": 3}, {"a": 5, "b": 0}]}}

# name -> (kind, classArgs, search space, trials, expected trial count or None)
CASES = {
    "TPE": ("tuner", {"seed": 0}, NESTED, 6, 6),
    "Random": ("tuner", {"seed": 0}, NESTED, 6, 6),
    "Anneal": ("tuner", {"seed": 0}, NESTED, 6, 6),
    "Evolution": ("tuner", {"seed": 0, "population_size": 4}, NESTED, 6, 6),
    "GridSearch": ("tuner", {}, GRID, 50, 6),
    "BatchTuner": ("tuner", {}, BATCH, 50, 3),
    "GPTuner": ("tuner", {"seed": 0, "cold_start_num": 3}, NUMERIC, 5, 5),
    "MetisTuner": ("tuner", {"seed": 0, "cold_start_num": 3}, NUMERIC, 5, 5),
    "SMAC": ("tuner", {"seed": 0}, NUMERIC, 4, 4),
    "DNGOTuner": ("tuner", {"seed": 0, "trials_per_update": 3, "num_epochs_per_training": 20}, NUMERIC, 5, 5),
    "PPOTuner": ("tuner", {"seed": 0, "trials_per_update": 3, "minibatch_size": 1}, MIXED, 5, 5),
    "NetworkMorphism": ("tuner", {"seed": 0, "input_width": 8, "input_channel": 1, "n_output_node": 3}, {}, 3, 3),
    "PBTTuner": ("tuner", {"seed": 0, "population_size": 2}, MIXED, 6, 6),
    "Hyperband": ("advisor", {"R": 3, "eta": 3, "seed": 0}, MIXED, 50, None),
    "BOHB": ("advisor", {"min_budget": 1, "max_budget": 3, "eta": 3, "seed": 0}, MIXED, 7, 7),
    "Medianstop": ("assessor", {"start_step": 1}, MIXED, 6, 6),
    "Curvefitting": ("assessor", {"epoch_num": 6, "start_step": 3}, MIXED, 5, 5),
}

TRIAL_BODY = """
import json, os
p = nni.get_next_parameter()
if isinstance(p, dict) and "save_checkpoint_dir" in p:
    os.makedirs(p["save_checkpoint_dir"], exist_ok=True)
text = json.dumps(p, sort_keys=True, default=str)
score = (sum(map(ord, text)) % 97) / 97.0
for i in range(6):
    nni.report_intermediate_result(score * (i + 1) / 6)
nni.report_final_result(score)
"""


def _function_trial(params):
    import json as _json
    import os as _os

    import nniray as _nni
    if isinstance(params, dict) and "save_checkpoint_dir" in params:
        _os.makedirs(params["save_checkpoint_dir"], exist_ok=True)
    text = _json.dumps(params, sort_keys=True, default=str)
    score = (sum(map(ord, text)) % 97) / 97.0
    for i in range(6):
        _nni.report_intermediate_result(score * (i + 1) / 6)
    _nni.report_final_result(score)


def _config_dict(name, home):
    kind, args, space, trials, _ = CASES[name]
    args = dict(args)
    if name == "PBTTuner":
        args["all_checkpoint_dir"] = str(home / "ckpt")
    cfg = {"searchSpace": space, "trialConcurrency": 2, "maxTrialNumber": trials,
           "experimentWorkingDirectory": str(home / "exps"), "trialCodeDirectory": str(home)}
    if kind == "assessor":
        cfg["tuner"] = {"name": "Random", "classArgs": {"seed": 0}}
        cfg["assessor"] = {"name": name, "classArgs": args}
    else:
        cfg[kind] = {"name": name, "classArgs": args}
    return cfg


def _check(exp, name):
    kind, _, space, _, expected = CASES[name]
    jobs = exp.list_trial_jobs()
    assert exp.get_status() in ("DONE", "STOPPED")
    if expected is not None:
        assert len(jobs) == expected
    assert jobs, "no trial ran"
    ok = ("SUCCEEDED", "EARLY_STOPPED") if kind == "assessor" else ("SUCCEEDED",)
    assert all(t.status in ok for t in jobs), [(t.status, t.message) for t in jobs]
    from nniray.search_space import parse
    parsed = parse(space) if space and name != "BatchTuner" else None
    for t in jobs:
        params = t.hyperParameters[0]["parameters"]
        if kind == "advisor":
            assert params.pop("TRIAL_BUDGET") > 0
        if name == "PBTTuner":
            assert {"load_checkpoint_dir", "save_checkpoint_dir"} <= set(params)
            params = {k: v for k, v in params.items() if k in space}
        if parsed is not None:
            parsed.flatten(params)  # raises if a value is outside the space
        if name == "BatchTuner":
            assert params in BATCH["combine_params"]["_value"]


def test_search_space_file_in_yaml_reaches_the_trials(home):
    (home / "trial.py").write_text("import nniray as nni\n" + TRIAL_BODY)
    (home / "space.json").write_text(json.dumps(MIXED))
    data = _config_dict("TPE", home)
    del data["searchSpace"]
    data.update(searchSpaceFile="space.json", trialCommand=f"{sys.executable} trial.py", trialCodeDirectory=".",
                maxTrialNumber=3)
    (home / "config.yml").write_text(yaml.safe_dump(data))
    exp = Experiment(load_config(home / "config.yml"))
    assert exp.run() is True
    for t in exp.list_trial_jobs():
        assert set(t.hyperParameters[0]["parameters"]) == set(MIXED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_algorithm_from_python(home, name):
    from nniray.config import build_config
    data = _config_dict(name, home)
    data["trial_function"] = _function_trial
    exp = Experiment(build_config(data))
    assert exp.run() is True, exp.get_errors()
    _check(exp, name)


FAST_YAML = {"TPE", "GridSearch", "Hyperband", "Medianstop"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in FAST_YAML else pytest.mark.slow)
                                  for n in sorted(CASES)])
def test_algorithm_from_yaml(home, name):
    (home / "trial.py").write_text("import nniray as nni\n" + TRIAL_BODY)
    data = _config_dict(name, home)
    data["trialCommand"] = f"{sys.executable} trial.py"
    data["trialCodeDirectory"] = "."
    data["experimentWorkingDirectory"] = "exps"
    (home / "config.yml").write_text(yaml.safe_dump(data))
    cfg = load_config(home / "config.yml")  # relative paths resolve against the YAML's folder
    assert cfg.trial_code_directory == str(home)
    exp = Experiment(cfg)
    assert exp.run() is True, exp.get_errors()
    _check(exp, name)
