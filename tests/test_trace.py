"""nniray.trace additions for NAS: serialize, recipes (rebuild elsewhere), serializability check."""
import pickle
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

import nniray
from nniray.trace import NotSerializableError, check_serializable, dump_recipe, get_trace, load_recipe, serialize


def test_serialize_is_trace_of_class_and_args():
    loader = serialize(torch.utils.data.DataLoader, [1, 2, 3], batch_size=2)
    assert get_trace(loader).kwargs == {"batch_size": 2}
    assert [b.tolist() for b in loader] == [[1, 2], [3]]


def test_recipe_rebuilds_nested_traced_objects():
    ds = nniray.trace(torch.utils.data.TensorDataset)(torch.arange(6.0))
    loader = nniray.trace(torch.utils.data.DataLoader)(ds, batch_size=4)
    recipe = pickle.loads(pickle.dumps(dump_recipe({"train": loader, "n": 3})))
    rebuilt = load_recipe(recipe)
    assert rebuilt["n"] == 3 and rebuilt["train"] is not loader
    assert [b[0].tolist() for b in rebuilt["train"]] == [[0, 1, 2, 3], [4, 5]]
    assert get_trace(rebuilt["train"]).args[0] is not ds  # the dataset was rebuilt from its recipe too


def test_check_serializable_names_argument_and_says_trace():
    check_serializable({"lr": 0.1, "fn": len}, "FunctionalEvaluator argument 'cfg'")
    with pytest.raises(NotSerializableError, match="argument 'lock'.*nniray.trace"):
        check_serializable(threading.Lock(), "FunctionalEvaluator argument 'lock'")


def test_traced_object_from_main_rebuilds_in_another_process(tmp_path):
    script = tmp_path / "make.py"
    script.write_text(textwrap.dedent('''
        import cloudpickle, sys
        import nniray
        from nniray.trace import dump_recipe
        class Box:
            def __init__(self, a, b=2):
                self.a, self.b = a, b
        box = nniray.trace(Box)(1, b=5)
        with open(sys.argv[1], "wb") as f:
            cloudpickle.dump(dump_recipe(box), f)
    '''))
    out = tmp_path / "r.pkl"
    subprocess.run([sys.executable, str(script), str(out)], check=True)
    code = ("import pickle,sys; from nniray.trace import load_recipe; b = load_recipe(pickle.load(open(sys.argv[1],'rb')));"
            "print(b.a, b.b)")
    res = subprocess.run([sys.executable, "-c", code, str(out)], check=True, capture_output=True, text=True)
    assert res.stdout.split() == ["1", "5"]
