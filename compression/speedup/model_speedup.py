"""``ModelSpeedup``: turn channel masks into a physically smaller model.

Pipeline (``speedup_model``):

1. load the masks, derive bias masks (NNI 3.0 ``align``), multiply them into the weights;
2. trace the model with :func:`concrete_trace` (or use the given ``graph_module``);
3. **direct** pass: which values are zero (see :mod:`.mask_updater`);
4. **indirect** pass: which values some consumer needs; each value keeps
   ``union over consumers`` and is closed to whole slices (its *box*);
5. **conflict resolution by verification**: the whole graph is run twice, once in the
   *full* world (original modules, every value zeroed outside its box — this is the masked
   model) and once in the *reduced* world (values shrunk to their boxes, replaced modules).
   A node whose reduced result is not the reduced full result (a residual add whose inputs
   keep different channels, a ``view`` with a hard-coded size, a grouped conv with uneven
   groups…) gets its boxes widened — first to the union of its same-shaped operands, then to
   everything — and the run repeats until every node agrees.  Widening is always correct;
   it only costs speed, and it is logged with the op and node that caused it;
6. replace modules in the original model (in place), then check the sped-up model against
   the masked model on ``dummy_input`` and raise if they differ.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.fx as fx
import torch.nn as nn
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from nniray.errors import NniRayError

from .mask_updater import (MaskUpdater, Prober, is_float_tensor, is_shape_only, ones_like_struct,
                           or_struct, zeros_like_struct)
from .masks import Box, box_is_full, box_mask, box_of, load_masks, reduce_tensor, union_box
from ..base.layout import is_transposed_weight, out_channel_dim
from .replacers import (FOLLOWER_TYPES, CannotReplace, ReplaceContext, builtin_replacer_for, input_channel_dim,
                        is_absorbing)
from .tracer import TraceResult, concrete_trace, normalize_dummy_input, values_from_graph_module

__all__ = ["ModelSpeedup", "UnsupportedOperationError", "SpeedupVerificationError"]

_LOG = logging.getLogger("nniray.compression.speedup")

_POOLING = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
            nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)

ATOL = 1e-4  # float32 tolerance of the final equivalence check (scaled by the output magnitude)


class UnsupportedOperationError(NniRayError, RuntimeError):
    """An op/module speedup cannot handle; the message names it and says how to extend speedup."""


class SpeedupVerificationError(NniRayError, RuntimeError):
    """The sped-up model does not reproduce the masked model."""


def _fmt_target(node: fx.Node, model: nn.Module) -> str:
    if node.op == "call_module":
        return f"module '{node.target}' ({type(model.get_submodule(node.target)).__name__})"
    if node.op == "call_function":
        return f"function {getattr(node.target, '__module__', '') or ''}.{getattr(node.target, '__name__', node.target)}"
    if node.op == "call_method":
        return f"method Tensor.{node.target}"
    return f"{node.op} {node.target}"


_CHANNEL_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                  nn.GroupNorm) + _POOLING
_CHANNEL_LAST = (nn.Linear, nn.RNNBase, nn.Embedding, nn.LayerNorm)


def _restrict_to_channel_dims(module: nn.Module, box: Box) -> Box:
    """A module's output can only shrink along its channel dimension (dim 1 for convs, norms and
    pooling; the last dim for Linear/RNN/Embedding/LayerNorm/HF Conv1D).  A consumer that reads a
    few time steps (``out[:, -1]`` after an LSTM) or positions must not ask the module to shrink
    there: that only forces widening that would also undo its channel reduction."""
    n = len(box)
    if isinstance(module, _CHANNEL_FIRST):
        allowed = {1}
    elif isinstance(module, _CHANNEL_LAST) or input_channel_dim(module) == -1:
        allowed = {n - 1}
    else:
        return box
    return [k if d in allowed else None for d, k in enumerate(box)]


class _Named:
    def __init__(self, name: str):
        self.name = name


class ModelSpeedup:
    """Remove pruned channels for real (NNI 3.0 signature).

    Args:
        model: the model whose masks were computed (unwrapped; modified in place).
        dummy_input: tensor, tuple/list (positional) or dict (keyword) inputs; the first
            dimension is the batch.
        masks_or_file: ``{module_name: {target_name: mask}}`` or a ``torch.save`` file of it.
        map_location: passed to ``torch.load``.
        batch_dim: the batch dimension of ``dummy_input`` (speedup never shrinks it).
        batch_size: accepted for NNI compatibility; probing uses ``dummy_input``'s own shape
            with two random sign-flipped draws instead of a batch of ``batch_size``.
        customized_mask_updaters: :class:`MaskUpdater` objects tried before the built-ins.
        customized_replacers: callables ``(module, ReplaceContext) -> module | None`` (or
            :class:`Replacer` objects), tried before the built-ins; ``None`` = not mine.
        graph_module: a ready ``torch.fx.GraphModule`` of ``model`` (skips tracing).
        garbage_collect_values: drop the traced values after speedup.
        logger: a ``logging.Logger``.
    """

    def __init__(self, model: nn.Module, dummy_input: Any, masks_or_file: Any, map_location=None,
                 batch_dim: int = 0, batch_size: int = 8,
                 customized_mask_updaters: Optional[Sequence[MaskUpdater]] = None,
                 customized_replacers: Optional[Sequence[Any]] = None,
                 graph_module: Optional[fx.GraphModule] = None, garbage_collect_values: bool = True,
                 logger: Optional[logging.Logger] = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(batch_dim, int) or batch_dim < 0:
            raise ValueError(f"batch_dim must be a non-negative int, got {batch_dim!r}")
        self.model = model
        self.dummy_input = dummy_input
        self.masks = load_masks(masks_or_file, model, map_location)
        self.batch_dim, self.batch_size = batch_dim, batch_size
        self.mask_updaters = list(customized_mask_updaters or [])
        self.replacers = list(customized_replacers or [])
        for r in self.replacers:
            if not callable(r):
                raise TypeError(f"customized_replacers items must be callables (module, ctx) -> module|None, got {r!r}")
        self.graph_module = graph_module
        self.garbage_collect_values = garbage_collect_values
        self.logger = logger or _LOG
        self.trace: Optional[TraceResult] = None
        self.boxes: Dict[str, Any] = {}
        self.widened: List[str] = []
        self.aligned: Dict[str, List[int]] = {}
        self.max_abs_diff: Optional[float] = None
        # Bounds of conflict resolution (each round runs the graph twice): after `escalate_after`
        # rounds a failing node keeps its values whole at once instead of first trying the union
        # of its operands; after `max_rounds` rounds or `time_budget_s` seconds nothing is shrunk.
        self.max_rounds, self.escalate_after, self.time_budget_s = 60, 8, 300.0

    # ------------------------------------------------------------------ helpers
    def _module(self, name: str) -> nn.Module:
        return self.model.get_submodule(name)

    def _replacer(self, module: nn.Module):
        for r in self.replacers:
            yield r
        b = builtin_replacer_for(module)
        if b is not None:
            yield b

    def _run(self, node: fx.Node, env: Dict[str, Any], module_override: Optional[nn.Module] = None):
        args = fx.node.map_arg(node.args, lambda n: env[n.name])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n.name])
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        if node.op == "call_module":
            mod = module_override if module_override is not None else self._module(node.target)
            return mod(*args, **kwargs)
        raise RuntimeError(f"cannot run node kind {node.op}")

    def _input_leaves(self, node: fx.Node) -> List[fx.Node]:
        """Input nodes in argument order (first = the module's main input)."""
        order: List[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: order.append(n))
        return order

    # ------------------------------------------------------------------ steps
    def _apply_masks(self) -> None:
        with torch.no_grad():
            for name, targets in self.masks.items():
                module = self._module(name)
                for target, mask in targets.items():
                    p = getattr(module, target, None)
                    if isinstance(p, torch.Tensor):
                        p.mul_(mask.to(p.device, p.dtype))

    def _trace(self) -> None:
        if self.graph_module is not None:
            self.trace = values_from_graph_module(self.graph_module, self.model, self.dummy_input)
        else:
            self.trace = concrete_trace(self.model, self.dummy_input)
        self.nodes = list(self.trace.graph.nodes)

    def _check_supported(self) -> None:
        called = {}
        for n in self.nodes:
            if n.op == "call_module":
                called.setdefault(n.target, []).append(n)
        used_params = {n.target.rpartition(".")[0] for n in self.nodes if n.op == "get_attr"}
        for name in list(self.masks):
            if name not in called:
                inside_leaf = any(name.startswith(t + ".") for t in called)
                if name in used_params or inside_leaf:
                    raise UnsupportedOperationError(
                        f"module '{name}' has masks but is not called as one op in the traced graph "
                        f"({'it sits inside leaf module' if inside_leaf else 'its parameters are read by functional code'}). "
                        f"Speedup replaces whole modules: exclude '{name}' from pruning, make it an atomic "
                        f"module called as module(x), or pass a graph_module where it is a leaf.")
                # Not executed on dummy_input at all (e.g. auxiliary heads in eval mode).
                self.logger.warning("speedup: module '%s' has masks but is not run on dummy_input; "
                                    "it is left unchanged", name)
                del self.masks[name]
                continue
            module = self._module(name)
            if not any(True for _ in self._replacer(module)):
                node = called[name][0]
                raise UnsupportedOperationError(
                    f"no replacer for {type(module).__name__} (module '{name}', fx node '{node.name}'): "
                    f"speedup does not know how to shrink it. Register one with "
                    f"ModelSpeedup(..., customized_replacers=[fn]) where fn(module, ctx) returns the "
                    f"smaller module (ctx.in_keep(dim) / ctx.out_keep(dim) give the kept indices).")

    def _custom_updater(self, node):
        for u in self.mask_updaters:
            if u.detect(self, node):
                return u
        return None

    def _direct_pass(self, prober: Prober) -> Dict[str, Any]:
        direct: Dict[str, Any] = {}
        for n in self.nodes:
            value = self.trace.values.get(n.name)
            if n.op in ("placeholder", "get_attr"):
                direct[n.name] = ones_like_struct(value)
                continue
            if n.op == "output":
                continue
            u = self._custom_updater(n)
            res = NotImplemented
            if u is not None:
                res = u.direct_update(self, n, {i.name: direct.get(i.name) for i in n.all_input_nodes})
            if res is NotImplemented:
                if n.op == "call_module" and isinstance(self._module(n.target), FOLLOWER_TYPES + (nn.GroupNorm,)):
                    self._align_norm(n, direct)
                try:
                    res = prober.direct(n, direct)
                except Exception as e:  # the op cannot run on probe inputs
                    raise UnsupportedOperationError(
                        f"mask propagation failed at fx node '{n.name}' ({_fmt_target(n, self.model)}): "
                        f"{type(e).__name__}: {e}. Register a MaskUpdater for it via "
                        f"ModelSpeedup(..., customized_mask_updaters=[...]).") from e
                if n.op == "call_module" and isinstance(self._module(n.target), FOLLOWER_TYPES):
                    res = self._follower_direct(n, direct, res)
            direct[n.name] = res
        return direct

    def _follower_direct(self, node: fx.Node, direct: Dict[str, Any], probed: Any) -> Any:
        """A norm's output may be non-zero exactly where its input may be, plus wherever the module
        maps a zero input to a non-zero value.  Not probed: a norm subclass that applies its own
        activation (timm's BatchNormAct2d) adds a shift that dwarfs the small probe values, so a
        ReLU after it would look dead in both probes and live channels would be dropped."""
        im = direct.get(self._input_leaves(node)[0].name)
        value = self.trace.values.get(node.name)
        if not isinstance(im, torch.Tensor) or not isinstance(value, torch.Tensor) or im.shape != value.shape:
            return probed
        with torch.no_grad():
            at_zero = self._module(node.target)(torch.zeros_like(value))
        return torch.maximum((im != 0).to(torch.float32), (at_zero != 0).to(torch.float32))

    def _align_norm(self, node: fx.Node, direct: Dict[str, Any]) -> None:
        """Mask BatchNorm (and whole GroupNorm groups) whose input is always zero (NNI 3.0 aligns BN to its conv).

        Without this a pruned filter followed by BN would still emit BN's constant shift, and
        the pruned model would depend on whether speedup can remove that channel.
        """
        module = self._module(node.target)
        im = direct.get(self._input_leaves(node)[0].name)
        if not isinstance(im, torch.Tensor) or im.dim() < 2 or getattr(module, "weight", None) is None:
            return
        dead = ~(im != 0).any(dim=[d for d in range(im.dim()) if d != 1])
        if isinstance(module, nn.GroupNorm):  # only whole dead groups give a constant output
            per = module.num_channels // module.num_groups
            dead = dead.view(module.num_groups, per).all(1, keepdim=True).expand(module.num_groups, per).reshape(-1)
        if bool(dead.any()):
            with torch.no_grad():
                module.weight[dead] = 0
                if module.bias is not None:
                    module.bias[dead] = 0
            self.aligned[node.target] = dead.nonzero().flatten().tolist()

    def _channel_project(self, need: torch.Tensor, direct: Optional[torch.Tensor], dim: int) -> torch.Tensor:
        """Keep whole channels along ``dim``: needed by this module AND possibly non-zero."""
        dim = dim % need.dim()
        others = [d for d in range(need.dim()) if d != dim]
        keep = (need != 0).any(dim=others) if others else need != 0
        if direct is not None and direct.shape == need.shape:
            keep = keep & ((direct != 0).any(dim=others) if others else direct != 0)
        view = [1] * need.dim()
        view[dim] = need.shape[dim]
        return keep.to(torch.float32).view(view).expand(need.shape).clone()

    def _regularize_groups(self, module: nn.Module, keep: torch.Tensor, per_group: int, groups: int,
                           active: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Pad kept channels so every active group keeps the same number (grouped convs)."""
        keep = keep.clone().bool()
        kg = keep.view(groups, per_group)
        act = kg.any(1) if active is None else active
        if not bool(act.any()):
            act = act.clone()
            act[0] = True
        m = int(kg[act].sum(1).max().item()) if bool(act.any()) else 0
        m = max(m, 1)
        for g in range(groups):
            if not bool(act[g]):
                kg[g] = False
                continue
            missing = m - int(kg[g].sum())
            for i in range(per_group):
                if missing <= 0:
                    break
                if not kg[g, i]:
                    kg[g, i] = True
                    missing -= 1
        return kg.view(-1)

    def _indirect_pass(self, prober: Prober, direct: Dict[str, Any]) -> Dict[str, Any]:
        reqs: Dict[str, Any] = {}
        boxes: Dict[str, Any] = {}
        for n in reversed(self.nodes):
            value = self.trace.values.get(n.name)
            if n.op == "output":
                for i in n.all_input_nodes:
                    reqs[i.name] = or_struct(reqs.get(i.name), ones_like_struct(self.trace.values.get(i.name)))
                continue
            if n.op == "placeholder":
                boxes[n.name] = tree_map(lambda v: [None] * v.dim() if isinstance(v, torch.Tensor) else None, value)
                continue
            final = reqs.get(n.name)
            if final is None:
                final = zeros_like_struct(value)
            if n.op == "get_attr":
                boxes[n.name] = tree_map(lambda v: [None] * v.dim() if isinstance(v, torch.Tensor) else None, value)
                continue
            # close to boxes (whole slices)
            fl, spec = tree_flatten(final)
            vl = tree_flatten(value)[0]
            bl = []
            module = self._module(n.target) if n.op == "call_module" else None
            for f, v in zip(fl, vl):
                if isinstance(v, torch.Tensor) and isinstance(f, torch.Tensor) and f.shape == v.shape \
                        and bool((f != 0).any()):
                    b = box_of(f)
                    if module is not None:
                        b = _restrict_to_channel_dims(module, b)
                else:
                    # Nothing needs any of it (x * 0, only its shape is read): keeping it whole
                    # costs nothing and never conflicts with the ops that produced it.
                    b = [None] * v.dim() if isinstance(v, torch.Tensor) else None
                bl.append(b)
            grouped = isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 \
                and not isinstance(module, nn.modules.conv._ConvTransposeNd)
            if grouped and isinstance(value, torch.Tensor):
                k = bl[0][1] if bl[0][1] is not None else torch.ones(value.shape[1], dtype=torch.bool)
                k = self._regularize_groups(module, k, module.out_channels // module.groups, module.groups)
                bl[0] = list(bl[0])
                bl[0][1] = None if bool(k.all()) else k
            boxes[n.name] = tree_unflatten(bl, spec)
            if is_shape_only(n) or value is None:
                continue  # only metadata is read / a None picked from a tuple: no input value is needed
            fmask = tree_unflatten([box_mask(b, v.shape) if isinstance(v, torch.Tensor) else None
                                    for b, v in zip(bl, vl)], spec)
            u = self._custom_updater(n)
            need = NotImplemented
            if u is not None:
                need = u.indirect_update(self, n, fmask)
            if need is NotImplemented:
                try:
                    # Structural need: probe with inputs that are NOT zeroed by the direct
                    # masks, so a zero input of ReLU still counts as needed where the output
                    # is kept. Known zeros are dropped only where a module can absorb them.
                    need = prober.indirect(n, {}, fmask)
                except Exception as e:
                    raise UnsupportedOperationError(
                        f"backward mask propagation failed at fx node '{n.name}' ({_fmt_target(n, self.model)}): "
                        f"{type(e).__name__}: {e}. Register a MaskUpdater via customized_mask_updaters.") from e
            inputs = self._input_leaves(n)
            pooling = isinstance(module, _POOLING) or \
                (n.op == "call_function" and "pool" in getattr(n.target, "__name__", ""))
            for idx, i in enumerate(inputs):
                if i.op == "get_attr":
                    continue
                r = need.get(i.name) if isinstance(need, dict) else None
                if r is None:
                    r = zeros_like_struct(self.trace.values.get(i.name))
                if module is not None and idx == 0 and isinstance(r, torch.Tensor) and r.dim() >= 2:
                    if is_absorbing(module) and not grouped:
                        r = self._channel_project(r, direct.get(i.name), input_channel_dim(module))
                    elif grouped:
                        # drop zero input channels too, then pad groups back to equal counts
                        r = self._channel_project(r, direct.get(i.name), 1)
                        ch = r.amax(dim=[d for d in range(r.dim()) if d != 1]).bool()
                        out_box = bl[0][1]
                        out_k = out_box if out_box is not None else torch.ones(module.out_channels, dtype=torch.bool)
                        active = out_k.view(module.groups, -1).any(1)
                        ch = self._regularize_groups(module, ch, module.in_channels // module.groups,
                                                     module.groups, active)
                        view = [1] * r.dim()
                        view[1] = r.shape[1]
                        r = ch.to(torch.float32).view(view).expand(r.shape).clone()
                if pooling and isinstance(r, torch.Tensor) and r.dim() >= 3:
                    # Positions a pooling window never reads (edges without padding) are not
                    # worth removing and would conflict with the producer: keep whole planes.
                    r = r.amax(dim=list(range(2, r.dim())), keepdim=True).expand(r.shape).clone()
                reqs[i.name] = or_struct(reqs.get(i.name), r)
        # placeholders are never shrunk
        return boxes

    # ---------------------------------------------------------------- verification
    def _replacement(self, node: fx.Node, boxes: Dict[str, Any], values: Dict[str, Any]) -> Optional[nn.Module]:
        module = self._module(node.target)
        inputs = self._input_leaves(node)
        in_boxes, in_shapes = [], []
        for i in inputs:
            b, v = boxes.get(i.name), values.get(i.name)
            if isinstance(v, torch.Tensor):
                in_boxes.append(b if b is not None else [None] * v.dim())
                in_shapes.append(tuple(v.shape))
        out_v = values.get(node.name)
        out_box = boxes.get(node.name)
        if not isinstance(out_v, torch.Tensor):
            out_box, out_shape = [], ()
        else:
            out_shape = tuple(out_v.shape)
            out_box = out_box if out_box is not None else [None] * out_v.dim()
        if not in_boxes:
            in_boxes, in_shapes = [[]], [()]
        if all(box_is_full(b) for b in in_boxes) and box_is_full(out_box):
            return None
        ctx = ReplaceContext(node.target, node, in_boxes, in_shapes, out_box, out_shape)
        for r in self._replacer(module):
            new = r(module, ctx)
            if new is not None:
                return new
        return None  # no replacer: the module runs unchanged on the reduced input (verified)

    def _verify_pass(self, boxes: Dict[str, Any]):
        """Run full and reduced worlds; return (failing nodes, full-world output, replacements)."""
        inputs = normalize_dummy_input(self.model, self.dummy_input)
        values = self.trace.values
        full: Dict[str, Any] = {}
        red: Dict[str, Any] = {}
        failures: Dict[str, str] = {}
        replacements: Dict[str, nn.Module] = {}
        module_boxes: Dict[str, Any] = {}
        out_value = None
        with torch.no_grad():
            for n in self.nodes:
                if n.op == "placeholder":
                    v = inputs.get(n.target, values.get(n.name))
                    full[n.name] = red[n.name] = v
                    continue
                if n.op == "get_attr":
                    full[n.name] = red[n.name] = values.get(n.name)
                    continue
                if n.op == "output":
                    out_value = fx.node.map_arg(n.args[0], lambda a: full[a.name])
                    continue
                f = self._run(n, full)
                box = boxes.get(n.name)
                if box is not None and any(isinstance(t, torch.Tensor) for t in tree_flatten(f)[0]):
                    f = tree_map(lambda t: t, f)
                    fl, spec = tree_flatten(f)
                    bl = tree_flatten(box, is_leaf=lambda x: isinstance(x, list))[0]
                    if len(bl) == len(fl):
                        fl = [t * box_mask(b, t.shape, t.dtype) if is_float_tensor(t) and b is not None
                              and not box_is_full(b) else t for t, b in zip(fl, bl)]
                    f = tree_unflatten(fl, spec)
                full[n.name] = f
                expected = self._reduce_struct(f, box)
                try:
                    override = None
                    if n.op == "call_module":
                        override = self._replacement(n, boxes, values)
                        key = n.target
                        sig = (self._box_sig(boxes, self._input_leaves(n)), self._box_sig(boxes, [n]))
                        shared_params = any(True for _ in self._module(key).parameters(recurse=False))
                        if shared_params and key in module_boxes and module_boxes[key] != sig:
                            raise CannotReplace(f"shared: module '{key}' is called more than once with "
                                                f"different kept channels")
                        module_boxes[key] = sig
                        if override is not None:
                            replacements[n.target] = override
                    r = self._run(n, red, override)
                    why = self._compare(r, expected)
                except Exception as e:  # reduced computation impossible
                    r, why = expected, f"{type(e).__name__}: {e}"
                if why:
                    failures[n.name] = why
                    r = expected
                red[n.name] = r
        return failures, out_value, replacements

    @staticmethod
    def _box_sig(boxes, nodes):
        sig = []
        for n in nodes:
            b = boxes.get(n.name)
            for leaf in tree_flatten(b, is_leaf=lambda x: isinstance(x, list))[0]:
                if isinstance(leaf, list):
                    sig.append(tuple(None if k is None else tuple(k.nonzero().flatten().tolist()) for k in leaf))
        return tuple(sig)

    @staticmethod
    def _reduce_struct(value, box):
        if box is None or not any(isinstance(t, torch.Tensor) for t in tree_flatten(value)[0]):
            return value
        vl, spec = tree_flatten(value)
        bl = tree_flatten(box, is_leaf=lambda x: isinstance(x, list))[0]
        if len(vl) != len(bl):
            return value
        return tree_unflatten([reduce_tensor(v, b) if isinstance(v, torch.Tensor) and isinstance(b, list) else v
                               for v, b in zip(vl, bl)], spec)

    @staticmethod
    def _compare(got, expected) -> str:
        gl, gs = tree_flatten(got)
        el, es = tree_flatten(expected)
        if len(gl) != len(el):
            return "output structure differs"
        for g, e in zip(gl, el):
            if isinstance(e, torch.Tensor):
                if not isinstance(g, torch.Tensor) or g.shape != e.shape:
                    return f"shape {tuple(getattr(g, 'shape', ()))} instead of {tuple(e.shape)}"
                if e.is_floating_point():
                    scale = max(1.0, float(e.abs().max())) if e.numel() else 1.0
                    if e.numel() and not torch.allclose(g, e, rtol=1e-4, atol=1e-5 * scale, equal_nan=True):
                        return f"values differ by {float((g - e).abs().max()):.3g}"
                elif not torch.equal(g, e):
                    return "integer values differ"
        return ""

    def _align_elementwise(self, boxes: Dict[str, Any]) -> None:
        """Element-wise nodes (output and tensor inputs of one shape: BN, activations, same-shape
        adds…) must keep identical slices on all of them; widen to the union until stable.

        This settles, before verification, e.g. a grouped conv whose groups were padded."""
        vals = self.trace.values
        todo = []
        for n in self.nodes:
            v = vals.get(n.name)
            if n.op not in ("call_function", "call_method", "call_module") or not isinstance(v, torch.Tensor):
                continue
            if n.op == "call_module":
                m = self._module(n.target)
                if any(True for _ in m.parameters(recurse=False)) and not isinstance(m, FOLLOWER_TYPES):
                    continue
            ins = [i for i in self._input_leaves(n) if i.op != "get_attr"
                   and isinstance(vals.get(i.name), torch.Tensor) and vals[i.name].shape == v.shape]
            if ins and isinstance(boxes.get(n.name), list):
                todo.append([n.name] + [i.name for i in ins if isinstance(boxes.get(i.name), list)])
        for _ in range(len(self.nodes) + 1):
            changed = False
            for names in todo:
                u = boxes[names[0]]
                for nm in names[1:]:
                    u = union_box(u, boxes[nm])
                for nm in names:
                    if self._box_sig(boxes, [_Named(nm)]) != self._box_sig({nm: u}, [_Named(nm)]):
                        boxes[nm] = list(u)
                        changed = True
            if not changed:
                break

    def _widen(self, boxes: Dict[str, Any], node: fx.Node, stage: int) -> None:
        """Widen the boxes around a failing node: stage 0 aligns same-shaped operands, then all."""
        value = self.trace.values.get(node.name)
        names = [node.name] + [i.name for i in self._input_leaves(node) if i.op not in ("get_attr", "placeholder")]
        if stage == 0 and isinstance(value, torch.Tensor):
            same = [nm for nm in names if isinstance(self.trace.values.get(nm), torch.Tensor)
                    and self.trace.values[nm].shape == value.shape and isinstance(boxes.get(nm), list)]
            u = boxes[node.name]
            for nm in same:
                u = union_box(u, boxes[nm])
            for nm in same:
                boxes[nm] = list(u)
            return
        for nm in names:
            v = self.trace.values.get(nm)
            boxes[nm] = tree_map(lambda t: [None] * t.dim() if isinstance(t, torch.Tensor) else None, v)

    # ------------------------------------------------------------------ main
    def speedup_model(self) -> nn.Module:
        was_training = self.model.training
        self.model.eval()
        self._apply_masks()
        self._trace()
        self._check_supported()
        prober = Prober(self._run, self.trace.values)
        direct = self._direct_pass(prober)
        boxes = self._indirect_pass(prober, direct)
        self._align_elementwise(boxes)
        attempts: Dict[str, int] = {}
        started = time.monotonic()
        by_name = {n.name: n for n in self.nodes}
        for round_ in range(self.max_rounds + 1):
            failures, reference, replacements = self._verify_pass(boxes)
            if not failures:
                break
            if round_ == self.max_rounds or time.monotonic() - started > self.time_budget_s:
                # Bounded: keep every value whole (the masked model itself, zeros stay) rather
                # than spin; the log says which nodes kept conflicting.
                self.logger.warning(
                    "speedup: conflicts not resolved after %d rounds / %.0f s (last: %s); keeping all channels "
                    "(no speedup). Raise max_rounds/time_budget_s, or exclude the layers named here from pruning",
                    round_, time.monotonic() - started, "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:3]))
                for n in self.nodes:
                    v = self.trace.values.get(n.name)
                    boxes[n.name] = tree_map(lambda t: [None] * t.dim() if isinstance(t, torch.Tensor) else None, v)
                self.widened.append("all nodes (conflict resolution bound reached)")
                failures, reference, replacements = self._verify_pass(boxes)
                if failures:  # whole values cannot conflict; this would be a bug in speedup itself
                    raise SpeedupVerificationError(f"speedup: the unreduced graph does not verify: {failures}")
                break
            for name, why in failures.items():
                node = by_name[name]
                stage = attempts.get(name, 0)
                if round_ >= self.escalate_after:
                    stage = max(stage, 1)  # a long cascade: keep whole values around each failure at once
                if "shared: module" in why:
                    stage = 1
                    for other in self.nodes:
                        if other.op == "call_module" and other.target == node.target and other is not node:
                            self._widen(boxes, other, 1)
                attempts[name] = stage + 1
                self.widened.append(f"{name} ({_fmt_target(node, self.model)}): {why}")
                self.logger.debug("speedup: widening around node %s: %s", name, why)
                self._widen(boxes, node, stage)
        self.boxes = boxes
        self._report_kept(boxes)
        for name, new in replacements.items():
            self._set_module(name, new)
        self.model.train(was_training)
        self._verify_end_to_end(reference)
        if self.garbage_collect_values:
            self.trace.values.clear()
        return self.model

    def _set_module(self, name: str, new: nn.Module) -> None:
        parent_name, _, attr = name.rpartition(".")
        parent = self.model.get_submodule(parent_name) if parent_name else self.model
        setattr(parent, attr, new)

    def _report_kept(self, boxes) -> None:
        for name, targets in self.masks.items():
            w = targets.get("weight")
            if w is None or w.dim() < 1:
                continue
            module = self._module(name)
            if w.dim() > 1:  # output channels whose weights are all pruned (dim 1 for ConvTranspose/Conv1D)
                pruned = int((w.transpose(0, out_channel_dim(module)).flatten(1).sum(1) == 0).sum())
            else:
                pruned = int((w == 0).sum())
            node = next((n for n in self.nodes if n.op == "call_module" and n.target == name), None)
            if node is None or pruned == 0:
                continue
            b = boxes.get(node.name)
            dim = -1 if isinstance(module, (nn.Linear, nn.Embedding)) or input_channel_dim(module) == -1 else 1
            v = self.trace.values.get(node.name)
            if not isinstance(v, torch.Tensor) or not isinstance(b, list):
                continue
            k = b[dim % v.dim()]
            removed = 0 if k is None else int((~k).sum())
            if removed < pruned and not isinstance(module, nn.Embedding):
                self.logger.warning("speedup kept %d of the %d pruned output channels of '%s' (zeros stay); "
                                    "widened around: %s", pruned - removed, pruned, name,
                                    "; ".join(self.widened[:5]) or "dependent layers keep them")

    def _verify_end_to_end(self, reference) -> None:
        inputs = normalize_dummy_input(self.model, self.dummy_input)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(**inputs)
        self.model.train(was_training)
        ol, el = tree_flatten(out)[0], tree_flatten(reference)[0]
        diff = 0.0
        for o, e in zip(ol, el):
            if isinstance(e, torch.Tensor) and e.is_floating_point():
                if not isinstance(o, torch.Tensor) or o.shape != e.shape:
                    raise SpeedupVerificationError(
                        f"sped-up model output has shape {tuple(getattr(o, 'shape', ()))}, masked model "
                        f"{tuple(e.shape)}; a shape-constrained op probably hard-codes a channel count")
                diff = max(diff, float((o - e).abs().max()) if e.numel() else 0.0)
                scale = max(1.0, float(e.abs().max())) if e.numel() else 1.0
                if diff > ATOL * scale:
                    raise SpeedupVerificationError(
                        f"sped-up model differs from the masked model by {diff:.3g} (> {ATOL} x {scale:.3g}); "
                        f"widened nodes: {self.widened[:10]}")
        self.max_abs_diff = diff
