"""The model being tuned: an SVM on scikit-learn's bundled digits (no download)."""
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC

DEFAULTS = {"C": 1.0, "gamma": 0.001, "kernel": "rbf"}


def evaluate(params: dict) -> float:
    """Mean 3-fold cross-validated accuracy of an SVC with these hyperparameters."""
    X, y = load_digits(return_X_y=True)
    model = SVC(C=params["C"], gamma=params["gamma"], kernel=params["kernel"])
    return float(cross_val_score(model, X / 16.0, y, cv=3).mean())
