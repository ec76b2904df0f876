"""Side-by-side HPO benchmark: nniray tuners against hyperopt, Optuna, bayesian-optimization and
SMAC3 on the same problems, budgets and seeds.  Run ``python -m benchmarks.hpo.run --help``."""
