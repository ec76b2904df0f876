"""``nni.algorithms.hpo``: one module per NNI tuner/advisor/assessor, each a re-export."""
