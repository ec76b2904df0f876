"""Issue 10: NNI's legacy v1 config runs converted to v2, with a notice."""
from __future__ import annotations

import textwrap

import pytest

from nniray.config import ConfigError, load_config
from nniray.config.legacy import convert_v1

V1 = textwrap.dedent("""
    authorName: default
    experimentName: example_mnist
    trialConcurrency: 2
    maxExecDuration: 1h
    maxTrialNum: 10
    trainingServicePlatform: local
    searchSpacePath: search_space.json
    useAnnotation: false
    tuner:
      builtinTunerName: TPE
      classArgs:
        optimize_mode: maximize
    assessor:
      builtinAssessorName: Medianstop
      classArgs:
        optimize_mode: maximize
    trial:
      command: python3 mnist.py
      codeDir: .
      gpuNum: 0
    localConfig:
      maxTrialNumPerGpu: 2
""")


def test_v1_file_loads_as_v2_with_a_notice(tmp_path, capsys):
    (tmp_path / "search_space.json").write_text('{"lr": {"_type": "uniform", "_value": [0, 1]}}')
    f = tmp_path / "config.yml"
    f.write_text(V1)
    cfg = load_config(f)
    assert cfg.trial_command == "python3 mnist.py" and cfg.trial_concurrency == 2 and cfg.max_trial_number == 10
    assert cfg.max_experiment_seconds == 3600 and cfg.trial_gpu_number == 0
    assert cfg.tuner.name == "TPE" and cfg.tuner.class_args == {"optimize_mode": "maximize"}
    assert cfg.assessor.name == "Medianstop"
    assert cfg.training_service.platform == "local" and cfg.training_service.max_trial_number_per_gpu == 2
    assert cfg.trial_code_directory == str(tmp_path.resolve())
    assert cfg.load_search_space() == {"lr": {"_type": "uniform", "_value": [0, 1]}}
    err = capsys.readouterr().err
    assert "legacy v1" in err and "nniray config convert" in err and "authorName" in err


def test_custom_tuner_and_remote_machines():
    v2, notes = convert_v1({"authorName": "a", "trainingServicePlatform": "remote", "trialConcurrency": 1,
                            "tuner": {"codeDir": "tuners", "classFileName": "demo_tuner.py", "className": "DemoTuner",
                                      "classArgs": {"a": 1}, "gpuIndices": "0"},
                            "trial": {"command": "python3 t.py", "codeDir": "."},
                            "machineList": [{"ip": "10.1.1.1", "port": 22, "username": "me", "passwd": "pw"}],
                            "remoteConfig": {"reuse": True}})
    assert v2["tuner"] == {"classArgs": {"a": 1}, "codeDirectory": "tuners", "className": "demo_tuner.DemoTuner"}
    assert v2["tunerGpuIndices"] == "0"
    assert v2["trainingService"] == {"platform": "remote", "reuseMode": True,
                                     "machineList": [{"host": "10.1.1.1", "port": 22, "user": "me", "password": "pw"}]}
    assert any("authorName" in n for n in notes)


@pytest.mark.parametrize("data,field", [
    ({"authorName": "a", "trial": {"command": "x", "codeDir": ".", "memoryMB": 4}}, "trial.memoryMB"),
    ({"authorName": "a", "tuner": {"builtinTunerName": "TPE", "speed": 1}}, "tuner.speed"),
    ({"authorName": "a", "kubeflowConfig": {}}, "kubeflowConfig"),
    ({"authorName": "a", "bogus": 1}, "bogus"),
])
def test_unknown_or_unsupported_v1_keys_are_named(data, field):
    with pytest.raises(ConfigError, match=field):
        convert_v1(data)
