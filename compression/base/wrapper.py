"""Module wrapping: make a module compute with masked parameters, inputs and outputs.

Wrapping keeps the module where it is (``model.named_modules()`` names do not change) and keeps
the *same* ``Parameter`` objects (so an optimizer built before wrapping still trains them):

* a parameter target ``weight`` moves to ``weight_orig``; its mask is the buffer ``weight_mask``;
  a forward pre-hook sets the plain attribute ``module.weight = weight_orig * weight_mask`` (the
  scheme of ``torch.nn.utils.prune``), so gradients reach ``weight_orig`` through the mask;
* ``_input_*`` targets are masked in the same pre-hook, ``_output_*`` targets in a forward hook.

``unwrap()`` puts the original parameters back under their names (unmasked values; the masks
stay with the target spaces, as NNI 3.0's ``unwrap_model`` leaves them for ``ModelSpeedup``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch

from .target_space import PruningTargetSpace, TargetType

__all__ = ["ModuleWrapper"]


class ModuleWrapper:
    """Wrapper state of one module; reachable as ``module._nniray_wrapper`` while wrapped."""

    def __init__(self, module: torch.nn.Module, module_name: str):
        self.module = module
        self.module_name = module_name
        self.target_spaces: Dict[str, PruningTargetSpace] = {}
        self.original_params: Dict[str, torch.Tensor] = {}
        self._handles: List[Any] = []
        self.is_wrapped = False

    # ---- target management -------------------------------------------------------------
    def add_target_space(self, ts: PruningTargetSpace) -> None:
        """Add (or replace the setting of) a target; an existing mask is kept."""
        old = self.target_spaces.get(ts.target_name)
        if old is not None:
            old.setting = ts.setting
            old.config_index = ts.config_index
            return
        was_wrapped = self.is_wrapped
        if was_wrapped:
            self.unwrap()
        self.target_spaces[ts.target_name] = ts
        if was_wrapped:
            self.wrap()

    def _param_targets(self) -> List[PruningTargetSpace]:
        return [ts for ts in self.target_spaces.values() if ts.type is TargetType.PARAMETER]

    # ---- wrap / unwrap -----------------------------------------------------------------
    def wrap(self) -> None:
        if self.is_wrapped:
            return
        module = self.module
        if getattr(module, "_nniray_wrapper", None) not in (None, self):
            raise RuntimeError(f"module {self.module_name!r} is already wrapped by another compressor; use "
                               f"NewCompressor.from_compressor(old, config_list) to combine them")
        masks = {name: ts._mask for name, ts in self.target_spaces.items()}
        self._param_order = list(module._parameters)
        self._buffer_order = list(module._buffers)
        for ts in self._param_targets():
            name = ts.target_name
            if name in module._parameters:
                tensor = module._parameters.pop(name)
                module.register_parameter(f"{name}_orig", tensor)
            elif name in module._buffers:
                tensor = module._buffers.pop(name)
                module.register_buffer(f"{name}_orig", tensor)
            else:
                raise RuntimeError(f"{ts.where}: module has no parameter or buffer {name!r}")
            self.original_params[name] = tensor
        module._nniray_wrapper = self
        self.is_wrapped = True
        for name, ts in self.target_spaces.items():
            ts._mask = None
            if masks[name] is not None:
                ts.mask = masks[name]
        self._refresh_params()
        self._handles.append(module.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
        self._handles.append(module.register_forward_hook(self._post_hook))

    def unwrap(self) -> None:
        if not self.is_wrapped:
            return
        module = self.module
        for h in self._handles:
            h.remove()
        self._handles.clear()
        masks = {name: ts.mask for name, ts in self.target_spaces.items()}
        for name, ts in self.target_spaces.items():
            module._buffers.pop(ts.mask_buffer_name, None)
        for name, tensor in self.original_params.items():
            if name in module.__dict__:
                del module.__dict__[name]
            if isinstance(tensor, torch.nn.Parameter):
                module._parameters.pop(f"{name}_orig", None)
                module.register_parameter(name, tensor)
            else:
                module._buffers.pop(f"{name}_orig", None)
                module.register_buffer(name, tensor)
        self.original_params.clear()
        # restore the original registration order (state_dict key order)
        for store, order in ((module._parameters, getattr(self, "_param_order", [])),
                             (module._buffers, getattr(self, "_buffer_order", []))):
            items = dict(store)
            store.clear()
            for k in order:
                if k in items:
                    store[k] = items.pop(k)
            store.update(items)
        self.is_wrapped = False
        del module._nniray_wrapper
        for name, ts in self.target_spaces.items():
            ts._mask = masks[name]

    # ---- forward -----------------------------------------------------------------------
    def _refresh_params(self, in_forward: bool = False) -> None:
        """Recompute ``module.<param> = apply(orig)``: with autograd right before forward, and as a
        detached tensor otherwise (after a mask change, after forward), so the module stays
        deep-copyable and does not keep the last graph alive."""
        for ts in self._param_targets():
            if in_forward:
                value = ts.apply(self.original_params[ts.target_name])
                for cb in ts.forward_callbacks:
                    cb(ts, value)
            else:
                with torch.no_grad():
                    value = ts.apply(self.original_params[ts.target_name]).detach()
            # A plain attribute (not a Parameter): module code reads the masked tensor.
            self.module.__dict__[ts.target_name] = value

    def _pre_hook(self, module: torch.nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
        self._refresh_params(in_forward=True)
        inputs = [ts for ts in self.target_spaces.values() if ts.type is TargetType.INPUT]
        if not inputs:
            return None
        args = list(args)
        for ts in inputs:
            key = ts.activation_key
            if isinstance(key, int) and key < len(args):
                args[key] = self._activation(ts, args[key])
            elif isinstance(key, str) and key in kwargs:
                kwargs[key] = self._activation(ts, kwargs[key])
            else:
                raise RuntimeError(f"{ts.where}: forward of {self.module_name!r} got no input {key!r}")
        return tuple(args), kwargs

    def _post_hook(self, module: torch.nn.Module, args: Tuple[Any, ...], output: Any) -> Any:
        for ts in self.target_spaces.values():
            if ts.type is not TargetType.OUTPUT:
                continue
            key = ts.activation_key
            if isinstance(output, torch.Tensor):
                if key != 0:
                    raise RuntimeError(f"{ts.where}: the output of {self.module_name!r} is one tensor; "
                                       f"use '_output_' or '_output_0'")
                output = self._activation(ts, output)
            elif isinstance(output, (tuple, list)) and isinstance(key, int):
                items = list(output)
                items[key] = self._activation(ts, items[key])
                output = type(output)(items) if isinstance(output, list) else tuple(items)
            elif isinstance(output, dict) and key in output:
                output = dict(output)
                output[key] = self._activation(ts, output[key])
            else:
                raise RuntimeError(f"{ts.where}: cannot find output {key!r} of {self.module_name!r}")
        # the graph keeps what backward needs; the attribute itself becomes a plain tensor again
        for ts in self._param_targets():
            value = self.module.__dict__.get(ts.target_name)
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                self.module.__dict__[ts.target_name] = value.detach()
        return output

    @staticmethod
    def _activation(ts: PruningTargetSpace, value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            raise RuntimeError(f"{ts.where}: the value is a {type(value).__name__}, not a tensor")
        value = ts.apply(value)
        ts.activation_shape = value.shape
        ts.activation = value.detach()
        for cb in ts.forward_callbacks:
            cb(ts, value)
        return value
