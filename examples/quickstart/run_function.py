"""Function trials from a Python driver: the quickstart's main demo.

    python examples/quickstart/run_function.py

Tunes an SVM on scikit-learn's digits with TPE, 2 trials at a time on a local Ray, and prints
the best configuration.  Takes about a minute on a 2-core machine.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import nniray  # noqa: E402
from nniray.experiment import Experiment  # noqa: E402

from model import evaluate  # noqa: E402


def trial(params: dict) -> None:
    nniray.report_final_result(evaluate(params))


def main(max_trials: int = 30) -> float:
    exp = Experiment("local")
    exp.config.experiment_name = "quickstart-svm-digits (function trials)"
    exp.config.trial_function = trial
    exp.config.search_space = json.loads((HERE / "search_space.json").read_text())
    exp.config.tuner.name = "TPE"
    exp.config.tuner.class_args = {"optimize_mode": "maximize", "seed": 0}
    exp.config.trial_concurrency = 2
    exp.config.max_trial_number = max_trials
    exp.config.max_experiment_duration = "5m"
    exp.run()
    best = max(exp.export_data(), key=lambda r: r.value)
    print(f"best accuracy {best.value:.4f} with {best.parameter} (trial {best.trialJobId})")
    return best.value


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
