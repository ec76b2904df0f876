"""Network morphisms (Wei et al. 2016; Net2Net, Chen et al. 2016; as used by Autokeras/NNI).

Each operation edits a :class:`Graph` in place and records itself in ``operation_history``.
On a weighted graph the new weights are chosen so that the network computes the same function
(in eval mode; exact up to float rounding):

* **deeper** — after a ReLU output, insert Conv(identity kernel) → BatchNorm(identity) → ReLU
  (or Dense(identity) → ReLU in the dense part).  The input is ≥ 0, so the new ReLU is the
  identity too.  The identity BN uses ``running_var = 1 - eps`` so that ``x / sqrt(var + eps)``
  is exactly ``x``.
* **wider** — Net2WiderNet: the widened Conv/Dense copies randomly chosen units, every BatchNorm
  on the way copies their statistics, and the next Conv/Dense divides the incoming weights of a
  unit by the number of its copies.
* **add skip** — from an earlier ReLU output ``a`` to a later one ``b``: MaxPool(s) to b's size,
  a 1×1 Conv with zero weights, Add with ``b``: ``b + 0``.
* **concat skip** — as above, then Concatenate with ``b`` and a 1×1 Conv whose weights are
  ``[I | 0]``: it returns ``b``.

Widening is offered only for layers whose output reaches the next Conv/Dense through per-channel
layers (BN, ReLU, pooling, dropout), i.e. not through an Add/Concatenate: widening one input of
an Add would need the other input widened in step, which this implementation does not do.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .graph import Graph
from .layers import (StubAdd, StubBatchNormalization, StubConcatenate, StubConv, StubDense, StubReLU,
                     layer_width)
from .nn import dim_classes

BN_EPS = 1e-5  # torch's BatchNorm default eps, used for the exact-identity BN
DEEPER_KERNELS = (1, 3, 5)


# -- candidates ------------------------------------------------------------------------------------

def _relu_outputs(g: Graph) -> list[int]:
    out = g.output_node_id
    return [v for v in range(1, g.n_nodes) if v != out and isinstance(g.layer_list[g.producer(v)], StubReLU)]


def deeper_candidates(g: Graph) -> list[int]:
    return _relu_outputs(g)


def _widen_closure(g: Graph, layer_id: int):
    """(BN layer ids, consumer Conv/Dense ids) reached from the layer's output through
    per-channel layers; None when an Add/Concatenate/Flatten or the graph output is reached."""
    bns, consumers = [], []
    stack, seen = [g.layer_id_to_output_node_ids[layer_id][0]], set()
    out = g.output_node_id
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        if u == out:
            return None
        for v, lid in g.adj_list[u]:
            layer = g.layer_list[lid]
            if isinstance(layer, (StubConv, StubDense)):
                consumers.append(lid)
            elif isinstance(layer, StubBatchNormalization):
                bns.append(lid)
                stack.append(v)
            elif layer.passthrough:
                stack.append(v)
            else:
                return None
    return (bns, consumers) if consumers else None


def wider_candidates(g: Graph) -> list[int]:
    return [lid for lid, layer in enumerate(g.layer_list)
            if isinstance(layer, (StubConv, StubDense)) and _widen_closure(g, lid) is not None]


def _halvings(g: Graph, a: int, b: int) -> int | None:
    """Number of 2×2 max-pools that bring node a's spatial size to node b's, or None."""
    sa, sb = list(g.node_list[a][:-1]), list(g.node_list[b][:-1])
    for k in range(16):
        if sa == sb:
            return k
        if all(x == 1 for x in sa):
            return None
        sa = [max(x // 2, 1) for x in sa]
    return None


def skip_candidates(g: Graph) -> list[tuple[int, int]]:
    main = g.main_path()
    pos = {v: i for i, v in enumerate(main)}
    relus = [v for v in _relu_outputs(g) if v in pos and len(g.node_list[v]) > 1]
    relus.sort(key=pos.get)
    return [(a, b) for i, a in enumerate(relus) for b in relus[i + 1:] if _halvings(g, a, b) is not None]


# -- operations ----------------------------------------------------------------------------------------

def to_deeper(g: Graph, node_id: int, kernel_size: int = 3) -> int:
    shape = g.node_list[node_id]
    if len(shape) == 1:
        units = shape[0]
        dense = StubDense(units, units)
        if g.weighted:
            dense.weights = [np.eye(units, dtype=np.float32), np.zeros(units, dtype=np.float32)]
        chain = [dense, StubReLU()]
        kernel_size = 0
    else:
        conv_cls, bn_cls = dim_classes(g.n_dim)[:2]
        c = shape[-1]
        conv, bn = conv_cls(c, c, kernel_size), bn_cls(c)
        if g.weighted:
            w = np.zeros((c, c) + (kernel_size,) * g.n_dim, dtype=np.float32)
            center = (kernel_size // 2,) * g.n_dim
            for i in range(c):
                w[(i, i) + center] = 1.0
            conv.weights = [w, np.zeros(c, dtype=np.float32)]
            bn.weights = [np.ones(c, np.float32), np.zeros(c, np.float32), np.zeros(c, np.float32),
                          np.full(c, 1.0 - BN_EPS, np.float32)]
        chain = [conv, bn, StubReLU()]
    end = g.insert_chain_after(node_id, chain)
    g.operation_history.append(("to_deeper_model", int(node_id), int(kernel_size)))
    return end


def to_wider(g: Graph, layer_id: int, n_add: int, rng: np.random.Generator) -> None:
    closure = _widen_closure(g, layer_id)
    if closure is None:
        raise ValueError(f"layer {layer_id} cannot be widened (its output reaches an Add/Concatenate or the output)")
    bns, consumers = closure
    layer = g.layer_list[layer_id]
    w = layer_width(layer)
    src = rng.integers(0, w, size=n_add)
    counts = np.bincount(src, minlength=w) + 1.0
    if g.weighted:
        W, b = layer.weights
        layer.weights = [np.concatenate([W, W[src]], axis=0), np.concatenate([b, b[src]])]
    if isinstance(layer, StubConv):
        layer.filters += n_add
    else:
        layer.units += n_add
    for lid in bns:
        bn = g.layer_list[lid]
        bn.num_features += n_add
        if g.weighted and bn.weights is not None:
            bn.weights = [np.concatenate([x, x[src]]) for x in bn.weights]
    for lid in consumers:
        nxt = g.layer_list[lid]
        if g.weighted and nxt.weights is not None:
            W, b = nxt.weights
            scale = counts.reshape((1, w) + (1,) * (W.ndim - 2))
            W = W / scale
            nxt.weights = [np.concatenate([W, W[:, src]], axis=1).astype(np.float32), b]
        if isinstance(nxt, StubConv):
            nxt.input_channel += n_add
        else:
            nxt.input_units += n_add
    g.infer_shapes()
    g.operation_history.append(("to_wider_model", int(layer_id), int(n_add)))


def _skip_branch(g: Graph, a: int, b: int, rng: np.random.Generator, zero: bool) -> int:
    conv_cls, _, pool_cls = dim_classes(g.n_dim)[:3]
    k = _halvings(g, a, b)
    if k is None:
        raise ValueError(f"node {a} cannot be pooled to the size of node {b}")
    cur = a
    for _ in range(k):
        cur = g.add_layer(pool_cls(2), cur)
    ca, cb = g.node_list[a][-1], g.node_list[b][-1]
    conv = conv_cls(ca, cb, 1)
    if g.weighted:
        shape = (cb, ca) + (1,) * g.n_dim
        w = np.zeros(shape, np.float32) if zero else rng.normal(0, 0.1, shape).astype(np.float32)
        conv.weights = [w, np.zeros(cb, np.float32)]
    return g.add_layer(conv, cur)


def to_add_skip(g: Graph, a: int, b: int, rng: np.random.Generator) -> int:
    branch = _skip_branch(g, a, b, rng, zero=True)
    m = g.add_layer(StubAdd(), [b, branch])
    g.redirect_consumers(b, m, keep=[g.producer(m)])
    g.infer_shapes()
    g.operation_history.append(("to_add_skip_model", int(a), int(b)))
    return m


def to_concat_skip(g: Graph, a: int, b: int, rng: np.random.Generator) -> int:
    conv_cls = dim_classes(g.n_dim)[0]
    branch = _skip_branch(g, a, b, rng, zero=False)
    cat = g.add_layer(StubConcatenate(), [b, branch])
    cat_lid = g.producer(cat)
    cb = g.node_list[b][-1]
    merge = conv_cls(2 * cb, cb, 1)
    if g.weighted:
        w = np.zeros((cb, 2 * cb) + (1,) * g.n_dim, np.float32)
        for i in range(cb):
            w[(i, i) + (0,) * g.n_dim] = 1.0
        merge.weights = [w, np.zeros(cb, np.float32)]
    m = g.add_layer(merge, cat)
    g.redirect_consumers(b, m, keep=[cat_lid])
    g.infer_shapes()
    g.operation_history.append(("to_concat_skip_model", int(a), int(b)))
    return m


# -- neighbours ---------------------------------------------------------------------------------------------

OPERATIONS = ("deeper", "wider", "add_skip", "concat_skip")
_OP_P = (1 / 3, 1 / 3, 1 / 6, 1 / 6)  # deeper / wider / skip equally likely, skip split add/concat


def apply_random_operation(g: Graph, rng: np.random.Generator, op: str | None = None) -> str | None:
    """Apply one random morphism in place; returns its name, or None if none applies."""
    ops = [op] if op else list(rng.choice(OPERATIONS, size=len(OPERATIONS), replace=False, p=_OP_P))
    for name in ops:
        if name == "deeper":
            cands = deeper_candidates(g)
            if cands:
                node = cands[int(rng.integers(len(cands)))]
                to_deeper(g, node, int(rng.choice(DEEPER_KERNELS)))
                return name
        elif name == "wider":
            cands = wider_candidates(g)
            if cands:
                lid = cands[int(rng.integers(len(cands)))]
                w = layer_width(g.layer_list[lid])
                to_wider(g, lid, int(rng.choice([max(1, w // 4), max(1, w // 2), w])), rng)
                return name
        else:
            cands = skip_candidates(g)
            if cands:
                a, b = cands[int(rng.integers(len(cands)))]
                (to_add_skip if name == "add_skip" else to_concat_skip)(g, a, b, rng)
                return name
    return None


def transform(graph: Graph, rng: np.random.Generator, n_neighbours: int = 8,
              max_model_size: int | None = None) -> list[Graph]:
    """Up to ``n_neighbours`` children, each one random morphism away, within the size cap."""
    out = []
    for _ in range(n_neighbours):
        child = graph.copy()
        if apply_random_operation(child, rng) is None:
            continue
        if max_model_size is not None and child.size() > max_model_size:
            continue
        out.append(child)
    return out


__all__: Sequence[str] = ["to_deeper", "to_wider", "to_add_skip", "to_concat_skip", "transform",
                          "apply_random_operation", "deeper_candidates", "wider_candidates", "skip_candidates"]
