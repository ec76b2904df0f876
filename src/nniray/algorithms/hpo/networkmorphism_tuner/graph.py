"""NNI's trial-side helper path ``nni.algorithms.hpo.networkmorphism_tuner.graph``."""
from nniray.strategies.networkmorphism.graph import Graph, graph_to_json, json_to_graph  # noqa: F401

__all__ = ["Graph", "json_to_graph", "graph_to_json"]
