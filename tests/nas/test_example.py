"""The README's NAS example runs as a script (its model space and fit function live in __main__)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "nas_example.py"


@pytest.mark.slow  # starts its own Ray and trains 4 small models: ~40 s
def test_readme_nas_example_runs(tmp_path):
    env = dict(os.environ, NNIRAY_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", HOME=str(tmp_path))
    res = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "best architecture: {" in res.stdout and "DONE" in res.stdout
    assert "Conv2d(1, " in res.stdout
