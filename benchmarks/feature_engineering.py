"""Feature selection quality: nniray's GBDTSelector and GradientFeatureSelector vs scikit-learn's
SelectKBest (ANOVA F) and SelectFromModel (L1 logistic regression / random forest) at equal k.

Each selector picks k columns on the training folds only; a logistic regression on those k
columns is scored by 5-fold cross-validated accuracy.  Usage (repository root):

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/feature_engineering.py [--quick]

Prints a markdown table (mean accuracy over folds, and selection time).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nniray.feature_engineering import GBDTSelector, GradientFeatureSelector


def select_kbest(X, y, k):
    return list(np.argsort(-SelectKBest(f_classif, k=k).fit(X, y).scores_)[:k])


def select_l1(X, y, k):
    m = LogisticRegression(penalty="l1", solver="saga", C=0.5, max_iter=3000).fit(StandardScaler().fit_transform(X), y)
    imp = np.abs(m.coef_).sum(axis=0)
    return list(np.argsort(-imp)[:k])


def select_rf(X, y, k):
    sel = SelectFromModel(RandomForestClassifier(n_estimators=100, random_state=0), max_features=k,
                          threshold=-np.inf).fit(X, y)
    return list(np.flatnonzero(sel.get_support()))


def select_gbdt(X, y, k):
    return GBDTSelector().fit(X, y, num_boost_round=100).get_selected_features(k)


def select_grad(X, y, k):
    return GradientFeatureSelector(n_features=k, batch_size=min(len(X), 500)).fit(X, y).get_selected_features()


SELECTORS = {"SelectKBest (ANOVA F)": select_kbest, "SelectFromModel (L1 logistic)": select_l1,
             "SelectFromModel (random forest)": select_rf, "nniray GBDTSelector": select_gbdt,
             "nniray GradientFeatureSelector": select_grad}


def datasets(quick: bool):
    X, y = make_classification(n_samples=600, n_features=50, n_informative=6, n_redundant=4, random_state=0)
    yield "synthetic 50 cols, 6 informative", X, y, 6
    X, y = make_classification(n_samples=300, n_features=200, n_informative=8, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=1)
    yield "synthetic 200 cols, 8 informative, 3 classes, 300 rows", X, y, 8
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer (30 cols)", X, y, 5
    if not quick:
        X, y = load_digits(return_X_y=True)
        yield "digits (64 cols)", X, y, 16


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="two data sets, 3 folds")
    args = ap.parse_args()
    folds = 3 if args.quick else 5
    print(f"| data set | k | " + " | ".join(SELECTORS) + " |")
    print("|---|---|" + "---|" * len(SELECTORS))
    for name, X, y, k in datasets(args.quick):
        cells = []
        for fn in SELECTORS.values():
            accs, secs = [], []
            for tr, te in StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y):
                t0 = time.process_time()
                cols = fn(X[tr], y[tr], k)
                secs.append(time.process_time() - t0)
                clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X[tr][:, cols], y[tr])
                accs.append(clf.score(X[te][:, cols], y[te]))
            cells.append(f"{np.mean(accs):.3f} ({np.mean(secs):.2f} s)")
        print(f"| {name} | {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
