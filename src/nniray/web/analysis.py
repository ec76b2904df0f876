"""Analysis routes of the web UI: parameter importance and slice plots.

Both read a bounded, evenly thinned sample of the finished trials through the store's read
port (:meth:`~nniray.storage.trial_store.TrialStore.finals`), never a whole table, so they
answer in bounded time and memory at any experiment size.  Importance is a random forest's
mean decrease in impurity (the estimator Optuna's dashboard offers besides fANOVA) over the
parameters, choices one-hot encoded and their importances summed back to the parameter.
"""
from __future__ import annotations

import json
import math
import threading
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["analysis"])

# A forest over a thousand rows is a fraction of a second; more adds little to the ranking.
IMPORTANCE_SAMPLE = 1000
MIN_TRIALS = 4
SLICE_MAX_POINTS = 10000


def _store(request: Request) -> Any:
    """The experiment's read store: the session's once it has started (the daemon's app is built
    before the experiment's directory is known), else the app's own."""
    state = request.app.state
    session = getattr(state, "session", None)
    if session is not None:
        if hasattr(session, "require_ready"):
            session.require_ready()  # 503 {error} until the experiment has started
        store = getattr(session, "store", None)
    else:
        store = getattr(state, "store", None)
    if store is None:
        raise RuntimeError("the web app has no experiment store (app.state.session.store or app.state.store)")
    return store


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _sample(store: Any, max_points: int) -> tuple[int, list[tuple[dict, float]]]:
    """``(total, [(parameters, final value)])`` of finished trials with a numeric final value."""
    total, trials = store.finals(max_points)
    out = []
    for t in trials:
        value = t.final_value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append((t.parameters, float(value)))
    return total, out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _category(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def importance_of(samples: list[tuple[dict, float]], seed: int = 0) -> dict[str, float]:
    """Each parameter's share of a random forest's impurity decrease (sums to 1).

    A parameter whose values are all numbers is one feature; any other (choices, nested
    choices, strings, booleans) is one-hot encoded and its columns' importances are summed.
    A parameter missing from a trial (conditional spaces) counts as its own category / the
    median.  Parameters that never vary get 0.
    """
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    names = sorted({k for params, _ in samples for k in params})
    columns: list[np.ndarray] = []
    owner: list[str] = []
    for name in names:
        values = [params.get(name) for params, _ in samples]
        present = [v for v in values if v is not None]
        if present and all(_is_number(v) for v in present):
            fill = float(np.median([float(v) for v in present]))
            columns.append(np.array([float(v) if v is not None else fill for v in values]))
            owner.append(name)
        else:
            cats = sorted({_category(v) for v in values})
            for cat in cats:
                columns.append(np.array([1.0 if _category(v) == cat else 0.0 for v in values]))
                owner.append(name)
    if not columns:
        return {}
    x = np.column_stack(columns)
    y = np.array([value for _, value in samples])
    if float(np.ptp(y)) == 0.0:
        return {name: 0.0 for name in names}
    forest = RandomForestRegressor(n_estimators=32, max_depth=10, min_samples_leaf=3, random_state=seed, n_jobs=1)
    forest.fit(x, y)
    scores = {name: 0.0 for name in names}
    for name, share in zip(owner, forest.feature_importances_):
        scores[name] += float(share)
    return scores


class _Cache:
    """The last importance answer per store, kept until the number of finished trials changes
    (an open Plots page asks again whenever trials finish)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._value: dict | None = None

    def get(self, key: tuple) -> dict | None:
        with self._lock:
            return self._value if key == self._key else None

    def put(self, key: tuple, value: dict) -> None:
        with self._lock:
            self._key, self._value = key, value


_cache = _Cache()


@router.get("/analysis/importance", summary="Parameter importance for the final metric (random forest)")
def importance(request: Request) -> Any:
    store = _store(request)
    total, samples = _sample(store, IMPORTANCE_SAMPLE)
    key = (id(store), total, len(samples))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    answer: dict[str, Any] = {"method": "random-forest", "trials": len(samples), "total": total,
                              "downsampled": len(samples) < total, "importance": {}}
    if len(samples) < MIN_TRIALS:
        answer["message"] = (f"importance needs at least {MIN_TRIALS} trials with a numeric final metric; "
                             f"this experiment has {len(samples)} so far")
    else:
        answer["importance"] = importance_of(samples)
    _cache.put(key, answer)
    return answer


@router.get("/analysis/slice", summary="One parameter's values against the final metric")
def slice_points(request: Request, param: str = Query(..., min_length=1, max_length=200),
                 maxPoints: int = Query(2000, ge=1, le=SLICE_MAX_POINTS)) -> Any:  # noqa: N803 (NNI-style name)
    store = _store(request)
    names = store.param_names()
    if param not in names:
        shown = ", ".join(names[:20]) or "none yet"
        return _error(400, f"param {param!r} is not a parameter of this experiment; parameters: {shown}")
    total, samples = _sample(store, maxPoints)
    points = [[params[param], value] for params, value in samples if param in params]
    return {"param": param, "points": points, "total": total, "downsampled": len(samples) < total}
