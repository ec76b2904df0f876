"""Every NNI public name in docs/nni-compat.md imports under its nniray path (issue 10)."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "nni-compat.md"
ROW = re.compile(r"^\| `(nni[\w.]*)` \| `(nniray[\w.]*)` \| `(\w+)` \|")


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows.append(m.groups())
    return rows


ROWS = _rows()


def test_the_table_lists_the_issue_names():
    names = {(nni, name) for nni, _, name in ROWS}
    for mod, cls in [("nni.algorithms.hpo.tpe_tuner", "TpeTuner"), ("nni.algorithms.hpo.hyperopt_tuner", "HyperoptTuner"),
                     ("nni.algorithms.hpo.regularized_evolution_tuner", "RegularizedEvolutionTuner"),
                     ("nni.experiment.config", "RemoteConfig"), ("nni.compression.utils", "TorchEvaluator"),
                     ("nni.utils", "split_index"), ("nni", "silence_stdout"), ("nni", "Experiment")]:
        assert (mod, cls) in names
    assert len(ROWS) > 80


@pytest.mark.parametrize("nni_module,module,name", ROWS, ids=[f"{m}.{n}" for _, m, n in ROWS])
def test_name_imports(nni_module, module, name):
    assert module == nni_module.replace("nni", "nniray", 1)
    obj = getattr(importlib.import_module(module), name)
    assert obj is not None


def test_reexports_are_the_real_classes():
    from nniray.algorithms.hpo.tpe_tuner import TpeTuner
    from nniray.strategies.tpe import TpeTuner as Real
    from nniray.experiment.config import ExperimentConfig
    from nniray.config import ExperimentConfig as RealConfig
    assert TpeTuner is Real and ExperimentConfig is RealConfig


def test_top_level_helpers_behave():
    import logging

    import nniray
    from nniray.utils import extract_scalar_history, json2space, split_index
    assert nniray.get_next_parameters is nniray.get_next_parameter
    assert extract_scalar_history([1, {"default": 2.5}]) == [1.0, 2.5]
    assert split_index({"a": {"_index": 1, "_value": 3}, "b": 2}) == {"a": 3, "b": 2}
    assert json2space({"a": {"_type": "choice", "_value": [1, 2]}, "b": {"_type": "uniform", "_value": [0, 1]}}) == \
        ["root[a]-choice", "root[b]-uniform"]
    nniray.enable_global_logging()
    root = logging.getLogger()
    assert any(getattr(h, "_nniray_console", False) for h in root.handlers)
    nniray.silence_stdout()
    assert not any(getattr(h, "_nniray_console", False) for h in root.handlers)
    logging.getLogger("nniray").propagate = True  # leave logging as other tests expect it
