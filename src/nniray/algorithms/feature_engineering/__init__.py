"""NNI's ``nni.algorithms.feature_engineering`` paths (re-exports of ``nniray.feature_engineering``)."""
