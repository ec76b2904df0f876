"""``nniray.trace``: record how an object was built so it can be built again.

Compression evaluators need to re-create optimizers, LR schedulers, Lightning trainers and
Hugging Face trainers for the model they compress (NNI 3.0 asks users to write
``nni.trace(torch.optim.Adam)(model.parameters(), lr=1e-3)``).  Tracing a class returns a
subclass whose instances remember ``trace_symbol`` (the original class), ``trace_args`` and
``trace_kwargs``; ``trace_copy(obj)`` or ``obj.trace_copy()`` builds a fresh, equal object.
Tracing a function returns a function whose result remembers the call the same way (when the
result accepts attributes).

Generator arguments (``model.parameters()``) are turned into lists before the call, because a
generator is used up by the first constructor and could not be replayed.
"""
from __future__ import annotations

import functools
import inspect
import types
import weakref
from typing import Any, Callable, TypeVar

__all__ = ["trace", "is_traceable", "trace_copy", "get_trace", "TraceInfo", "serialize", "dump_recipe", "load_recipe",
           "check_serializable", "NotSerializableError"]

T = TypeVar("T")

_TRACED_CLASSES: dict[type, type] = {}
# Objects that refuse new attributes (``__slots__``) keep their record here instead.
_SIDE_RECORDS: "weakref.WeakKeyDictionary[Any, TraceInfo]" = weakref.WeakKeyDictionary()


class TraceInfo:
    """What a traced object was built from: ``symbol(*args, **kwargs)``."""

    __slots__ = ("symbol", "args", "kwargs")

    def __init__(self, symbol: Callable[..., Any], args: tuple, kwargs: dict):
        self.symbol = symbol
        self.args = tuple(args)
        self.kwargs = dict(kwargs)

    def rebuild(self, *args: Any, **kwargs: Any) -> Any:
        """Call the symbol again; positional ``args`` and ``kwargs`` replace recorded ones."""
        new_args = list(self.args)
        for i, a in enumerate(args):
            if i < len(new_args):
                new_args[i] = a
            else:
                new_args.append(a)
        new_kwargs = {**self.kwargs, **kwargs}
        return trace(self.symbol)(*new_args, **new_kwargs)

    def bound_arguments(self) -> dict[str, Any]:
        """The recorded call as ``{parameter_name: value}`` (for replacing one argument by name)."""
        target = self.symbol.__init__ if inspect.isclass(self.symbol) else self.symbol
        sig = inspect.signature(target)
        args = ((None,) + self.args) if inspect.isclass(self.symbol) else self.args
        bound = sig.bind_partial(*args, **self.kwargs)
        out = dict(bound.arguments)
        if inspect.isclass(self.symbol):
            out.pop(next(iter(sig.parameters)), None)  # drop ``self``
        return out

    def __repr__(self) -> str:
        return f"TraceInfo({getattr(self.symbol, '__qualname__', self.symbol)!r}, args={len(self.args)}, " \
               f"kwargs={sorted(self.kwargs)})"


def _materialize(value: Any) -> Any:
    if isinstance(value, types.GeneratorType):
        return list(value)
    return value


def _record(obj: Any, info: TraceInfo) -> None:
    try:
        object.__setattr__(obj, "_nniray_trace_info", info)
    except (AttributeError, TypeError):
        try:
            _SIDE_RECORDS[obj] = info
        except TypeError:  # neither attributes nor weak references: cannot be traced
            pass


def get_trace(obj: Any) -> TraceInfo | None:
    """The :class:`TraceInfo` of a traced object, else None."""
    info = getattr(obj, "_nniray_trace_info", None)
    if isinstance(info, TraceInfo):
        return info
    try:
        return _SIDE_RECORDS.get(obj)
    except TypeError:
        return None


def is_traceable(obj: Any) -> bool:
    """True if ``obj`` was built through :func:`trace` (so it can be re-created)."""
    return get_trace(obj) is not None


def trace_copy(obj: Any, *args: Any, **kwargs: Any) -> Any:
    """A fresh object built like ``obj``; ``args``/``kwargs`` replace the recorded ones."""
    info = get_trace(obj)
    if info is None:
        raise TypeError(f"{type(obj).__name__} object was not created through nniray.trace; "
                        f"write nniray.trace({type(obj).__name__})(...) to create it")
    return info.rebuild(*args, **kwargs)


_STATE_KEY = "__nniray_base_state__"
_TRACE_KEY = "__nniray_trace_info__"
_NAME_PREFIX = "_nniray_traced_"


def _encode_name(cls: type) -> str:
    return _NAME_PREFIX + cls.__module__.replace(".", "_D_") + "_Q_" + cls.__qualname__.replace(".", "_D_")


def __getattr__(name: str) -> Any:
    # Unpickling a traced object looks its class up here by the encoded name: rebuild it.
    if name.startswith(_NAME_PREFIX) and "_Q_" in name:
        import importlib
        module_name, qualname = name[len(_NAME_PREFIX):].split("_Q_", 1)
        obj: Any = importlib.import_module(module_name.replace("_D_", "."))
        for part in qualname.replace("_D_", ".").split("."):
            obj = getattr(obj, part)
        return _trace_class(obj)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _trace_class(cls: type) -> type:
    if getattr(cls, "_nniray_traced_class", False):
        return cls
    if cls in _TRACED_CLASSES:
        return _TRACED_CLASSES[cls]

    original_init = cls.__init__

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        args = tuple(_materialize(a) for a in args)
        kwargs = {k: _materialize(v) for k, v in kwargs.items()}
        _record(self, TraceInfo(cls, args, kwargs))
        original_init(self, *args, **kwargs)

    def _trace_copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        return trace_copy(self, *args, **kwargs)

    def __getstate__(self: Any) -> Any:
        parent = super(traced, self)
        base = parent.__getstate__() if hasattr(parent, "__getstate__") else dict(self.__dict__)
        return {_STATE_KEY: base, _TRACE_KEY: get_trace(self)}

    def __setstate__(self: Any, state: Any) -> None:
        info = None
        if isinstance(state, dict) and _STATE_KEY in state:
            info, state = state[_TRACE_KEY], state[_STATE_KEY]
        parent = super(traced, self)
        if hasattr(parent, "__setstate__"):
            parent.__setstate__(state)
        elif isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            if state[0]:
                self.__dict__.update(state[0])
            for k, v in (state[1] or {}).items():
                setattr(self, k, v)
        elif state:
            self.__dict__.update(state)
        if info is not None:
            _record(self, info)

    namespace = {
        "__init__": __init__,
        "__getstate__": __getstate__,
        "__setstate__": __setstate__,
        # pickle finds the class by this name in this module (see ``__getattr__`` below)
        "__module__": __name__,
        "__qualname__": _encode_name(cls),
        "__doc__": cls.__doc__,
        "_nniray_traced_class": True,
        "trace_symbol": property(lambda self: get_trace(self).symbol),
        "trace_args": property(lambda self: list(get_trace(self).args)),
        "trace_kwargs": property(lambda self: dict(get_trace(self).kwargs)),
        "trace_copy": _trace_copy,
    }
    traced = None  # referenced by __getstate__/__setstate__ above
    try:
        traced = type(cls)(cls.__name__, (cls,), namespace)
    except TypeError as exc:  # e.g. a final class or exotic metaclass
        raise TypeError(f"nniray.trace cannot trace class {cls.__qualname__}: {exc}") from exc
    _TRACED_CLASSES[cls] = traced
    return traced


def _trace_function(func: Callable[..., T]) -> Callable[..., T]:
    if getattr(func, "_nniray_traced_function", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        args = tuple(_materialize(a) for a in args)
        kwargs = {k: _materialize(v) for k, v in kwargs.items()}
        result = func(*args, **kwargs)
        if result is not None and not isinstance(result, (int, float, str, bool, bytes, tuple)):
            _record(result, TraceInfo(func, args, kwargs))
        return result

    wrapper._nniray_traced_function = True  # type: ignore[attr-defined]
    return wrapper


def trace(cls_or_func: T) -> T:
    """Trace a class or function so what it builds can be re-created (NNI's ``nni.trace``).

    Works as a call (``nniray.trace(torch.optim.SGD)(params, lr=0.1)``) or as a decorator on a class
    or function definition.
    """
    if inspect.isclass(cls_or_func):
        return _trace_class(cls_or_func)  # type: ignore[return-value]
    if callable(cls_or_func):
        return _trace_function(cls_or_func)  # type: ignore[arg-type]
    raise TypeError(f"nniray.trace expects a class or a function, got {type(cls_or_func).__name__}")


def serialize(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """NNI 2.x's ``nni.retiarii.serialize(cls, *args, **kwargs)``: a traced instance, i.e.
    ``trace(cls)(*args, **kwargs)``."""
    return trace(cls)(*args, **kwargs)


# -- rebuilding traced objects in another process --------------------------------------------
# A traced object travels as its *recipe* (symbol, args, kwargs; args recursively), not as its
# state: a DataLoader or a Lightning Trainer is rebuilt from the call that made it, even when
# its live state (worker processes, open files, a generator) would not pickle.

class Recipe:
    """How to build a traced object again: ``symbol(*args, **kwargs)`` (args may be recipes)."""

    __slots__ = ("symbol", "args", "kwargs")

    def __init__(self, symbol: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.symbol, self.args, self.kwargs = symbol, args, kwargs

    def __getstate__(self):
        return (self.symbol, self.args, self.kwargs)

    def __setstate__(self, state):
        self.symbol, self.args, self.kwargs = state


def dump_recipe(value: Any) -> Any:
    """``value`` with every traced object (in lists, tuples, dicts too) replaced by its recipe."""
    info = get_trace(value)
    if info is not None:
        return Recipe(info.symbol, tuple(dump_recipe(a) for a in info.args),
                      {k: dump_recipe(v) for k, v in info.kwargs.items()})
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(dump_recipe(v) for v in value)
    if isinstance(value, dict) and type(value) is dict:
        return {k: dump_recipe(v) for k, v in value.items()}
    return value


def load_recipe(value: Any) -> Any:
    """Inverse of :func:`dump_recipe`: recipes are called again (traced, so they can travel on)."""
    if isinstance(value, Recipe):
        args = tuple(load_recipe(a) for a in value.args)
        kwargs = {k: load_recipe(v) for k, v in value.kwargs.items()}
        return trace(value.symbol)(*args, **kwargs)
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(load_recipe(v) for v in value)
    if isinstance(value, dict) and type(value) is dict:
        return {k: load_recipe(v) for k, v in value.items()}
    return value


class NotSerializableError(TypeError):
    """A value that cannot travel to another process; the message names it and says nniray.trace."""


def check_serializable(value: Any, name: str) -> None:
    """Refuse, naming ``name``, a value that could not be rebuilt in a trial process: it must
    pickle (cloudpickle: functions and classes of ``__main__`` too) once traced objects are
    replaced by their recipes."""
    import cloudpickle
    try:
        cloudpickle.dumps(dump_recipe(value))
    except Exception as e:  # noqa: BLE001 - any pickling failure means the same fix
        kind = type(value).__name__
        raise NotSerializableError(
            f"{name} ({kind}) is not serializable, so it cannot be rebuilt in the trial process: {e}. Create it "
            f"with nniray.trace, e.g. nniray.trace({kind})(...), and trace its own non-primitive arguments too") \
            from None


# ``import nniray.trace`` (done by the evaluators) makes the attribute ``nniray.trace`` the module
# object, shadowing the function the package exposes lazily.  Making this module callable keeps
# ``nniray.trace(torch.optim.Adam)(...)`` working either way.
import sys as _sys


class _CallableModule(types.ModuleType):
    def __call__(self, cls_or_func: Any) -> Any:
        return trace(cls_or_func)


_sys.modules[__name__].__class__ = _CallableModule
