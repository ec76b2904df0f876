"""``nniray.nas.nn.pytorch`` (also ``nniray.nas.nn`` and ``nniray.retiarii.nn.pytorch``): a
drop-in for ``torch.nn``.  ``import nniray.nas.nn as nn`` gives every ``torch.nn`` module as a
*basic unit* (its init arguments may be ValueChoices) plus the model-space primitives."""
from __future__ import annotations

import inspect
from typing import Any

import torch.nn as _torch_nn

from nniray.mutable import ensure_frozen

from .base import MutableModule, ModelSpace, basic_unit, freeze_model, is_model_space, model_space_mutables, \
    model_wrapper, wrap_torch_module
from .choice import ChosenInputs, InputChoice, LayerChoice, Placeholder, ValueChoice
from .hypermodule import AutoActivation, InvalidArchitecture, NasBench101Cell, NasBench201Cell
from .repeat_cell import Cell, Repeat

__all__ = ["LayerChoice", "InputChoice", "ValueChoice", "ChosenInputs", "Placeholder", "Repeat", "Cell",
           "AutoActivation", "NasBench101Cell", "NasBench201Cell", "MutableModule", "ModelSpace", "model_wrapper",
           "basic_unit", "model_space_mutables", "freeze_model", "is_model_space", "ensure_frozen",
           "InvalidArchitecture", "Module", "functional", "init", "Parameter"]

# What users subclass or use as-is stays torch's own.
Module = _torch_nn.Module
Parameter = _torch_nn.Parameter
functional = _torch_nn.functional
init = _torch_nn.init
_PLAIN = {"Module", "Parameter", "ParameterList", "ParameterDict", "UninitializedParameter", "UninitializedBuffer"}


def __getattr__(name: str) -> Any:
    obj = getattr(_torch_nn, name, None)
    if obj is None:
        raise AttributeError(f"module 'nniray.nas.nn.pytorch' has no attribute {name!r} (nor has torch.nn)")
    if inspect.isclass(obj) and issubclass(obj, _torch_nn.Module) and name not in _PLAIN:
        wrapped = wrap_torch_module(obj)
        globals()[name] = wrapped  # pickle finds the class here by name
        return wrapped
    return obj
