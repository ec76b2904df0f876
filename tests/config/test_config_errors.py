"""Issue 8 (config items): every bad config input is a ConfigError naming the field, never
another exception and never silent acceptance; plus a property-based fuzz of the loader."""
from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nniray.config import ConfigError, build_config, load_config
from nniray.search_space import SearchSpaceError, check_parameters, parse


def base(tmp_path, **over):
    d = {"trialCommand": "python3 trial.py", "trialCodeDirectory": str(tmp_path), "trialConcurrency": 2,
         "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}, "tuner": {"name": "TPE"},
         "trainingService": {"platform": "local"}}
    d.update(over)
    return d


@pytest.mark.parametrize("over,field", [
    ({"trainingService": {"platform": "local", "gpuIndices": 0.5}}, "gpuIndices"),
    ({"trainingService": {"platform": "local", "gpuIndices": [0, "a"]}}, "gpuIndices"),
    ({"trainingService": {"platform": "local", "gpuIndices": -1}}, "gpuIndices"),
    ({"trialCodeDirectory": "/tmp/a\x00b"}, "trialCodeDirectory"),
    ({"searchSpaceFile": "ss\x00.json", "searchSpace": None}, "searchSpaceFile"),
    ({"experimentWorkingDirectory": "/x\x00"}, "experimentWorkingDirectory"),
    ({"maxExperimentDuration": float("nan")}, "maxExperimentDuration"),
    ({"maxExperimentDuration": float("inf")}, "maxExperimentDuration"),
    ({"maxTrialDuration": float("nan")}, "maxTrialDuration"),
    ({"trialCommand": ""}, "trialCommand"),
    ({"trialCommand": "   "}, "trialCommand"),
    ({"trialConcurrency": True}, "trialConcurrency"),
    ({"trialConcurrency": "2"}, "trialConcurrency"),
    ({"trialConcurrency": 2.0}, "trialConcurrency"),
    ({"trialConcurrency": 100000}, "trialConcurrency"),
    ({"trialConcurrency": 10 ** 400}, "trialConcurrency"),
    ({"maxTrialNumber": True}, "maxTrialNumber"),
    ({"searchSpace": {"": {"_type": "uniform", "_value": [0, 1]}}}, "search-space keys"),
])
def test_bad_input_is_a_config_error_naming_the_field(tmp_path, over, field):
    data = {k: v for k, v in base(tmp_path, **over).items() if v is not None}  # None: field removed
    with pytest.raises(ConfigError, match=field):
        build_config(data)


def test_yaml_nan_duration_is_refused(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text(yaml.safe_dump(base(tmp_path)).replace("trialConcurrency: 2", "trialConcurrency: 2\nmaxExperimentDuration: .nan"))
    with pytest.raises(ConfigError, match="maxExperimentDuration.*finite"):
        load_config(f)


def test_trial_code_directory_must_exist_and_be_a_folder_to_start(tmp_path):
    cfg = build_config(base(tmp_path, trialCodeDirectory=str(tmp_path / "nope")))  # parsing still works (view)
    with pytest.raises(ConfigError, match="trialCodeDirectory.*does not exist"):
        cfg.check_runnable()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="trialCodeDirectory.*not a directory"):
        build_config(base(tmp_path, trialCodeDirectory=str(tmp_path / "file"))).check_runnable()
    build_config(base(tmp_path)).check_runnable()


def test_a_sane_concurrency_is_accepted(tmp_path):
    assert build_config(base(tmp_path, trialConcurrency=10000)).trial_concurrency == 10000


def test_empty_search_space_key_is_refused_by_the_parser():
    with pytest.raises(SearchSpaceError, match="non-empty name"):
        parse({" ": {"_type": "choice", "_value": [1]}})


def test_import_records_outside_the_space_or_with_unknown_keys_are_refused():
    space = parse({"x": {"_type": "uniform", "_value": [0, 1]}, "n": {"_type": "randint", "_value": [1, 4]},
                   "c": {"_type": "choice", "_value": ["a", {"_name": "b", "y": {"_type": "uniform", "_value": [0, 1]}}]}})
    check_parameters(space, {"x": 0.5, "n": 3, "c": "a"})
    check_parameters(space, {"x": 0.5, "n": 3, "c": {"_name": "b", "y": 0.1}, "TRIAL_BUDGET": 3})
    for bad, msg in [({"x": 1.5, "n": 3, "c": "a"}, "outside"), ({"x": 0.5, "n": 4, "c": "a"}, "integer in"),
                     ({"x": 0.5, "n": 3, "c": "z"}, "not one of the choices"), ({"x": 0.5, "c": "a"}, "missing"),
                     ({"x": 0.5, "n": 3, "c": "a", "lr": 1}, "'lr' not in the search space"),
                     ({"x": 0.5, "n": 3, "c": {"_name": "b", "y": 7}}, "outside"),
                     ({"x": "big", "n": 3, "c": "a"}, "not a finite number")]:
        with pytest.raises(SearchSpaceError, match=msg):
            check_parameters(space, bad, "rec[0].parameter")


# -- property-based fuzz of the loader -------------------------------------------------------------

FIELDS = ["trialCommand", "trialCodeDirectory", "trialConcurrency", "maxTrialNumber", "maxExperimentDuration",
          "maxTrialDuration", "searchSpace", "searchSpaceFile", "tuner", "assessor", "advisor", "trainingService",
          "experimentWorkingDirectory", "useAnnotation", "logLevel", "trialGpuNumber", "tunerGpuIndices",
          "experimentName", "nniManagerIp", "sharedStorage", "debug"]
TS_FIELDS = ["platform", "gpuIndices", "useActiveGpu", "maxTrialNumberPerGpu", "trialCpuNumber", "rayAddress",
             "maxTrialRetries", "machineList", "host", "user"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 30, max_value=10 ** 30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["local", "remote", "TPE", "10m", ".", "/tmp/a\x00b", "0,1", "nan", "-1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)
service = st.dictionaries(st.sampled_from(TS_FIELDS), values, max_size=4).map(
    lambda d: d if "platform" in d else {**d, "platform": "local"})
configs = st.fixed_dictionaries({}, optional={
    **{f: values for f in FIELDS if f != "trainingService"}, "trainingService": st.one_of(service, values)})


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=configs)
def test_fuzz_the_config_loader_raises_only_config_errors(data):
    try:
        cfg = build_config(data)
    except ConfigError:
        return
    # what parsed must be usable: the derived values the runtime reads must not raise either
    for seconds in (cfg.max_experiment_seconds, cfg.max_trial_seconds):
        assert seconds is None or (math.isfinite(seconds) and seconds > 0)
    assert isinstance(cfg.trial_concurrency, int) and not isinstance(cfg.trial_concurrency, bool)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=configs)
def test_fuzz_through_yaml(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("fz") / "c.yml"
    try:
        f.write_text(yaml.safe_dump(data, allow_unicode=True))
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    try:
        load_config(f)
    except ConfigError:
        pass
