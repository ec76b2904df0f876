"""Issue 10: NNI Annotation: rewritten trial code, generated search space, NNI's next-line rule."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nniray.annotation import AnnotationError, expand_annotations, generate_search_space, rewrite_source
from nniray.config import ConfigError, build_config

TRIAL = textwrap.dedent('''
    """An annotated trial (NNI's mnist-annotation style)."""
    import json, sys

    def pool_max(x):
        return max(x)

    def pool_min(x):
        return min(x)

    def main():
        """@nni.variable(nni.choice(0.1, 0.01, 0.001), name=learning_rate)"""
        learning_rate = 0.1
        """@nni.variable(nni.uniform(0.5, 0.9), name=dropout_rate)"""
        dropout_rate = 0.5
        """@nni.variable(nni.choice('relu', 'tanh'), name=act)"""
        act = 'relu'
        values = [1, 5, 3]
        """@nni.function_choice(pool_max(values), pool_min(values), name=pool_max)"""
        pooled = pool_max(values)
        for step in range(2):
            """@nni.report_intermediate_result(step * learning_rate)"""
        result = {"lr": learning_rate, "dropout": dropout_rate, "act": act, "pooled": pooled}
        print(json.dumps(result))
        """@nni.report_final_result(learning_rate + pooled)"""

    if __name__ == '__main__':
        main()
''')


@pytest.fixture()
def code(tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    (d / "mnist.py").write_text(TRIAL)
    (d / "helper.py").write_text("X = 1\n")
    return d


def test_search_space_is_generated_with_nni_keys(code):
    space = generate_search_space(code)
    assert space == {
        "mnist/learning_rate": {"_type": "choice", "_value": [0.1, 0.01, 0.001]},
        "mnist/dropout_rate": {"_type": "uniform", "_value": [0.5, 0.9]},
        "mnist/act": {"_type": "choice", "_value": ["relu", "tanh"]},
        "mnist/pool_max": {"_type": "choice", "_value": ["pool_max(values)", "pool_min(values)"]},
    }


def test_rewritten_copy_runs_standalone_with_the_original_values(code):
    dst, space = expand_annotations(code)
    assert Path(dst) != code and (Path(dst) / "helper.py").read_text() == "X = 1\n"
    assert json.loads((Path(dst) / "nni_auto_gen_search_space.json").read_text()) == space
    assert (code / "mnist.py").read_text() == TRIAL  # the user's file is untouched
    out = subprocess.run([sys.executable, "mnist.py"], cwd=dst, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    assert first == {"lr": 0.1, "dropout": 0.5, "act": "relu", "pooled": 5}


def test_rewritten_code_uses_the_tuners_values(code, tmp_path, monkeypatch):
    from nniray import trial
    dst, _ = expand_annotations(code)
    params = {"mnist/learning_rate": 0.01, "mnist/dropout_rate": 0.7, "mnist/act": "tanh",
              "mnist/pool_max": "pool_min(values)"}
    monkeypatch.setattr(trial, "get_current_parameter", lambda tag=None: params if tag is None else params.get(tag))
    reported = []
    monkeypatch.setattr(trial, "report_final_result", lambda v: reported.append(v))
    import nniray
    monkeypatch.setattr(nniray, "report_final_result", lambda v: reported.append(v))
    monkeypatch.setattr(nniray, "report_intermediate_result", lambda v: None)
    ns: dict = {"__name__": "not_main"}
    exec(compile((Path(dst) / "mnist.py").read_text(), "mnist.py", "exec"), ns)
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ns["main"]()
    assert json.loads(buf.getvalue()) == {"lr": 0.01, "dropout": 0.7, "act": "tanh", "pooled": 1}
    assert reported == [1.01]


@pytest.mark.parametrize("body,msg", [
    ('"""@nni.variable(nni.choice(1, 2), name=x)"""\ny = 1\n', "assignment to 'x'"),
    ('"""@nni.variable(nni.choice(1, 2), name=x)"""\nprint(1)\n', "must be an assignment"),
    ('"""@nni.variable(nni.choice(1, 2), name=x)"""\n', "must be an assignment"),
    ('"""@nni.variable(nni.gauss(1, 2), name=x)"""\nx = 1\n', "sampler must be one of"),
    ('"""@nni.variable(nni.uniform(1), name=x)"""\nx = 1\n', "takes 2 numbers"),
    ('"""@nni.variable(nni.uniform(0, 1))"""\nx = 1\n', "needs name="),
    ('"""@nni.magic(x)"""\n', "unknown annotation"),
])
def test_nni_rules_are_clear_errors(body, msg):
    with pytest.raises(AnnotationError, match=msg):
        rewrite_source(body, "m", "m.py")


def test_use_annotation_config_runs_from_the_copy_with_the_generated_space(code):
    cfg = build_config({"trialCommand": "python3 mnist.py", "trialCodeDirectory": str(code), "trialConcurrency": 1,
                        "useAnnotation": True, "tuner": {"name": "TPE"}, "trainingService": {"platform": "local"}})
    assert cfg.trial_code_directory != str(code) and (Path(cfg.trial_code_directory) / "mnist.py").exists()
    assert cfg.load_search_space()["mnist/dropout_rate"] == {"_type": "uniform", "_value": [0.5, 0.9]}
    assert cfg.use_annotation is False  # the stored config reads back as is
    build_config(cfg.json_dict())
    empty = code.parent / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="useAnnotation.*no @nni.variable"):
        build_config({"trialCommand": "x", "trialCodeDirectory": str(empty), "trialConcurrency": 1,
                      "useAnnotation": True, "tuner": {"name": "TPE"}})
