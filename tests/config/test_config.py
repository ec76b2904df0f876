"""NNI's v2 experiment config: YAML camelCase, Python snake_case, errors that name the field."""
import json

import pytest

from nniray.config import ConfigError, build_config, load_config, parse_duration

BASE = {"trialCommand": "python3 trial.py", "trialConcurrency": 2, "searchSpace": {}, "tuner": {"name": "TPE"}}


def _err(**over):
    cfg = dict(BASE)
    for k, v in over.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    with pytest.raises(ConfigError) as e:
        build_config(cfg)
    return str(e.value)


def test_yaml_relative_paths_search_space_file_and_durations(tmp_path):
    (tmp_path / "ss.json").write_text(json.dumps({"x": {"_type": "uniform", "_value": [0, 1]}}))
    (tmp_path / "exp.yml").write_text(
        "trialCommand: python3 trial.py\ntrialCodeDirectory: code\ntrialConcurrency: 3\nsearchSpaceFile: ss.json\n"
        "maxExperimentDuration: 1.5h\nmaxTrialDuration: 30m\nmaxTrialNumber: 10\n"
        "tuner:\n  name: TPE\n  classArgs:\n    optimize_mode: minimize\n"
        "trainingService:\n  platform: local\n  gpuIndices: '0,1'\n  useActiveGpu: false\n")
    cfg = load_config(tmp_path / "exp.yml")
    assert cfg.trial_code_directory == str(tmp_path / "code")
    assert cfg.search_space_file == str(tmp_path / "ss.json")
    assert cfg.load_search_space() == {"x": {"_type": "uniform", "_value": [0, 1]}}
    assert cfg.max_experiment_seconds == 5400 and cfg.max_trial_seconds == 1800
    assert cfg.training_service.gpu_indices == [0, 1]
    assert cfg.tuner.class_args == {"optimize_mode": "minimize"}
    assert cfg.json_dict()["maxTrialNumber"] == 10  # camelCase out


def test_python_snake_case_is_accepted():
    cfg = build_config({"trial_command": "x", "trial_concurrency": 1, "search_space": {}, "tuner": {"name": "TPE"}})
    assert cfg.trial_concurrency == 1


def test_errors_name_the_field():
    assert "trialConcurency: unknown field (did you mean 'trialConcurrency'?)" in _err(trialConcurency=3)
    assert _err(trialConcurrency="two").startswith("trialConcurrency:")
    assert "mutually exclusive" in _err(searchSpaceFile="ss.json")
    assert "trialCommand is required" in _err(trialCommand=None)
    assert "trialConcurrency: required field is missing" in _err(trialConcurrency=None)
    assert "maxExperimentDuration" in _err(maxExperimentDuration="1y")
    assert "trainingService.useActivGpu: unknown field (did you mean 'useActiveGpu'?)" in _err(
        trainingService={"platform": "local", "useActivGpu": True})
    assert "trainingService.machineList[0].user: required field is missing" in _err(
        trainingService={"platform": "remote", "machineList": [{"host": "h"}]})
    assert "unknown platform 'lokal'" in _err(trainingService={"platform": "lokal"})
    assert "advisor replaces tuner" in _err(advisor={"name": "Hyperband"})
    assert "not both" in _err(tuner={"name": "TPE", "className": "a.B"})
    assert "logLevel" in _err(logLevel="loud")
    assert "trialConcurrency" in _err(trialConcurrency=0)


def test_every_training_service_parses_but_only_local_runs():
    services = [
        {"platform": "remote", "machineList": [{"host": "10.0.0.1", "user": "me", "sshKeyFile": "~/.ssh/id_rsa"}]},
        {"platform": "openpai", "host": "pai", "username": "u", "token": "t", "trialCpuNumber": 2, "trialMemorySize": "8gb"},
        {"platform": "aml", "subscriptionId": "s", "resourceGroup": "g", "workspaceName": "w", "computeTarget": "c"},
        {"platform": "kubeflow", "operator": "tf-operator", "storage": {"storageType": "nfs", "server": "s", "path": "/p"},
         "worker": {"command": "python t.py", "dockerImage": "img", "replicas": 1}},
        {"platform": "frameworkcontroller", "storage": {"storageType": "nfs"},
         "taskRoles": [{"name": "w", "command": "x", "dockerImage": "i", "taskNumber": 1}]},
    ]
    for ts in services:
        cfg = build_config(dict(BASE, trainingService=ts))
        with pytest.raises(ConfigError, match="not implemented yet"):
            cfg.local_service()
    hybrid = build_config(dict(BASE, trainingService=[{"platform": "local"}, services[0]]))
    assert hybrid.platforms == ["local", "remote"]


def test_legacy_v1_yaml_is_refused_with_a_pointer(tmp_path):
    (tmp_path / "v1.yml").write_text("authorName: me\ntrainingServicePlatform: local\n")
    with pytest.raises(ConfigError, match="legacy v1"):
        load_config(tmp_path / "v1.yml")


def test_durations():
    assert parse_duration("10m", "f") == 600 and parse_duration("0.5h", "f") == 1800
    assert parse_duration(30, "f") == 30 and parse_duration("2d", "f") == 172800
    with pytest.raises(ConfigError):
        parse_duration("-1m", "f")
