"""Model spaces: ``ModelSpace`` / ``@model_wrapper``, ``MutableModule``, ``@basic_unit``.

A model space is an ordinary ``torch.nn.Module`` built with choices inside.  Built normally
(*space mode*) it is a working model that uses each choice's default (the first candidate), and
remembers its choices; :func:`model_space_mutables` lists them by label.  Built inside
``fixed_arch(arch)`` it is the concrete model of ``arch``.  Because the outermost model-space
constructor records its arguments and numbers automatic labels from 1 (``label_scope``), the same
space can be rebuilt anywhere, for any architecture: :func:`freeze_model`.

A *basic unit* (every module of ``nniray.nas.nn``, or a class decorated with ``@basic_unit``)
accepts mutables (``ValueChoice``, ``nniray.choice``, arithmetic on them) as init arguments:
they are frozen by the architecture (or to their default in space mode) before the real
``__init__`` runs, and recorded so the space knows them.
"""
from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from nniray.mutable import LabeledMutable, Mutable, MutableList, label_scope
from nniray.mutable.frozen import current_sample

from ...fixed import fixed_value

__all__ = ["MutableModule", "ModelSpace", "model_wrapper", "basic_unit", "model_space_mutables", "freeze_model",
           "is_model_space", "wrap_torch_module"]

T = TypeVar("T")
_local = threading.local()


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _resolve(value: Any) -> Any:
    """A mutable init argument → its value (fixed architecture, else the default)."""
    if isinstance(value, Mutable):
        return fixed_value(value) if current_sample() is not None else value.default()
    if isinstance(value, (list, tuple)) and any(isinstance(v, Mutable) for v in value):
        return type(value)(_resolve(v) for v in value)
    if isinstance(value, dict) and any(isinstance(v, Mutable) for v in value.values()):
        return {k: _resolve(v) for k, v in value.items()}
    return value


def _mutables_in(values: Any) -> list[Mutable]:
    out = []
    for v in values:
        if isinstance(v, Mutable):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(_mutables_in(v))
        elif isinstance(v, dict):
            out.extend(_mutables_in(v.values()))
    return out


def _run_space_init(original_init: Callable, self: Any, args: tuple, kwargs: dict) -> None:
    # Module-level (not in the closure below) so that a space class pickled by value (defined
    # in __main__) refers to it by name instead of capturing the thread-local state.
    outermost = _depth() == 0
    _local.depth = _depth() + 1
    try:
        if outermost:
            with label_scope():
                original_init(self, *args, **kwargs)
        else:
            original_init(self, *args, **kwargs)
    finally:
        _local.depth = _depth() - 1


def _space_init(original_init: Callable) -> Callable:
    """Wrap a model space's ``__init__``: the outermost call numbers labels from 1 and records
    the arguments (so the space can be rebuilt for any architecture)."""
    if getattr(original_init, "_nniray_space_init", False):
        return original_init

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "_nniray_init_args" not in self.__dict__:
            object.__setattr__(self, "_nniray_init_args", (args, kwargs))
        _run_space_init(original_init, self, args, kwargs)

    __init__._nniray_space_init = True  # type: ignore[attr-defined]
    return __init__


def _unit_init(original_init: Callable) -> Callable:
    if getattr(original_init, "_nniray_unit_init", False):
        return original_init

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        mutables = _mutables_in(list(args) + list(kwargs.values()))
        if not mutables:
            original_init(self, *args, **kwargs)
            return
        fixed = current_sample() is not None
        frozen_args = [_resolve(a) for a in args]
        frozen_kwargs = {k: _resolve(v) for k, v in kwargs.items()}
        try:
            original_init(self, *frozen_args, **frozen_kwargs)
        except (TypeError, ValueError) as e:
            labels = sorted({m.label for x in mutables for m in x.leaf_mutables(lambda m: isinstance(m, LabeledMutable))})
            raise type(e)(f"{type(self).__name__}: a ValueChoice ({', '.join(map(repr, labels))}) cannot be applied "
                          f"here: {e}") from None
        if not fixed:  # space mode: remember the choices (and the arguments, for one-shot supernets)
            object.__setattr__(self, "_nniray_mutables", mutables)
            object.__setattr__(self, "_nniray_init_args", (args, kwargs))

    __init__._nniray_unit_init = True  # type: ignore[attr-defined]
    return __init__


def model_wrapper(cls: type[T]) -> type[T]:
    """NNI 2.x's decorator for the outermost class of a model space (pure-python engine)."""
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise TypeError(f"@model_wrapper expects a torch.nn.Module subclass, got {cls!r}")
    cls.__init__ = _space_init(_unit_init(cls.__init__))
    cls._nniray_model_space = True
    return cls


def basic_unit(cls: type[T]) -> type[T]:
    """Treat the module as one unit whose init arguments may be ValueChoices."""
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise TypeError(f"@basic_unit expects a torch.nn.Module subclass, got {cls!r}")
    cls.__init__ = _unit_init(cls.__init__)
    cls._nniray_basic_unit = True
    return cls


_WRAPPED: dict[type, type] = {}


def wrap_torch_module(cls: type) -> type:
    """``torch.nn.X`` as a basic unit (the drop-in ``nniray.nas.nn.X``); instances are still
    ``isinstance(m, torch.nn.X)``."""
    if cls in _WRAPPED:
        return _WRAPPED[cls]
    wrapped = type(cls.__name__, (cls,), {"__init__": _unit_init(cls.__init__), "__module__": "nniray.nas.nn.pytorch",
                                          "__qualname__": cls.__name__, "__doc__": cls.__doc__,
                                          "_nniray_basic_unit": True})
    _WRAPPED[cls] = wrapped
    return wrapped


class MutableModule(nn.Module):
    """A module that owns choices.  Subclasses list their own leaves in :meth:`own_mutables`."""

    def own_mutables(self) -> list[Mutable]:
        return []

    def simplify(self) -> dict[str, LabeledMutable]:
        return model_space_mutables(self)

    def freeze(self, sample: dict) -> nn.Module:
        return freeze_model(self, sample)


class ModelSpace(MutableModule):
    """NNI 3.0's base class of a model space (``@model_wrapper`` is applied to every subclass)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _space_init(_unit_init(cls.__dict__["__init__"]))
        cls._nniray_model_space = True


def is_model_space(obj: Any) -> bool:
    cls = obj if inspect.isclass(obj) else type(obj)
    return bool(getattr(cls, "_nniray_model_space", False))


def _frozen_flag(m: Any) -> bool:
    return getattr(m, "_nniray_frozen", False)


def model_space_mutables(model: nn.Module) -> dict[str, LabeledMutable]:
    """Every decision of a model space by label (shared labels once; conflicting ones refused)."""
    found: list[Mutable] = []
    for module in model.modules():
        if isinstance(module, MutableModule):
            found.extend(module.own_mutables())
        found.extend(getattr(module, "_nniray_mutables", None) or [])
        for v in list(vars(module).values()):
            if isinstance(v, Mutable) and not _frozen_flag(v):
                found.append(v)
    return MutableList(found).simplify()


def freeze_model(model_or_cls: Any, sample: dict, init_args: tuple | None = None) -> nn.Module:
    """The concrete model of ``sample``: the space rebuilt inside ``fixed_arch(sample)``."""
    from ...fixed import fixed_arch
    if inspect.isclass(model_or_cls):
        cls, (args, kwargs) = model_or_cls, (init_args or ((), {}))
    else:
        cls = type(model_or_cls)
        recorded = model_or_cls.__dict__.get("_nniray_init_args")
        if recorded is None:
            raise TypeError(f"{cls.__name__} is not a model space that can be rebuilt: subclass "
                            f"nniray.nas.nn.ModelSpace or decorate it with @model_wrapper")
        args, kwargs = recorded
    with fixed_arch(sample, verbose=False):
        return cls(*args, **kwargs)
