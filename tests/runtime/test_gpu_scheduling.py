"""GPU scheduling through Ray's resource accounting, on a node that declares 2 GPUs (Ray needs
no real device to schedule by them): fractional sharing with maxTrialNumberPerGpu, and
concurrency bounded by the GPUs a trial needs."""
from __future__ import annotations

import json
import subprocess
import sys

from runtime_helpers import make_config

SCRIPT = """
import json, os, time
import ray
ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False, namespace="nniray")
from nniray.config import build_config
from nniray.experiment import Experiment

def trial(params):
    t0 = time.time()
    time.sleep(1.5)
    return {{"default": 1.0, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": t0, "t1": time.time()}}

out = {{}}
for name, extra in {cases!r}.items():
    cfg = dict({base!r}, **extra)
    cfg["trial_function"] = trial
    exp = Experiment(build_config(cfg))
    exp.run()
    out[name] = [d.value for d in exp.export_data()]
print("RESULT " + json.dumps(out))
"""


def _max_overlap(values):
    events = sorted([(v["t0"], 1) for v in values] + [(v["t1"], -1) for v in values])
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_gpu_sharing_and_gpu_bound_concurrency(tmp_path):
    base = make_config(tmp_path, trialCommand=None, trial_function=print).json_dict()
    base.update(maxTrialNumber=4, trialConcurrency=4)
    cases = {
        "shared": {"trialGpuNumber": 1, "trainingService": {"platform": "local", "maxTrialNumberPerGpu": 2}},
        "two_each": {"trialGpuNumber": 2},
    }
    script = tmp_path / "gpu.py"
    script.write_text(SCRIPT.format(cases=cases, base=base))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=400, cwd=tmp_path)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    res = json.loads(line[0][7:])
    shared = res["shared"]
    assert len(shared) == 4
    assert {v["cuda"] for v in shared} <= {"0", "1"}  # one GPU each, two trials per GPU
    assert _max_overlap(shared) == 4
    two = res["two_each"]
    assert len(two) == 4 and all(sorted(v["cuda"].split(",")) == ["0", "1"] for v in two)
    assert _max_overlap(two) == 1  # each trial needs both GPUs: one at a time, never stuck
