import pathlib
import runpy

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "docs" / "compression_example.py"


def test_readme_example_runs(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "Conv2d(3, 8" in out and "Conv2d(8, 16" in out
    line = [l for l in out.splitlines() if l.startswith("FLOPs")][0]
    before, after = [int(v) for v in line.split(",")[0].split()[1::2]]
    assert after < before / 2
