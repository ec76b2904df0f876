"""NNI's ``nni.algorithms`` import paths: thin re-exports of the algorithms in ``nniray.strategies``.

The real code stays in ``strategies/`` (plain Python, no Ray); these modules exist so that code
written for NNI (``from nni.algorithms.hpo.tpe_tuner import TpeTuner``) works after ``nni`` →
``nniray``.  The table of every name is docs/nni-compat.md.
"""
