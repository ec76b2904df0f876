"""Helpers shared by the runtime tests."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
ALGOS = HERE / "algos"


def make_config(tmp_path, **over):
    """A small valid experiment config dict (camelCase) in ``tmp_path``."""
    from nniray.config import build_config
    cfg = {
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "tuner": {"name": "Random", "classArgs": {"seed": 0}},
        "trialConcurrency": 2,
        "maxTrialNumber": 6,
        "experimentWorkingDirectory": str(tmp_path / "exps"),
        "trialCodeDirectory": str(tmp_path),
    }
    cfg.update(over)
    if "trialCommand" not in cfg and "trial_function" not in cfg:
        cfg["trialCommand"] = f"{sys.executable} trial.py"
    return build_config(cfg)


def write_trial(tmp_path, body: str, name: str = "trial.py") -> Path:
    p = tmp_path / name
    p.write_text("import nniray as nni\n" + body)
    return p
