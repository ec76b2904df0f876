"""NNI's ``GBDTSelector``: features ranked by a LightGBM model's importance.

As NNI's: ``GBDTSelector()`` then ``fit(X, y, lgb_params, eval_ratio, early_stopping_rounds,
importance_type, num_boost_round)`` trains LightGBM on a random ``1 - eval_ratio`` of the rows
with early stopping on the rest, and ``get_selected_features(topk)`` returns the ``topk`` columns
with the highest ``importance_type`` importance ('split' or 'gain'), best first.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .feature_selector import FeatureSelector, FeatureSelectorError, check_k, check_xy


class GBDTSelector(FeatureSelector):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_importance: np.ndarray | None = None
        self.model = None
        self.seed = kwargs.get("seed", 0)

    def fit(self, X: Any, y: Any, lgb_params: dict | None = None, eval_ratio: float = 0.2,
            early_stopping_rounds: int = 20, importance_type: str = "gain", num_boost_round: int = 100,
            **kwargs: Any) -> "GBDTSelector":
        import lightgbm as lgb

        X, y = check_xy(X, y)
        if not 0 < float(eval_ratio) < 1:
            raise FeatureSelectorError(f"eval_ratio must be in (0, 1), got {eval_ratio!r}")
        if importance_type not in ("split", "gain"):
            raise FeatureSelectorError(f"importance_type must be 'split' or 'gain', got {importance_type!r}")
        params = {"verbose": -1, "seed": self.seed, "num_threads": 1}
        params.update(lgb_params or {})
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(X))
        n_eval = max(1, int(round(len(X) * float(eval_ratio))))
        ev, tr = order[:n_eval], order[n_eval:]
        train = lgb.Dataset(X[tr], y[tr])
        valid = lgb.Dataset(X[ev], y[ev], reference=train)
        self.model = lgb.train(params, train, num_boost_round=int(num_boost_round), valid_sets=[valid],
                               callbacks=[lgb.early_stopping(int(early_stopping_rounds), verbose=False)])
        self.feature_importance = self.model.feature_importance(importance_type)
        self.X, self.y = X, y
        return self

    def get_selected_features(self, topk: int) -> list[int]:  # type: ignore[override]
        if self.feature_importance is None:
            raise FeatureSelectorError("call fit(X, y) before get_selected_features(topk)")
        topk = check_k("topk", topk, len(self.feature_importance))
        # stable sort: ties keep column order
        order = np.argsort(-self.feature_importance, kind="stable")
        self.selected_features_ = [int(i) for i in order[:topk]]
        return list(self.selected_features_)
