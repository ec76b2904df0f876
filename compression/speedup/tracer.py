"""A concrete-value torch.fx tracer (the idea of NNI 3.0's ``concrete_trace``).

``torch.fx.symbolic_trace`` feeds placeholder proxies through ``forward`` and fails as
soon as Python control flow looks at a value (``if x.size(1) > 3``, ``for t in x``,
``len(x)``).  This tracer *runs* the model while it records: every proxy carries the
concrete value that the same operation produced on ``dummy_input``.  When Python asks
for a truth value, a length, an int or an iterator, the concrete value answers, so the
branch actually taken on ``dummy_input`` is recorded (like ``torch.jit.trace``), while
everything that stays a tensor operation is recorded as an fx node (like fx).

The graph is only *analysed* by speedup (masks are propagated over it and modules of the
original model are swapped in place), so it never has to be re-executable on other
shapes.  Every node's concrete value is returned alongside the graph.
"""
from __future__ import annotations

import inspect
import operator
from typing import Any, Dict, Optional, Tuple

import torch
import torch.fx as fx
from torch.fx._symbolic_trace import _maybe_revert_all_patches
from torch.fx.node import map_aggregate

__all__ = ["ConcreteTracer", "concrete_trace", "TraceResult"]


def _is_atomic_module(module: torch.nn.Module) -> bool:
    """Leaves are modules without children (Conv2d, ReLU, …) plus MultiheadAttention.

    fx's default treats every ``torch.nn`` class as a leaf, which would hide the Linear
    layers inside ``nn.TransformerEncoderLayer``; we only stop at atomic modules.
    """
    if isinstance(module, torch.nn.MultiheadAttention):
        return True
    return len(module._modules) == 0


class ConcreteProxy(fx.Proxy):
    """An fx proxy that also holds the concrete value of the traced operation."""

    def __init__(self, node: fx.Node, tracer: "ConcreteTracer", value: Any):
        super().__init__(node, tracer)
        self.value = value

    # Python-level control flow is answered by the concrete value.
    def __bool__(self) -> bool:
        return bool(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return operator.index(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __iter__(self):
        for i in range(len(self.value)):
            yield self[i]

    def __contains__(self, item) -> bool:
        return item in self.value

    def keys(self):
        return self.value.keys()

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        attr = getattr(self.value, name)
        if callable(attr) and not isinstance(attr, torch.Tensor):
            return _MethodProxy(self, name)
        return self.tracer.create_proxy("call_function", getattr, (self, name), {})


class _MethodProxy:
    """``proxy.method`` before it is called: calling it records a ``call_method`` node."""

    def __init__(self, owner: ConcreteProxy, name: str):
        self.owner, self.name = owner, name

    def __call__(self, *args, **kwargs):
        return self.owner.tracer.create_proxy("call_method", self.name, (self.owner,) + args, kwargs)


def _concrete(a: Any) -> Any:
    return map_aggregate(a, lambda x: x.value if isinstance(x, ConcreteProxy) else x)


class ConcreteTracer(fx.Tracer):
    """fx tracer whose proxies carry concrete values (see the module docstring)."""

    def __init__(self, leaf_module_types: Tuple[type, ...] = ()):
        super().__init__(autowrap_functions=())
        self.leaf_module_types = tuple(leaf_module_types)
        self.values: Dict[str, Any] = {}
        self._concrete_inputs: Dict[str, Any] = {}

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        if self.leaf_module_types and isinstance(m, self.leaf_module_types):
            return True
        return _is_atomic_module(m)

    def _run(self, kind: str, target, args, kwargs):
        a, kw = _concrete(args), _concrete(kwargs)
        # Run the real operation with fx's monkey patches (Module.__call__, getattr)
        # reverted, so a leaf module executes as plain PyTorch.
        with _maybe_revert_all_patches():
            return self._run_unpatched(kind, target, a, kw)

    def _run_unpatched(self, kind, target, a, kw):
        if kind == "call_function":
            return target(*a, **kw)
        if kind == "call_method":
            return getattr(a[0], target)(*a[1:], **kw)
        if kind == "call_module":
            return self.root.get_submodule(target)(*a, **kw)
        if kind == "get_attr":
            obj = self.root
            for part in target.split("."):
                obj = getattr(obj, part)
            return obj
        raise RuntimeError(f"unexpected fx node kind {kind}")

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, *_, **__):
        if kind == "placeholder":
            value = self._concrete_inputs.get(target, None)
        elif kind == "output":
            value = None
        else:
            with torch.no_grad():
                value = self._run(kind, target, args, kwargs)
        node_args = self.create_arg(args)
        node_kwargs = self.create_arg(kwargs)
        node = self.create_node(kind, target, node_args, node_kwargs, name, type_expr)
        self.values[node.name] = value
        return ConcreteProxy(node, self, value)

    def call_module(self, m, forward, args, kwargs):
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        # Parameters read in forward become get_attr nodes with their concrete value.
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def trace_with_inputs(self, root: torch.nn.Module, concrete_args: Dict[str, Any]) -> fx.Graph:
        sig = inspect.signature(root.forward)
        names = [p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        self._concrete_inputs = dict(concrete_args)
        # Arguments not given are traced as placeholders holding their default value, so
        # control flow on them follows the default.
        for p in sig.parameters.values():
            if p.name in names and p.name not in concrete_args:
                if p.default is inspect.Parameter.empty:
                    raise ValueError(f"dummy_input gives no value for forward argument '{p.name}'")
                self._concrete_inputs[p.name] = p.default
        return self.trace(root)


class TraceResult:
    """The traced graph, each node's concrete value, and the traced module."""

    def __init__(self, graph_module: fx.GraphModule, values: Dict[str, Any]):
        self.graph_module = graph_module
        self.graph = graph_module.graph
        self.values = values

    def value(self, node: fx.Node) -> Any:
        return self.values.get(node.name)


def normalize_dummy_input(model: torch.nn.Module, dummy_input: Any) -> Dict[str, Any]:
    """tensor / tuple / list → positional args; dict → kwargs (as NNI 3.0 does)."""
    sig = inspect.signature(model.forward)
    names = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if isinstance(dummy_input, dict):
        unknown = set(dummy_input) - set(names)
        if unknown:
            raise ValueError(f"dummy_input has keys {sorted(unknown)} that forward() does not accept; "
                             f"forward takes {names}")
        return dict(dummy_input)
    if isinstance(dummy_input, torch.Tensor):
        dummy_input = (dummy_input,)
    if not isinstance(dummy_input, (tuple, list)):
        raise TypeError("dummy_input must be a tensor, a tuple/list of tensors, or a dict of kwargs; "
                        f"got {type(dummy_input).__name__}")
    if len(dummy_input) > len(names):
        raise ValueError(f"dummy_input has {len(dummy_input)} items but forward() takes {len(names)}")
    return dict(zip(names, dummy_input))


def concrete_trace(model: torch.nn.Module, dummy_input: Any,
                   leaf_module_types: Tuple[type, ...] = ()) -> TraceResult:
    """Trace ``model`` by running it on ``dummy_input``; see the module docstring."""
    inputs = normalize_dummy_input(model, dummy_input)
    tracer = ConcreteTracer(leaf_module_types)
    was_training = model.training
    model.eval()
    try:
        graph = tracer.trace_with_inputs(model, inputs)
    finally:
        model.train(was_training)
    gm = fx.GraphModule(tracer.root, graph)
    # Buffers (and constants) read in forward become get_attr nodes through create_arg,
    # which bypasses create_proxy: fetch their values here.
    for n in graph.nodes:
        if n.op == "get_attr" and tracer.values.get(n.name) is None:
            obj = model
            for part in n.target.split("."):
                obj = getattr(obj, part, None)
            if obj is None:
                obj = getattr(gm, n.target, None)
            tracer.values[n.name] = obj
    return TraceResult(gm, tracer.values)


def values_from_graph_module(gm: fx.GraphModule, model: torch.nn.Module, dummy_input: Any) -> TraceResult:
    """For a user-supplied GraphModule: compute each node's value with an fx Interpreter."""
    inputs = normalize_dummy_input(model, dummy_input)
    values: Dict[str, Any] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n.name] = out
            return out

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    args = [inputs[p.target] if p.target in inputs else None for p in placeholders]
    with torch.no_grad():
        _Recorder(gm).run(*args)
    return TraceResult(gm, values)
