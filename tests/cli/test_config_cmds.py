"""Issue 10: `nniray config convert` and `nniray ss_gen` (real CLI processes)."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml


def nniray(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nniray.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_config_convert_writes_the_v2_file(tmp_path):
    v1 = tmp_path / "config.yml"
    v1.write_text(yaml.safe_dump({"authorName": "me", "trialConcurrency": 1, "trainingServicePlatform": "local",
                                  "searchSpacePath": "ss.json", "tuner": {"builtinTunerName": "Random"},
                                  "trial": {"command": "python3 t.py", "codeDir": "."}}))
    out = tmp_path / "v2.yml"
    r = nniray("config", "convert", "--config", str(v1), "--output", str(out))
    assert r.returncode == 0, r.stderr
    v2 = yaml.safe_load(out.read_text())
    assert v2 == {"trialConcurrency": 1, "searchSpaceFile": "ss.json", "tuner": {"name": "Random"},
                  "trialCommand": "python3 t.py", "trialCodeDirectory": ".", "trainingService": {"platform": "local"}}
    assert "authorName" in r.stdout + r.stderr
    r = nniray("config", "convert", "--config", str(v1), "--output", str(out))
    assert r.returncode == 1 and "--force" in r.stderr
    r = nniray("config", "convert", "--config", str(out))
    assert r.returncode == 1 and "not an NNI v1 config" in r.stderr


def test_ss_gen_writes_the_annotation_search_space(tmp_path):
    (tmp_path / "trial.py").write_text('"""@nni.variable(nni.quniform(1, 9, 2), name=k)"""\nk = 3\n')
    r = nniray("ss_gen", "--trial_command", "python3 trial.py", "--trial_dir", str(tmp_path),
               "--file", str(tmp_path / "ss.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "ss.json").read_text()) == {"trial/k": {"_type": "quniform", "_value": [1, 9, 2]}}
    (tmp_path / "bad.py").write_text('"""@nni.variable(nni.choice(1), name=z)"""\nq = 3\n')
    r = nniray("ss_gen", "--trial_command", "x", "--trial_dir", str(tmp_path), "--file", str(tmp_path / "o.json"))
    assert r.returncode == 1 and "bad.py:2" in r.stderr and "assignment to 'z'" in r.stderr
