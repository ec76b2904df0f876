"""Issue 10: NNI's config API (ExperimentConfig('local'), .json(), load, canonical_copy, validate)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nniray.config import ConfigError, ExperimentConfig, RemoteConfig
from nniray.experiment.config import AzureBlobConfig, NfsConfig


def _filled(tmp_path: Path) -> ExperimentConfig:
    cfg = ExperimentConfig("local")              # NNI's positional platform, filled field by field
    cfg.trial_command = "python3 trial.py"
    cfg.trial_code_directory = tmp_path         # a pathlib.Path, as NNI accepts
    cfg.trial_concurrency = 2
    cfg.search_space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    cfg.tuner.name = "TPE"                       # the placeholder section makes this work
    cfg.tuner.class_args = {"optimize_mode": "maximize"}
    cfg.max_experiment_duration = 5400
    return cfg


def test_positional_platform_and_json_is_nni_canonical_camel_case(tmp_path):
    cfg = _filled(tmp_path)
    cfg.validate()
    d = cfg.json()
    assert isinstance(d, dict)
    assert d["trialCommand"] == "python3 trial.py" and d["trialConcurrency"] == 2
    assert d["trialCodeDirectory"] == str(tmp_path.resolve())
    assert d["maxExperimentDuration"] == "90m"  # canonical duration
    assert d["tuner"] == {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}
    assert d["trainingService"]["platform"] == "local"
    assert "assessor" not in d and "advisor" not in d  # placeholders dropped
    assert json.loads(cfg.canonical_copy().model_dump_json(by_alias=True))["trialConcurrency"] == 2  # pydantic's string


def test_canonical_copy_is_validated_and_leaves_the_original(tmp_path):
    cfg = _filled(tmp_path)
    cfg.trial_code_directory = "."
    copy = cfg.canonical_copy()
    assert Path(copy.trial_code_directory).is_absolute() and cfg.trial_code_directory == "."
    assert copy.tuner.name == "TPE" and copy.assessor is None


def test_validate_names_the_field(tmp_path):
    cfg = ExperimentConfig("local")
    cfg.trial_command = "python3 trial.py"
    cfg.tuner.name = "TPE"
    with pytest.raises(ConfigError, match="trialConcurrency"):
        cfg.validate()
    cfg = _filled(tmp_path)
    cfg.trial_code_directory = tmp_path / "missing"
    with pytest.raises(ConfigError, match="trialCodeDirectory"):
        cfg.validate()


def test_load_from_path_objects(tmp_path):
    (tmp_path / "code").mkdir()
    f = tmp_path / "exp.yml"
    f.write_text(yaml.safe_dump({"trialCommand": "python3 t.py", "trialCodeDirectory": "code",
                                 "trialConcurrency": 1, "searchSpace": {}, "tuner": {"name": "Random"},
                                 "trainingService": {"platform": "local"}}))
    cfg = ExperimentConfig.load(f)
    assert cfg.trial_code_directory == str((tmp_path / "code").resolve())


def test_platform_configs_without_platform():
    r = RemoteConfig(machine_list=[{"host": "10.0.0.1", "user": "me"}])
    assert r.platform == "remote" and r.machine_list[0].port == 22
    assert NfsConfig(local_mount_point="/a", remote_mount_point="/b", local_mounted="usermount").storage_type == "NFS"
    assert AzureBlobConfig(local_mount_point="/a", remote_mount_point="/b",
                           local_mounted="nnimount").storage_type == "AzureBlob"
    cfg = ExperimentConfig("remote")
    assert cfg.training_service.platform == "remote"


def test_keyword_construction_takes_paths(tmp_path):
    cfg = ExperimentConfig(trial_command="python3 t.py", trial_concurrency=1, tuner={"name": "TPE"},
                           trial_code_directory=tmp_path, search_space_file=tmp_path / "ss.json")
    assert cfg.trial_code_directory == str(tmp_path) and cfg.search_space_file == str(tmp_path / "ss.json")
