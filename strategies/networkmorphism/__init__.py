"""NNI's NetworkMorphism tuner: architecture search by network morphism + Bayesian optimisation.

``from nniray.strategies.networkmorphism.graph import json_to_graph`` is the trial-side helper
(NNI: ``nni.algorithms.hpo.networkmorphism_tuner.graph``).  Torch is imported only when a model
is produced.
"""
from .graph import Graph, graph_to_json, json_to_graph
from .networkmorphism_tuner import NetworkMorphismTuner

__all__ = ["NetworkMorphismTuner", "Graph", "json_to_graph", "graph_to_json"]
