"""The architecture graph: nodes are tensors, layers are edges (NNI / Autokeras representation).

``Graph`` keeps exactly the fields of NNI's graph JSON (``input_shape``, ``weighted``,
``operation_history``, ``layer_id_to_input_node_ids``, ``layer_id_to_output_node_ids``,
``adj_list``, ``reverse_adj_list``, ``node_list``, ``layer_list``), converts to and from that JSON
(:meth:`Graph.to_json`, :func:`json_to_graph`), builds a torch model
(:meth:`Graph.produce_torch_model`) and applies the morphisms of
:mod:`.graph_transformer` in place.  Node shapes are channels-last without the batch axis, as in
NNI; the torch model takes channels-first input ``(N, C, W, W)``.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Iterable, Sequence


from .layers import (StubAdd, StubConcatenate, StubConv, StubDense, StubLayer,
                     layer_from_description)


class NetworkDescriptor:
    """What the edit-distance kernel compares (Autokeras): the widths of the Conv/Dense layers
    on the main path, in order, and the skip connections as (from, to, type), where from/to
    count main-path Conv layers before the connection's ends."""

    CONCAT_CONNECT = "concat"
    ADD_CONNECT = "add"

    def __init__(self, layers: Sequence[tuple[str, int]] = (), skip_connections: Sequence[tuple] = ()):
        self.layers = list(layers)  # [("conv"|"dense", width)]
        self.skip_connections = list(skip_connections)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def key(self) -> tuple:
        return tuple(self.layers), tuple(sorted(self.skip_connections))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetworkDescriptor) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def to_json(self) -> dict:
        return {"node_list": [list(x) for x in self.layers],
                "skip_list": [{"from": u, "to": v, "type": t} for u, v, t in self.skip_connections]}

    def __repr__(self) -> str:
        return f"NetworkDescriptor(layers={self.layers}, skips={self.skip_connections})"


class Graph:
    """A neural architecture as a DAG of stub layers.

    ``weighted``: whether the stubs carry weights (needed for function-preserving morphisms of a
    trained model; the tuner sends unweighted graphs, trials train from scratch as in NNI).
    """

    def __init__(self, input_shape: Sequence[int], weighted: bool = False) -> None:
        self.input_shape = tuple(int(x) for x in input_shape)
        self.weighted = bool(weighted)
        self.node_list: list[tuple] = []
        self.layer_list: list[StubLayer] = []
        self.layer_id_to_input_node_ids: dict[int, list[int]] = {}
        self.layer_id_to_output_node_ids: dict[int, list[int]] = {}
        self.adj_list: dict[int, list[tuple[int, int]]] = {}
        self.reverse_adj_list: dict[int, list[tuple[int, int]]] = {}
        self.operation_history: list = []
        self._add_node(self.input_shape)

    # -- construction ------------------------------------------------------------------------------
    @property
    def n_dim(self) -> int:
        return len(self.input_shape) - 1

    @property
    def n_nodes(self) -> int:
        return len(self.node_list)

    @property
    def n_layers(self) -> int:
        return len(self.layer_list)

    def _add_node(self, shape: Sequence[int]) -> int:
        nid = len(self.node_list)
        self.node_list.append(tuple(shape))
        self.adj_list[nid] = []
        self.reverse_adj_list[nid] = []
        return nid

    def add_layer(self, layer: StubLayer, input_node_id: int | Iterable[int]) -> int:
        """Append ``layer`` reading ``input_node_id`` (a list for Add/Concatenate); returns the
        new output node id."""
        ids = list(input_node_id) if isinstance(input_node_id, Iterable) else [int(input_node_id)]
        out = self._add_node(layer.output_shape([self.node_list[i] for i in ids]))
        lid = len(self.layer_list)
        self.layer_list.append(layer)
        self.layer_id_to_input_node_ids[lid] = ids
        self.layer_id_to_output_node_ids[lid] = [out]
        for i in ids:
            self.adj_list[i].append((out, lid))
            self.reverse_adj_list[out].append((i, lid))
        return out

    def producer(self, node_id: int) -> int | None:
        """Id of the layer whose output is ``node_id`` (None for the input node)."""
        r = self.reverse_adj_list[node_id]
        return r[0][1] if r else None

    @property
    def output_node_id(self) -> int:
        outs = [n for n in range(self.n_nodes) if not self.adj_list[n] and self.reverse_adj_list[n]]
        if len(outs) != 1:
            raise ValueError(f"graph must have exactly one output node, found {outs}")
        return outs[0]

    @property
    def topological_order(self) -> list[int]:
        indeg = {n: 0 for n in range(self.n_nodes)}
        for u in range(self.n_nodes):
            for v, _ in self.adj_list[u]:
                indeg[v] += 1
        order, queue = [], [n for n in range(self.n_nodes) if indeg[n] == 0]
        while queue:
            u = queue.pop(0)
            order.append(u)
            for v, _ in self.adj_list[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    queue.append(v)
        if len(order) != self.n_nodes:
            raise ValueError("graph has a cycle")
        return order

    def infer_shapes(self) -> None:
        """Recompute every node's shape from the input shape (after a morphism)."""
        self.node_list[0] = self.input_shape
        for v in self.topological_order[1:]:
            lid = self.producer(v)
            ins = self.layer_id_to_input_node_ids[lid]
            self.node_list[v] = tuple(self.layer_list[lid].output_shape([self.node_list[i] for i in ins]))

    def size(self) -> int:
        """Number of parameters (compared against ``max_model_size``)."""
        return int(sum(layer.size() for layer in self.layer_list))

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    def clear_weights(self) -> None:
        for layer in self.layer_list:
            layer.weights = None
        self.weighted = False

    def clear_operation_history(self) -> None:
        self.operation_history = []

    # -- editing helpers used by the morphisms -----------------------------------------------------------
    def redirect_consumers(self, node_id: int, new_node_id: int, keep: Iterable[int] = ()) -> None:
        """Make every layer that read ``node_id`` (except layers in ``keep``) read ``new_node_id``."""
        keep = set(keep)
        moved = [(v, lid) for v, lid in self.adj_list[node_id] if lid not in keep]
        self.adj_list[node_id] = [(v, lid) for v, lid in self.adj_list[node_id] if lid in keep]
        for v, lid in moved:
            self.adj_list[new_node_id].append((v, lid))
            self.reverse_adj_list[v] = [(new_node_id if (u == node_id and l == lid) else u, l)
                                        for u, l in self.reverse_adj_list[v]]
            self.layer_id_to_input_node_ids[lid] = [new_node_id if i == node_id else i
                                                    for i in self.layer_id_to_input_node_ids[lid]]

    def insert_chain_after(self, node_id: int, layers: Sequence[StubLayer]) -> int:
        """Insert ``layers`` (a chain) right after ``node_id``: the old consumers of the node now
        read the chain's end.  Returns the chain's end node."""
        consumers_before = [lid for _, lid in self.adj_list[node_id]]
        cur = node_id
        new_ids = []
        for layer in layers:
            cur = self.add_layer(layer, cur)
            new_ids.append(self.producer(cur))
        self.redirect_consumers(node_id, cur, keep=[new_ids[0]])
        assert all(lid in [l for _, l in self.adj_list[cur]] for lid in consumers_before)
        self.infer_shapes()
        return cur

    # -- views -----------------------------------------------------------------------------------------------
    def main_path(self) -> list[int]:
        """Node ids from input to output following, backwards, each layer's first input."""
        path = [self.output_node_id]
        while path[-1] != 0:
            lid = self.producer(path[-1])
            path.append(self.layer_id_to_input_node_ids[lid][0])
        return path[::-1]

    def extract_descriptor(self) -> NetworkDescriptor:
        main = self.main_path()
        on_main = set(main)
        layers, conv_before = [], {}
        n_conv = 0
        for v in main[1:]:
            conv_before[v] = n_conv
            layer = self.layer_list[self.producer(v)]
            if isinstance(layer, StubConv):
                layers.append(("conv", layer.filters))
                n_conv += 1
            elif isinstance(layer, StubDense):
                layers.append(("dense", layer.units))
        conv_before[main[0]] = 0
        skips = []
        for v in main[1:]:
            lid = self.producer(v)
            layer = self.layer_list[lid]
            if isinstance(layer, (StubAdd, StubConcatenate)):
                for branch_end in self.layer_id_to_input_node_ids[lid][1:]:
                    u = branch_end
                    while u not in on_main:  # walk the branch back to where it leaves the main path
                        u = self.layer_id_to_input_node_ids[self.producer(u)][0]
                    kind = NetworkDescriptor.ADD_CONNECT if isinstance(layer, StubAdd) else NetworkDescriptor.CONCAT_CONNECT
                    skips.append((conv_before[u], conv_before[v], kind))
        return NetworkDescriptor(layers, skips)

    # -- JSON --------------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """NNI's graph JSON as a dict (``json.dumps`` of it is what the tuner sends)."""
        layer_list = []
        for lid, layer in enumerate(self.layer_list):
            ins = self.layer_id_to_input_node_ids[lid]
            in_field: Any = list(ins) if layer.aggregate else ins[0]
            layer_list.append([lid, [type(layer).__name__, in_field, self.layer_id_to_output_node_ids[lid][0],
                                     *layer.args()]])
        out = {
            "input_shape": list(self.input_shape),
            "weighted": False,  # weights are never put in JSON (NNI: trials train from scratch)
            "operation_history": [list(op) for op in self.operation_history],
            "layer_id_to_input_node_ids": {str(k): list(v) for k, v in self.layer_id_to_input_node_ids.items()},
            "layer_id_to_output_node_ids": {str(k): list(v) for k, v in self.layer_id_to_output_node_ids.items()},
            "adj_list": {str(k): [list(e) for e in v] for k, v in self.adj_list.items()},
            "reverse_adj_list": {str(k): [list(e) for e in v] for k, v in self.reverse_adj_list.items()},
            "node_list": [[i, list(s)] for i, s in enumerate(self.node_list)],
            "layer_list": layer_list,
        }
        return out

    # -- torch ---------------------------------------------------------------------------------------------------
    def produce_torch_model(self):
        """A ``torch.nn.Module`` computing this graph on channels-first input; with weights
        when the graph carries them."""
        import torch
        torch.set_num_threads(1)  # small models on few cores: one thread is much faster
        return _torch_model_class()(self)

    def import_torch_weights(self, model) -> None:
        """Read a produced model's weights into the stubs (makes the graph weighted)."""
        for lid, layer in enumerate(self.layer_list):
            layer.import_weights(model.layers[lid])
        self.weighted = True


def json_to_graph(ir_model_json: str | dict) -> Graph:
    """NNI's graph JSON (string or dict) → :class:`Graph`.  ``node_list`` shapes are checked
    against the shapes the layers imply, so a corrupt JSON is an error, not a broken model."""
    data = json.loads(ir_model_json) if isinstance(ir_model_json, (str, bytes)) else ir_model_json
    for key in ("input_shape", "layer_list"):
        if key not in data:
            raise ValueError(f"graph JSON has no {key!r}: give the JSON produced by NetworkMorphismTuner")
    g = Graph(data["input_shape"], weighted=False)
    entries = sorted(((int(lid), desc) for lid, desc in data["layer_list"]), key=lambda x: x[0])
    n_nodes = len(data.get("node_list", [])) or 1 + len(entries)
    for nid in range(1, n_nodes):
        g._add_node(())
    for lid, desc in entries:
        if lid != len(g.layer_list):
            raise ValueError(f"layer_list ids must be 0..n-1 in order, got id {lid} at position {len(g.layer_list)}")
        layer, ins, out = layer_from_description(desc)
        while out >= g.n_nodes or any(i >= g.n_nodes for i in ins):
            g._add_node(())
        g.layer_list.append(layer)
        g.layer_id_to_input_node_ids[lid] = ins
        g.layer_id_to_output_node_ids[lid] = [out]
        for i in ins:
            g.adj_list[i].append((out, lid))
            g.reverse_adj_list[out].append((i, lid))
    g.operation_history = [tuple(op) if isinstance(op, list) else op for op in data.get("operation_history", [])]
    g.infer_shapes()
    for nid, shape in data.get("node_list", []):
        if tuple(shape) != g.node_list[int(nid)]:
            raise ValueError(f"graph JSON node {nid} has shape {shape}, but its layers give "
                             f"{list(g.node_list[int(nid)])}")
    return g


def graph_to_json(graph: Graph, json_model_path: str | None = None) -> str:
    """NNI's helper: the JSON string, also written to ``json_model_path`` when given."""
    text = json.dumps(graph.to_json())
    if json_model_path:
        with open(json_model_path, "w") as f:
            f.write(text)
    return text


_MODEL_CLASS: list = []


def _torch_model_class():
    if _MODEL_CLASS:
        return _MODEL_CLASS[0]
    import torch.nn as nn

    class TorchModel(nn.Module):
        """Runs the graph's layers in topological order of their output nodes."""

        def __init__(self, graph: Graph):
            super().__init__()
            self.graph = graph
            self.layers = nn.ModuleList()
            for layer in graph.layer_list:
                real = layer.to_real_layer()
                if graph.weighted:
                    layer.export_weights(real)
                self.layers.append(real)
            order = graph.topological_order
            self._steps = [(graph.producer(v), v) for v in order[1:]]
            self._inputs = {lid: list(ids) for lid, ids in graph.layer_id_to_input_node_ids.items()}
            self._aggregate = {lid: layer.aggregate for lid, layer in enumerate(graph.layer_list)}
            self._output = graph.output_node_id

        def forward(self, x):
            values = {0: x}
            for lid, v in self._steps:
                ins = self._inputs[lid]
                arg = [values[i] for i in ins] if self._aggregate[lid] else values[ins[0]]
                values[v] = self.layers[lid](arg)
            return values[self._output]

    _MODEL_CLASS.append(TorchModel)
    return TorchModel
