"""The trial side: standalone semantics, metric checks, the command-trial file channel."""
import json
import math
import os
import subprocess
import sys

import pytest

import nniray
from nniray.utils import MetricError, merge_parameter


def test_standalone_mode(capsys):
    assert nniray.get_next_parameter() == {}
    assert nniray.get_experiment_id() == "STANDALONE" and nniray.get_trial_id() == "STANDALONE"
    assert nniray.get_sequence_id() == 0
    nniray.report_intermediate_result(0.5)
    nniray.report_final_result({"default": 0.9, "loss": 0.1})
    out = capsys.readouterr().out
    assert "intermediate result: 0.5" in out and "final result" in out


@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.9", {"acc": 1}, {"default": "x"}, None, True])
def test_bad_metrics_are_refused_at_the_call(bad):
    with pytest.raises(MetricError, match="report_final_result"):
        nniray.report_final_result(bad)


def test_command_trial_channel(tmp_path):
    (tmp_path / "parameter.cfg").write_text(json.dumps({"parameter_id": 7, "parameter_source": "algorithm",
                                                         "parameters": {"lr": 0.1}}))
    code = ("import nniray as nni, sys\n"
            "p = nni.get_next_parameter(); assert nni.get_next_parameter() is None\n"
            "nni.report_intermediate_result(1)\nnni.report_final_result({'default': p['lr'], 'x': 2})\n"
            "print(nni.get_trial_id(), nni.get_sequence_id(), nni.get_experiment_id())\n"
            "assert 'ray' not in sys.modules and 'torch' not in sys.modules and 'numpy' not in sys.modules\n")
    env = dict(os.environ, NNI_PLATFORM="local", NNI_SYS_DIR=str(tmp_path), NNI_TRIAL_JOB_ID="abcde",
               NNI_EXP_ID="exp1", NNI_TRIAL_SEQ_ID="4")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["abcde", "4", "exp1"]
    recs = [json.loads(l) for l in (tmp_path / ".nni" / "metrics").read_text().splitlines()]
    assert [(r["type"], r["value"]) for r in recs] == [("PERIODICAL", 1), ("FINAL", {"default": 0.1, "x": 2})]


def test_merge_parameter():
    base = {"lr": 0.1, "epochs": 3}
    assert merge_parameter(base, {"epochs": "5"}) == {"lr": 0.1, "epochs": 5}
    with pytest.raises(ValueError, match="not found"):
        merge_parameter(base, {"momentum": 0.9})
