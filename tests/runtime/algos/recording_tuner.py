"""A user tuner (loaded by className + codeDirectory) that records what it was given, so the
fault tests can check exactly how it was rebuilt."""
import json
import os
import random

from nniray import Tuner


class RecordingTuner(Tuner):
    def __init__(self, record_dir, seed=0):
        self.record_dir = record_dir
        self.rng = random.Random(seed)
        self.results = {}
        os.makedirs(record_dir, exist_ok=True)

    def _log(self, kind, payload):
        with open(os.path.join(self.record_dir, "events.jsonl"), "a") as f:
            f.write(json.dumps({"kind": kind, "pid": os.getpid(), **payload}) + "\n")

    def update_search_space(self, search_space):
        self.space = search_space
        self._log("search_space", {"keys": sorted(search_space)})

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": self.rng.random(), "sleep": self.space.get("sleep", {}).get("_value", [0])[0]}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.results[parameter_id] = value
        self._log("result", {"parameter_id": parameter_id})

    def import_data(self, data):
        self._log("import", {"n": len(data)})
        for i, d in enumerate(data):
            self.results[f"imported-{i}"] = d["value"]


def events(record_dir):
    path = os.path.join(record_dir, "events.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path)]
