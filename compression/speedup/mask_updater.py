"""Mask propagation over the traced graph: probing each node with masked random inputs.

Rather than one hand-written rule per operator, every node is *probed*:

* **direct sparsity** (forward, topological order): feed the node random inputs that are
  zero where the inputs are known to be zero (their masks), run it, and mark the output
  positions that come out exactly zero.  Two probes with opposite signs are OR-ed, so
  clamping ops (ReLU, ReLU6, Hardswish…) never look "zero" by chance.  Adds give the union
  of their inputs' channels, ``cat`` concatenates masks, ``view``/``flatten`` map channel
  masks onto flat features, and so on, because the op itself does the mapping.
* **indirect sparsity** (backward, reverse order): back-propagate random gradients that
  are zero on the output positions nobody needs; input positions that receive exactly zero
  gradient are not needed by this node.  A conv's input channel whose weight column is
  pruned, a producer channel that every consumer ignores, an SE gate channel multiplied by a
  pruned feature map — all fall out of autograd.

Two module kinds get rules instead of probes: BatchNorm/InstanceNorm *follow* their input
(a pruned channel stays pruned, dropping the constant that BN adds there), and modules that
can drop input channels physically (Conv/Linear) only ever shrink the channel dimension.

Users can override both steps for a node with a :class:`MaskUpdater`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

__all__ = ["MaskUpdater", "SHAPE_ONLY_METHODS"]


class MaskUpdater:
    """Override mask propagation for the nodes ``detect`` accepts (``customized_mask_updaters``).

    * ``direct_update(speedup, node, input_masks) -> output mask`` (same structure as the
      node's value; 1 = may be non-zero).  ``input_masks`` maps input node names to masks.
    * ``indirect_update(speedup, node, output_mask) -> {input_node_name: mask}``: which input
      positions the kept output positions need.
    Return ``NotImplemented`` from either to fall back to the built-in probing.
    """

    def detect(self, speedup, node: fx.Node) -> bool:  # pragma: no cover - interface
        return False

    def direct_update(self, speedup, node: fx.Node, input_masks: Dict[str, Any]):
        return NotImplemented

    def indirect_update(self, speedup, node: fx.Node, output_mask):
        return NotImplemented


# Reading only the shape/metadata of a tensor does not need any of its values.
SHAPE_ONLY_METHODS = {"size", "dim", "numel", "type", "get_device", "is_contiguous", "ndimension", "nelement"}
SHAPE_ONLY_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "layout"}


def is_shape_only(node: fx.Node) -> bool:
    if node.op == "call_method" and node.target in SHAPE_ONLY_METHODS:
        return True
    if node.op == "call_function" and node.target is getattr and len(node.args) > 1 \
            and node.args[1] in SHAPE_ONLY_ATTRS:
        return True
    return False


def is_float_tensor(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.is_floating_point()


def ones_like_struct(value: Any):
    return tree_map(lambda v: torch.ones(v.shape) if isinstance(v, torch.Tensor) else None, value)


def zeros_like_struct(value: Any):
    return tree_map(lambda v: torch.zeros(v.shape) if isinstance(v, torch.Tensor) else None, value)


def or_struct(a: Any, b: Any):
    if a is None:
        return b
    if b is None:
        return a
    la, spec = tree_flatten(a)
    lb, _ = tree_flatten(b)
    out = []
    for x, y in zip(la, lb):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape:
            out.append(torch.maximum(x, y))
        else:
            out.append(x if x is not None else y)
    return tree_unflatten(out, spec)


class Prober:
    """Runs single graph nodes on masked random inputs (the core of both passes)."""

    def __init__(self, run_node: Callable, values: Dict[str, Any], seed: int = 0):
        self.run_node = run_node       # run_node(node, env) -> output
        self.values = values           # concrete value of every node (the trace)
        self.gen = torch.Generator().manual_seed(seed)
        self._draws: list = []
        self._cursor = 0

    def _start(self, sign: float) -> None:
        if sign > 0:
            self._draws = []
        self._cursor = 0

    def _random_like(self, v: torch.Tensor, mask: Optional[torch.Tensor], sign: float) -> torch.Tensor:
        # Magnitudes in [0.01, 0.1] and random signs: never zero, and small enough that
        # clamps (Hardtanh, ReLU6) stay in their linear range.  The second probe uses the
        # *same* draw negated, so every position is positive in exactly one probe.
        if sign > 0 or self._cursor >= len(self._draws) or self._draws[self._cursor].shape != v.shape:
            mag = torch.rand(v.shape, generator=self.gen) * 0.09 + 0.01
            sgn = torch.where(torch.rand(v.shape, generator=self.gen) < 0.5, -1.0, 1.0)
            base = mag * sgn
            if sign > 0:
                self._draws.append(base)
        else:
            base = self._draws[self._cursor]
        self._cursor += 1
        r = (base * sign).to(v.dtype)
        if mask is not None and mask.shape == v.shape:
            r = r * mask.to(v.dtype)
        return r

    def probe_env(self, node: fx.Node, masks: Dict[str, Any], signs: float, grad: bool):
        self._start(signs)
        env, leaves = {}, []
        for inp in node.all_input_nodes:
            value = self.values.get(inp.name)
            if inp.op == "get_attr":
                env[inp.name] = value
                continue
            m = masks.get(inp.name)
            vl, spec = tree_flatten(value)
            if not any(is_float_tensor(v) for v in vl):
                env[inp.name] = value  # keep e.g. torch.Size intact (pytree would make it a tuple)
                continue
            ml = tree_flatten(m)[0] if m is not None else [None] * len(vl)
            if len(ml) != len(vl):
                ml = [None] * len(vl)
            new = []
            for v, mm in zip(vl, ml):
                if is_float_tensor(v):
                    r = self._random_like(v, mm, signs)
                    if grad:
                        r.requires_grad_(True)
                        leaves.append((inp.name, len(new), r))
                        new.append(r.clone())   # a non-leaf, so in-place ops are allowed
                    else:
                        new.append(r)
                else:
                    new.append(v)
            env[inp.name] = tree_unflatten(new, spec)
        return env, leaves

    def direct(self, node: fx.Node, masks: Dict[str, Any]):
        out_mask = None
        for sign in (1.0, -1.0):
            env, _ = self.probe_env(node, masks, sign, grad=False)
            with torch.no_grad():
                out = self.run_node(node, env)
            traced = tree_flatten(self.values.get(node.name))[0]
            for o, t in zip(tree_flatten(out)[0], traced):
                if isinstance(o, torch.Tensor) and isinstance(t, torch.Tensor) and o.shape != t.shape:
                    raise ValueError(f"its output shape depends on the input values ({tuple(o.shape)} on "
                                     f"probe inputs vs {tuple(t.shape)} when traced), so masks cannot be mapped")
            m = tree_map(lambda v: (v != 0).to(torch.float32) if is_float_tensor(v)
                         else (torch.ones(v.shape) if isinstance(v, torch.Tensor) else None), out)
            out_mask = or_struct(out_mask, m)
        return out_mask

    def indirect(self, node: fx.Node, masks: Dict[str, Any], out_mask) -> Dict[str, Any]:
        """{input node name: need mask (same structure as its value)}."""
        need: Dict[str, Any] = {}
        for sign in (1.0, -1.0):
            env, leaves = self.probe_env(node, masks, sign, grad=True)
            if not leaves:
                return {}
            with torch.enable_grad():
                out = self.run_node(node, env)
            ol = tree_flatten(out)[0]
            ml = tree_flatten(out_mask)[0] if out_mask is not None else [None] * len(ol)
            terms = []
            for o, m in zip(ol, ml):
                if is_float_tensor(o) and o.requires_grad:
                    g = torch.randn(o.shape, generator=self.gen).to(o.dtype)
                    if m is not None and m.shape == o.shape:
                        g = g * m
                    terms.append((o * g).sum())
            if not terms:
                # Nothing differentiable came out (integer ops, comparisons): every input
                # value may matter, so everything is needed.
                for name, _, r in leaves:
                    need.setdefault(name, {})
                return {name: ones_like_struct(self.values[name]) for name, _, _ in leaves}
            grads = torch.autograd.grad(sum(terms), [r for _, _, r in leaves], allow_unused=True)
            per_input: Dict[str, list] = {}
            for (name, idx, r), g in zip(leaves, grads):
                nz = torch.zeros(r.shape) if g is None else (g != 0).to(torch.float32)
                per_input.setdefault(name, []).append((idx, nz))
            for name, items in per_input.items():
                vl, spec = tree_flatten(self.values[name])
                ml = [torch.ones(v.shape) if isinstance(v, torch.Tensor) else None for v in vl]
                for idx, nz in items:
                    ml[idx] = nz
                need[name] = or_struct(need.get(name), tree_unflatten(ml, spec))
        return need
