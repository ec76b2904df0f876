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
from torch.fx.node import map_aggregate

__all__ = ["ConcreteTracer", "concrete_trace", "TraceResult"]


def _is_atomic_module(module: torch.nn.Module) -> bool:
    """Leaves are modules without children (Conv2d, ReLU, …), MultiheadAttention, and every
    module of a type speedup has a replacer for.

    fx's default treats every ``torch.nn`` class as a leaf, which would hide the Linear
    layers inside ``nn.TransformerEncoderLayer``; we only stop at atomic modules.
    """
    if isinstance(module, torch.nn.MultiheadAttention):
        return True
    # Types speedup knows (by isinstance, e.g. timm's BatchNormAct2d: a BatchNorm2d subclass
    # holding its activation as a child) are one op even with children: traced through, their
    # parameters would be read by functional code and their channels never aligned or removed.
    from .replacers import is_known_op
    if is_known_op(module):
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
        if name in _STATIC_ATTRS and isinstance(self.value, torch.Tensor):
            # dtype/device/... never change when channels are removed: give the real object,
            # so torch.finfo(x.dtype), torch.zeros(..., device=x.device) and comparisons work.
            return attr
        if callable(attr) and not isinstance(attr, torch.Tensor):
            return _MethodProxy(self, name)
        return self.tracer.create_proxy("call_function", getattr, (self, name), {})


# Tensor attributes that speedup never changes (a proxy for them breaks torch.finfo(x.dtype),
# `x.device.type == 'cuda'`, ...).  `shape` stays a proxy: sizes do change when channels go.
_STATIC_ATTRS = {"dtype", "device", "is_cuda", "layout", "ndim", "requires_grad", "is_sparse", "is_quantized",
                 "is_meta", "is_floating_point"}


def _has_tensor(value: Any) -> bool:
    from torch.utils._pytree import tree_flatten
    return any(isinstance(v, torch.Tensor) for v in tree_flatten(value)[0])


class _MethodProxy:
    """``proxy.method`` before it is called: calling it records a ``call_method`` node."""

    def __init__(self, owner: ConcreteProxy, name: str):
        self.owner, self.name = owner, name

    def __call__(self, *args, **kwargs):
        return self.owner.tracer.create_proxy("call_method", self.name, (self.owner,) + args, kwargs)


def _concrete(a: Any) -> Any:
    return map_aggregate(a, lambda x: x.value if isinstance(x, ConcreteProxy) else x)


# Factories and Tensor methods that take sizes as varargs: ``torch.zeros(x.shape[0], n)`` or
# ``buffer.expand(b, l)`` on a real tensor with proxy sizes never reaches ``__torch_function__``
# (PyTorch's argument parser rejects the proxies first: "zeros() takes 1 positional argument").
# While tracing they are wrapped: with a proxy among the arguments they record an fx node.
_SIZE_FACTORIES = ("zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "eye", "tensor",
                   "as_tensor", "linspace")
_SIZE_METHODS = ("expand", "view", "reshape", "repeat", "tile", "new_zeros", "new_ones", "new_empty", "new_full",
                 "permute", "narrow", "unflatten", "__getitem__")


def _contains_proxy(obj: Any) -> bool:
    found = []
    map_aggregate(obj, lambda v: found.append(True) if isinstance(v, ConcreteProxy) else None)
    if found:
        return True
    if isinstance(obj, slice):
        return any(isinstance(v, ConcreteProxy) for v in (obj.start, obj.stop, obj.step))
    if isinstance(obj, (tuple, list)):
        return any(_contains_proxy(v) for v in obj)
    return False


class _SizeVarargsPatch:
    """Context manager: wrap the functions above so proxy sizes are recorded, not rejected."""

    def __init__(self, tracer: "ConcreteTracer"):
        self.tracer = tracer
        self.saved: list = []

    def __enter__(self):
        tracer = self.tracer
        for name in _SIZE_FACTORIES:
            orig = getattr(torch, name, None)
            if orig is None:
                continue

            def fn(*args, __orig=orig, **kwargs):
                if not tracer._running_op and (_contains_proxy(args) or _contains_proxy(kwargs)):
                    return tracer.create_proxy("call_function", __orig, args, kwargs)
                return __orig(*args, **kwargs)
            self.saved.append((torch, name, orig))
            setattr(torch, name, fn)
        for name in _SIZE_METHODS:
            orig = getattr(torch.Tensor, name)

            def meth(self_, *args, __orig=orig, __name=name, **kwargs):
                if not tracer._running_op and not isinstance(self_, ConcreteProxy) \
                        and (_contains_proxy(args) or _contains_proxy(kwargs)):
                    if __name == "__getitem__":
                        return tracer.create_proxy("call_function", operator.getitem, (self_,) + args, kwargs)
                    return tracer.create_proxy("call_method", __name, (self_,) + args, kwargs)
                return __orig(self_, *args, **kwargs)
            self.saved.append((torch.Tensor, name, orig))
            setattr(torch.Tensor, name, meth)
        return self

    def __exit__(self, *exc):
        for owner, name, orig in reversed(self.saved):
            setattr(owner, name, orig)
        self.saved.clear()


class ConcreteTracer(fx.Tracer):
    """fx tracer whose proxies carry concrete values (see the module docstring)."""

    def __init__(self, leaf_module_types: Tuple[type, ...] = ()):
        super().__init__(autowrap_functions=())
        # buffers read in forward become proxies too (BERT slices its position_ids buffer)
        self.proxy_buffer_attributes = True
        self.leaf_module_types = tuple(leaf_module_types)
        self.values: Dict[str, Any] = {}
        self._concrete_inputs: Dict[str, Any] = {}
        self._constants: Dict[str, Any] = {}
        self._running_op = 0

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        if self.leaf_module_types and isinstance(m, self.leaf_module_types):
            return True
        return _is_atomic_module(m)

    def _run(self, kind: str, target, args, kwargs):
        a, kw = _concrete(args), _concrete(kwargs)
        # Run the real operation with fx's monkey patches (Module.__call__, getattr)
        # reverted, so a leaf module executes as plain PyTorch.
        # While a real op runs, fx's patched Module.__call__/__getattr__ and our size wrappers
        # pass straight through (a flag checked in call_module/getattr).  Reverting fx's patches
        # per op instead costs a class setattr on nn.Module each time, which invalidates the
        # method caches of every subclass: seconds per model with timm/transformers imported.
        self._running_op += 1
        try:
            return self._run_unpatched(kind, target, a, kw)
        finally:
            self._running_op -= 1

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
        if value is None or (kind == "placeholder" and not _has_tensor(value)):
            # None stays None (`x is not None` must be False for a None inside a returned tuple
            # or a default argument), and non-tensor inputs (flags, `**kwargs` = {}) stay plain
            # Python values, so forward's control flow on them is ordinary Python.
            return value
        return ConcreteProxy(node, self, value)

    def create_args_for_root(self, root_fn, is_module, concrete_args=None):
        """One placeholder per named forward parameter, then call forward *by keyword*.

        fx's own version reads the signature of the innermost function (``inspect.unwrap``) but
        patches the outer one, which breaks ``functools.wraps`` decorators with ``*args,
        **kwargs`` (HuggingFace's ``can_return_tuple``/``check_model_inputs``): the decorator's
        ``kwargs`` received the second argument.  Calling by keyword needs no patching.
        """
        sig = inspect.signature(inspect.unwrap(root_fn))
        params = list(sig.parameters.values())
        if is_module:
            params = params[1:]  # self
        positional, named = [], {}
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = self.create_proxy("placeholder", p.name, (), {})
            if p.kind == p.POSITIONAL_ONLY:
                positional.append(value)
            else:
                named[p.name] = value

        def call(*root):
            return root_fn(*root, *positional, **named)

        return call, ([self.root] if is_module else [])

    def create_arg(self, a: Any):
        try:
            return super().create_arg(a)
        except NotImplementedError:
            # An object fx cannot put in a graph (HuggingFace's DynamicCache, a config object):
            # the graph is only analysed, so it becomes a constant attribute read by get_attr.
            name = f"_nniray_constant_{len(self._constants)}"
            self._constants[name] = a
            setattr(self.root, name, a)
            node = self.create_node("get_attr", name, (), {})
            self.values[node.name] = a
            return node

    def call_module(self, m, forward, args, kwargs):
        if self._running_op:
            return forward(*args, **kwargs)
        try:
            self.path_of_module(m)
        except NameError:
            # A module stored outside the module tree (a plain attribute, a list) has no name
            # to call it by: trace through its forward as ordinary code instead.
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        # Parameters read in forward become get_attr nodes with their concrete value.
        if self._running_op:
            return attr_val
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
        self._size_patch = _SizeVarargsPatch(self)
        with self._size_patch:
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
    try:
        gm = fx.GraphModule(tracer.root, graph)
    finally:
        for name in tracer._constants:  # leave the user's model as it was
            delattr(model, name)
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
