"""Algorithm lookup and classArgs checks; the package layout imports the same from a wheel."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nniray.strategies.registry import AlgorithmError, create_algorithm, lookup

ROOT = Path(__file__).resolve().parents[1]


def test_lookup_and_class_args():
    assert lookup("tpe").name == "TPE"
    with pytest.raises(AlgorithmError, match="did you mean 'TPE'"):
        lookup("TPF", "tuner")
    with pytest.raises(AlgorithmError, match="is an assessor, not a tuner"):
        lookup("Medianstop", "tuner")
    with pytest.raises(AlgorithmError, match="classArgs.optimise_mode.*did you mean 'optimize_mode'"):
        create_algorithm("tuner", "Random", {"optimise_mode": "maximize"})


def test_core_imports_stay_light():
    out = subprocess.run([sys.executable, "-c", "import sys, nniray, nniray.search_space, nniray.config; "
                          "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_wheel_imports_every_subpackage(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("nniray-*.whl")
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import nniray, nniray.actors, nniray.strategies, nniray.training_services, nniray.compression, "
            "nniray.compression.pruning, nniray.compression.speedup, nniray.strategies.curvefitting, "
            "nniray.experiment, nniray.cli\n"
            "import os\nfor m in (nniray, nniray.actors, nniray.strategies, nniray.compression):\n"
            f"    assert m.__file__.startswith({str(target)!r}), m.__file__\n")
    env = dict(os.environ, PYTHONPATH=str(target))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)


def test_registered_algorithm_and_its_validator(tmp_path, monkeypatch):
    monkeypatch.setenv("NNIRAY_HOME", str(tmp_path / "home"))
    pkg = tmp_path / "code"
    pkg.mkdir()
    (pkg / "demo_tuner_mod.py").write_text(
        "from nniray import Tuner, ClassArgsValidator\n"
        "class DemoTuner(Tuner):\n"
        "    def __init__(self, optimize_mode='maximize', depth=1):\n"
        "        self.depth = depth\n"
        "    def update_search_space(self, s): self.s = s\n"
        "    def generate_parameters(self, i, **kw): return {}\n"
        "    def receive_trial_result(self, *a, **kw): pass\n"
        "class DemoValidator(ClassArgsValidator):\n"
        "    def validate_class_args(self, **kwargs):\n"
        "        self.range('depth', int, 1, 5)(kwargs.get('depth', 1))\n")
    monkeypatch.syspath_prepend(str(pkg))
    meta = tmp_path / "meta.yml"
    meta.write_text("algoType: tuner\nbuiltinName: demotuner\nclassName: demo_tuner_mod.DemoTuner\n"
                    "classArgsValidator: demo_tuner_mod.DemoValidator\n")
    from nniray.strategies import registry
    registry.register(meta)
    assert registry.lookup("demotuner").source == "User"
    assert create_algorithm("tuner", "demotuner", {"depth": 3}).depth == 3
    with pytest.raises(AlgorithmError, match=r"depth should be in range \[1, 5\]"):
        create_algorithm("tuner", "demotuner", {"depth": 9})
    with pytest.raises(AlgorithmError, match="built in and cannot be unregistered"):
        registry.unregister("TPE")
    registry.unregister("demotuner")
    with pytest.raises(AlgorithmError, match="unknown"):
        registry.lookup("demotuner")
