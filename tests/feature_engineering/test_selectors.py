"""Issue 10: NNI's feature selectors (GradientFeatureSelector on torch, GBDTSelector on LightGBM)
on scikit-learn data sets."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_classification, make_regression

from nniray.feature_engineering import FeatureSelector, GBDTSelector, GradientFeatureSelector
from nniray.feature_engineering.feature_selector import FeatureSelectorError


@pytest.fixture(scope="module")
def planted():
    # 5 informative columns (0-4, shuffle=False) among 20; the rest is noise
    return make_classification(n_samples=300, n_features=20, n_informative=5, n_redundant=0, shuffle=False,
                               class_sep=1.5, random_state=0)


def test_gbdt_selector_finds_the_informative_columns(planted):
    X, y = planted
    sel = GBDTSelector().fit(X, y, lgb_params={"objective": "binary"}, eval_ratio=0.25, early_stopping_rounds=10,
                             importance_type="gain", num_boost_round=60)
    top = sel.get_selected_features(5)
    assert len(top) == 5 and len(set(top) & {0, 1, 2, 3, 4}) >= 4
    assert sel.get_selected_features(3) == top[:3]  # best first


def test_gbdt_selector_split_importance_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    sel = GBDTSelector().fit(X, y, importance_type="split", num_boost_round=30)
    top = sel.get_selected_features(10)
    assert len(set(top)) == 10 and all(0 <= i < X.shape[1] for i in top)
    with pytest.raises(FeatureSelectorError, match="topk"):
        sel.get_selected_features(0)
    with pytest.raises(FeatureSelectorError, match="importance_type"):
        GBDTSelector().fit(X, y, importance_type="cover")


def test_gradient_selector_prefers_informative_columns(planted):
    X, y = planted
    sel = GradientFeatureSelector(n_features=5, batch_size=300, n_epochs=1)
    sel.fit(X, y)
    chosen = sel.get_selected_features()
    assert len(chosen) == 5 and len(set(chosen) & {0, 1, 2, 3, 4}) >= 3
    noise = np.delete(sel.gates_, [0, 1, 2, 3, 4])
    assert sel.gates_[chosen[0]] > noise.max()


def test_gradient_selector_regression_and_default_selection():
    X, y = make_regression(n_samples=200, n_features=10, n_informative=2, shuffle=False, random_state=1)
    sel = GradientFeatureSelector(classification=False, batch_size=200, penalty=5)
    chosen = sel.fit(X, y).get_selected_features()
    assert set(chosen[:1]) <= {0, 1} and 1 <= len(chosen) <= 10


def test_errors_name_the_argument():
    with pytest.raises(FeatureSelectorError, match="order"):
        GradientFeatureSelector(order=0)
    with pytest.raises(FeatureSelectorError, match="fit"):
        GBDTSelector().get_selected_features(1)
    with pytest.raises(FeatureSelectorError, match="NaN"):
        GradientFeatureSelector().fit([[1.0, float("nan")], [2.0, 3.0]], [0, 1])
    with pytest.raises(FeatureSelectorError, match="n_features"):
        GradientFeatureSelector(n_features=50).fit(np.zeros((4, 3)), [0, 1, 0, 1])
    assert issubclass(GBDTSelector, FeatureSelector)


def test_nni_import_paths():
    from nniray.algorithms.feature_engineering.gbdt_selector import GBDTSelector as G
    from nniray.algorithms.feature_engineering.gradient_selector import FeatureGradientSelector as F
    assert G is GBDTSelector and F is GradientFeatureSelector
