"""NetworkMorphismTuner: NNI's Autokeras-style architecture search for CV.

It ignores the search space (configure ``searchSpace: {}``): what it searches is the network
graph itself.  ``generate_parameters`` returns the graph JSON **string** (as NNI does); the trial
builds the model with ``json_to_graph(params).produce_torch_model()`` and reports a metric
(accuracy with ``optimize_mode: maximize``).  Every generated graph is also written to
``<log dir>/<path>/<model id>.json``; the best model id goes to ``best_model.txt``
(``best model: <id>``).  ``<log dir>`` is ``$NNI_LOG_DIRECTORY`` (the tuner's log directory in an
experiment) or the current directory.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from nniray.tuner import Tuner
from nniray.utils import OptimizeMode, extract_scalar_reward, parse_optimize_mode

from .bayesian import BayesianOptimizer
from .graph import Graph, graph_to_json, json_to_graph
from .graph_transformer import transform
from .nn import CnnGenerator

logger = logging.getLogger(__name__)

BETA = 2.576
T_MIN = 0.0001
MAX_MODEL_SIZE = 1 << 24
MODEL_LEN = 3
MODEL_WIDTH = 64


class NetworkMorphismTuner(Tuner):
    """Network morphism + Bayesian optimisation over architectures.

    Parameters are NNI's: ``task`` ('cv' only), ``input_width``/``input_channel`` (square
    images), ``n_output_node`` (classes), ``algorithm_name`` ('Bayesian' only), ``optimize_mode``,
    ``path`` (model folder), ``verbose``, ``beta`` (UCB), ``t_min`` (annealing end temperature),
    ``max_model_size`` (parameter count cap), ``default_model_len``/``default_model_width`` (the
    initial CNN).  ``seed`` makes the search reproducible.
    """

    def __init__(self, optimize_mode: str = "maximize", task: str = "cv", input_width: int = 32,
                 input_channel: int = 3, n_output_node: int = 10, algorithm_name: str = "Bayesian",
                 path: str = "model_path", verbose: bool = True, beta: float = BETA, t_min: float = T_MIN,
                 max_model_size: int = MAX_MODEL_SIZE, default_model_len: int = MODEL_LEN,
                 default_model_width: int = MODEL_WIDTH, seed: int | None = None):
        if task != "cv":
            raise ValueError(f"task must be 'cv' (the only task NNI's NetworkMorphism supports), got {task!r}")
        if algorithm_name != "Bayesian":
            raise ValueError(f"algorithm_name must be 'Bayesian', got {algorithm_name!r}")
        for name, v in (("input_width", input_width), ("input_channel", input_channel),
                        ("n_output_node", n_output_node), ("max_model_size", max_model_size),
                        ("default_model_len", default_model_len), ("default_model_width", default_model_width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0 (UCB exploration weight), got {beta!r}")
        if not 0 < t_min < 1:
            raise ValueError(f"t_min must be in (0, 1) (annealing starts at temperature 1), got {t_min!r}")
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        self.n_classes = int(n_output_node)
        self.input_shape = (int(input_width), int(input_width), int(input_channel))
        self.beta, self.t_min, self.verbose = float(beta), float(t_min), bool(verbose)
        self.algorithm_name = algorithm_name
        self.max_model_size = int(max_model_size)
        self.default_model_len, self.default_model_width = int(default_model_len), int(default_model_width)
        base = os.environ.get("NNI_LOG_DIRECTORY") or os.getcwd()
        self.path = path if os.path.isabs(path) else os.path.join(base, path)
        os.makedirs(self.path, exist_ok=True)
        self.rng = np.random.default_rng(seed)
        self.generator = CnnGenerator(self.n_classes, self.input_shape)
        self.bo = BayesianOptimizer(self.t_min, self.beta, self.optimize_mode is OptimizeMode.Maximize,
                                    self.rng, self.max_model_size)
        self.search_space: dict = {}
        self.model_count = 0
        self.graphs: dict[int, Graph] = {}
        self.training_queue: list[tuple[Graph, int, int]] = []
        self.descriptors: list = []
        self.history: list[dict] = []
        self.total_data: dict[Any, tuple[str, int, int]] = {}
        self._initialized = False

    # -- Tuner API ----------------------------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        if search_space:
            logger.warning("NetworkMorphismTuner ignores the search space (it searches network graphs); "
                           "use searchSpace: {}")
        self.search_space = dict(search_space or {})

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> str:
        if not self._initialized:
            self.init_search()
        if not self.training_queue:
            father_id, graph = self.generate()
            self._enqueue(graph, father_id)
        graph, father_id, model_id = self.training_queue.pop(0)
        json_out = graph_to_json(graph, os.path.join(self.path, f"{model_id}.json"))
        self.total_data[parameter_id] = (json_out, father_id, model_id)
        return json_out

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        reward = extract_scalar_reward(value)
        if parameter_id not in self.total_data:
            raise ValueError(f"parameter_id {parameter_id!r} was not generated by this tuner")
        _, father_id, model_id = self.total_data[parameter_id]
        self.add_model(reward, model_id)
        self.update(father_id, self.graphs[model_id], reward, model_id)

    def import_data(self, data: list[dict]) -> None:
        """Finished trials ``{"parameter": graph JSON, "value": metric}`` become trained models."""
        if data:
            self._initialized = True  # imported models replace the default first model
        for i, item in enumerate(data):
            try:
                graph = json_to_graph(item["parameter"])
                reward = extract_scalar_reward(item["value"])
            except (KeyError, ValueError, TypeError) as e:
                raise ValueError(f"import_data[{i}]: needs 'parameter' (a graph JSON) and a numeric 'value': {e}") from None
            model_id = self._register(graph)
            graph_to_json(graph, os.path.join(self.path, f"{model_id}.json"))
            self.add_model(reward, model_id)
            self.update(-1, graph, reward, model_id)

    # -- search ------------------------------------------------------------------------------------------------
    def init_search(self) -> None:
        self._initialized = True
        self._enqueue(self.generator.generate(self.default_model_len, self.default_model_width), -1)

    def _register(self, graph: Graph) -> int:
        model_id = self.model_count
        self.model_count += 1
        self.graphs[model_id] = graph
        self.descriptors.append(graph.extract_descriptor())
        return model_id

    def _enqueue(self, graph: Graph, father_id: int) -> None:
        self.training_queue.append((graph, father_id, self._register(graph)))

    def generate(self) -> tuple[int, Graph]:
        """Next graph and its father: the BO's pick, or — before any result, or if the
        annealing found nothing new — a random morphism of the best (or the default) model."""
        history = [(h["model_id"], h["metric_value"]) for h in self.history]
        graph, father_id = self.bo.generate(history, self.graphs.__getitem__, self.descriptors)
        if graph is None:
            father_id = self.get_best_model_id() if self.history else 0
            base = self.graphs[father_id]
            seen = {d.key() for d in self.descriptors}
            graph = base.copy()
            for _ in range(20):  # a few tries at something not generated before
                children = transform(base, self.rng, 4, self.max_model_size)
                fresh = [c for c in children if c.extract_descriptor().key() not in seen]
                if fresh:
                    graph = fresh[0]
                    break
        graph.clear_weights()
        return father_id, graph

    def update(self, father_id: int, graph: Graph, metric_value: float, model_id: int) -> None:
        self.bo.fit([graph.extract_descriptor()], [metric_value])
        self.bo.add_child(father_id, model_id)

    def add_model(self, metric_value: float, model_id: int) -> dict:
        ret = {"model_id": model_id, "metric_value": metric_value}
        self.history.append(ret)
        if model_id == self.get_best_model_id():
            with open(os.path.join(self.path, "best_model.txt"), "w") as f:
                f.write(f"best model: {model_id}")
        if self.verbose:
            logger.info("model %d: metric %s", model_id, metric_value)
        return ret

    # -- queries (NNI names) -------------------------------------------------------------------------------------
    def get_best_model_id(self) -> int:
        pick = max if self.optimize_mode is OptimizeMode.Maximize else min
        return pick(self.history, key=lambda h: h["metric_value"])["model_id"]

    def load_model_by_id(self, model_id: int) -> Graph:
        with open(os.path.join(self.path, f"{model_id}.json")) as f:
            return json_to_graph(f.read())

    def load_best_model(self) -> Graph:
        return self.load_model_by_id(self.get_best_model_id())

    def get_metric_value_by_id(self, model_id: int) -> float | None:
        for h in self.history:
            if h["model_id"] == model_id:
                return h["metric_value"]
        return None
