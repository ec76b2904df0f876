"""Parameter importance and slice data: the forest finds the parameter that drives the metric,
choices are one-hot encoded and summed back, and the routes read a bounded sample from a real
SQLite store through the app."""
from __future__ import annotations

import random

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("fastapi")

from nniray.web.analysis import importance_of  # noqa: E402


def _samples(n: int = 300, seed: int = 1):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = {"lr": rng.uniform(0, 1), "noise": rng.uniform(0, 1), "opt": rng.choice(["sgd", "adam", "rmsprop"])}
        value = 3 * p["lr"] + (1.5 if p["opt"] == "adam" else 0) + 0.05 * rng.random()
        out.append((p, value))
    return out


def test_the_parameter_that_drives_the_metric_ranks_first():
    imp = importance_of(_samples())
    assert set(imp) == {"lr", "noise", "opt"}
    assert imp["lr"] > imp["opt"] > imp["noise"]
    assert sum(imp.values()) == pytest.approx(1.0)


def test_choices_are_one_hot_encoded_and_summed_back_to_the_parameter():
    rng = random.Random(3)
    samples = [({"opt": c, "x": rng.random()}, 10.0 if c == "adam" else 0.0)
               for c in (rng.choice(["sgd", "adam", {"_name": "nested", "k": 1}]) for _ in range(200))]
    imp = importance_of(samples)
    assert set(imp) == {"opt", "x"}  # no per-category keys leak out
    assert imp["opt"] > 0.9


def test_a_constant_metric_gives_zero_importance():
    samples = [({"a": i, "b": "x"}, 1.0) for i in range(10)]
    assert importance_of(samples) == {"a": 0.0, "b": 0.0}


def test_missing_values_of_conditional_parameters_do_not_fail():
    samples = [({"a": i / 10, **({"b": i} if i % 2 else {})}, i / 10) for i in range(40)]
    imp = importance_of(samples)
    assert imp["a"] > 0


# ---- the routes over a real SQLite store --------------------------------------------------------
@pytest.fixture
def client(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from nniray.storage.sqlite_store import ExperimentStore
    from nniray.web import analysis

    store = ExperimentStore(tmp_path)
    rng = random.Random(5)
    for i in range(60):
        p = {"lr": rng.uniform(0, 1), "opt": rng.choice(["sgd", "adam"]), "seed": 7}
        tid = f"t{i:03d}"
        store.add_trial(tid, i, i, {"parameter_id": i, "parameter_source": "algorithm", "parameters": p},
                        status="SUCCEEDED")
        store.update_trial(tid, final={"default": 2 * p["lr"] + (1 if p["opt"] == "adam" else 0), "loss": 0.1})
    app = FastAPI()
    app.state.store = store
    app.include_router(analysis.router, prefix="/api/v1/nni")
    with TestClient(app) as c:
        yield c
    store.close()


def test_importance_route_ranks_the_stored_trials(client):
    r = client.get("/api/v1/nni/analysis/importance")
    assert r.status_code == 200
    body = r.json()
    assert body["method"] == "random-forest" and body["trials"] == 60 and body["downsampled"] is False
    imp = body["importance"]
    assert set(imp) == {"lr", "opt", "seed"} and imp["seed"] == 0.0 and imp["lr"] > 0.1 and imp["opt"] > 0.1


def test_slice_route_returns_value_metric_pairs(client):
    r = client.get("/api/v1/nni/analysis/slice", params={"param": "opt", "maxPoints": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 60 and body["downsampled"] is True and 0 < len(body["points"]) <= 10
    for value, final in body["points"]:
        assert value in ("sgd", "adam") and isinstance(final, float)


def test_slice_route_names_the_unknown_parameter(client):
    r = client.get("/api/v1/nni/analysis/slice", params={"param": "nope"})
    assert r.status_code == 400
    assert "nope" in r.json()["error"] and "lr" in r.json()["error"]
