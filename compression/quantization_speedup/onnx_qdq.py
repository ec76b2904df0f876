"""Export a float model to ONNX and insert QuantizeLinear/DequantizeLinear (QDQ) nodes that carry a
quantizer's calibration config, so an int8 engine (ONNX Runtime, TensorRT) runs the model with the
scales that calibration or QAT found.

* Export uses the TorchScript exporter (``dynamo=False``) in eval mode: it folds BatchNorm into the
  preceding conv and names every node after its module scope (``/layer1/layer1.0/conv1/Conv``), which
  is how calibration entries (keyed by module name) find their tensors.
* ``_input_``/``_output_`` entries become a Q/DQ pair on the module's input/output tensor with the
  calibrated scale and zero point (per tensor, 8 bits: the kernels engines have).
* ``weight`` entries become int8 initializers + DequantizeLinear, per output channel, symmetric. The
  weights are requantized from the exported (BN-folded) values: the grid is determined by the weights
  themselves, and for conv+BN the exported weight is the folded one the calibration never saw.
* A bias next to a quantized weight and input becomes int32 with scale ``s_input * s_weight``, the
  form engines fuse into integer kernels.
"""
from __future__ import annotations

import io
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ["export_onnx", "insert_qdq", "module_scope", "DeploymentError"]

_COMPUTE = ("Conv", "Gemm", "MatMul", "ConvTranspose")


class DeploymentError(ValueError):
    """The model or calibration config cannot be deployed as asked; the message says why and what to do."""


def module_scope(module_name: str) -> str:
    """The ONNX node-name prefix the TorchScript exporter gives a module: one segment per level,
    the attribute name, except that a numbered child (Sequential/ModuleList) is ``<parent>.<i>``:
    ``layers.0.conv1`` -> ``/layers/layers.0/conv1``, ``features.0`` -> ``/features/features.0``."""
    segments: List[str] = []
    for part in module_name.split("."):
        segments.append(f"{segments[-1]}.{part}" if part.isdigit() and segments else part)
    return "/" + "/".join(segments)


def export_onnx(model: torch.nn.Module, dummy_input: torch.Tensor, input_names: Sequence[str],
                output_names: Sequence[str], opset: int = 17) -> bytes:
    """ONNX bytes of ``model`` in eval mode, batch dimension dynamic."""
    if getattr(model, "_nniray_wrapper", None) is not None or any(
            getattr(m, "_nniray_wrapper", None) is not None for m in model.modules()):
        raise DeploymentError("the model is still wrapped by a compressor; call quantizer.unwrap_model() first and "
                              "pass the float model with the calibration config")
    was_training = model.training
    model.eval()
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter is deprecated but is the one that folds BN and keeps module scopes
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (dummy_input,), buf, dynamo=False, opset_version=opset,
                              input_names=list(input_names), output_names=list(output_names), dynamic_axes=axes,
                              do_constant_folding=True)
    finally:
        model.train(was_training)
    return buf.getvalue()


def _scope_nodes(graph: Any, module_name: str) -> List[Any]:
    scope = module_scope(module_name)
    return [n for n in graph.node if n.name.rsplit("/", 1)[0] == scope]


def _np_dtype(entry: Dict[str, Any], where: str) -> Any:
    dtype = entry.get("quant_dtype", "int8")
    if dtype not in ("int8", "uint8"):
        raise DeploymentError(f"{where} is {dtype}; int8 engines run 8-bit tensors only. Quantize it with "
                              f"quant_dtype 'int8' or 'uint8', or leave it out of the config to keep it float")
    return np.int8 if dtype == "int8" else np.uint8


def _scalar(value: Any, where: str) -> float:
    t = torch.as_tensor(value).flatten()
    if t.numel() != 1:
        raise DeploymentError(f"{where} has {t.numel()} scales (per-channel/block activation quantization); int8 "
                              f"engines take one scale per activation tensor: use granularity 'default'")
    return float(t[0])


class _Graph:
    def __init__(self, model: Any):
        import onnx
        from onnx import numpy_helper
        self.onnx, self.nh = onnx, numpy_helper
        self.model = model
        self.g = model.graph
        self.inits = {i.name: i for i in self.g.initializer}
        self.act_scales: Dict[str, float] = {}
        self.counter = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.g.initializer.append(self.nh.from_array(array, name))
        return name

    def quantize_activation(self, tensor: str, scale: float, zp: int, dtype: Any) -> None:
        if tensor in self.act_scales:
            return  # a tensor is the output of one module and the input of the next: quantize it once
        self.act_scales[tensor] = scale
        base = tensor.replace("/", "_").strip("_") or "t"
        s = self.const(f"{base}_scale", np.array(scale, dtype=np.float32))
        z = self.const(f"{base}_zero_point", np.array(zp, dtype=dtype))
        q_out, dq_out = f"{base}_quantized", f"{base}_dequantized"
        consumers = [n for n in self.g.node if tensor in n.input]
        for n in consumers:
            for i, name in enumerate(n.input):
                if name == tensor:
                    n.input[i] = dq_out
        helper = self.onnx.helper
        q = helper.make_node("QuantizeLinear", [tensor, s, z], [q_out], name=f"{base}_QuantizeLinear")
        dq = helper.make_node("DequantizeLinear", [q_out, s, z], [dq_out], name=f"{base}_DequantizeLinear")
        graph_outputs = {o.name for o in self.g.output}
        if tensor in graph_outputs:
            # keep the graph output name: dequantized values replace it
            for o in self.g.output:
                if o.name == tensor:
                    o.name = dq_out
        self._insert_after_producer(tensor, [q, dq])

    def _insert_after_producer(self, tensor: str, nodes: List[Any]) -> None:
        nodes_list = list(self.g.node)
        pos = 0
        for i, n in enumerate(nodes_list):
            if tensor in n.output:
                pos = i + 1
                break
        for k, node in enumerate(nodes):
            self.g.node.insert(pos + k, node)

    def constant(self, name: str) -> Optional[np.ndarray]:
        """The value of an initializer, also through the Identity nodes the exporter adds for shared
        constants."""
        seen = 0
        while name not in self.inits and seen < 8:
            producer = next((n for n in self.g.node if name in n.output), None)
            if producer is None or producer.op_type != "Identity":
                return None
            name = producer.input[0]
            seen += 1
        return self.nh.to_array(self.inits[name]).astype(np.float32) if name in self.inits else None

    def quantize_weight(self, node: Any, input_scale: Optional[float]) -> None:
        wname = node.input[1]
        w = self.constant(wname)
        if w is None:
            return
        axis = 0
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axis = 0 if trans_b else 1
        elif node.op_type == "MatMul":
            axis = w.ndim - 1
        elif node.op_type == "ConvTranspose":
            axis = 1
        reduce = tuple(d for d in range(w.ndim) if d != axis)
        amax = np.abs(w).max(axis=reduce) if reduce else np.abs(w)
        scale = np.maximum(amax / 127.0, np.finfo(np.float32).eps).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        base = (node.name or wname).strip("/").replace("/", "_").replace(":", "_") + "_weight"
        self.const(f"{base}_quantized", q)
        s = self.const(f"{base}_scale", scale)
        z = self.const(f"{base}_zero_point", np.zeros_like(scale, dtype=np.int8))
        dq_out = f"{base}_dequantized"
        dq = self.onnx.helper.make_node("DequantizeLinear", [f"{base}_quantized", s, z], [dq_out],
                                        name=f"{base}_DequantizeLinear", axis=axis)
        node.input[1] = dq_out
        self._drop_initializer(wname)
        nodes = [dq]
        b = self.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if b is not None and input_scale is not None and node.op_type != "MatMul":
            bname = node.input[2]
            bscale = (scale * input_scale).astype(np.float32)
            bq = np.round(b / bscale).astype(np.int32)
            bbase = (node.name or bname).strip("/").replace("/", "_").replace(":", "_") + "_bias"
            self.const(f"{bbase}_quantized", bq)
            bs = self.const(f"{bbase}_scale", bscale)
            bz = self.const(f"{bbase}_zero_point", np.zeros_like(bq, dtype=np.int32))
            bdq = self.onnx.helper.make_node("DequantizeLinear", [f"{bbase}_quantized", bs, bz],
                                             [f"{bbase}_dequantized"], name=f"{bbase}_DequantizeLinear", axis=0)
            node.input[2] = f"{bbase}_dequantized"
            self._drop_initializer(bname)
            nodes.append(bdq)
        for k, n in enumerate(nodes):
            self.g.node.insert(k, n)

    def _drop_initializer(self, name: str) -> None:
        if any(name in n.input for n in self.g.node):
            return
        for i, init in enumerate(self.g.initializer):
            if init.name == name:
                del self.g.initializer[i]
                break


#: ops that only move or select values: their output can share their input's scale (int8 kernels
#: then run them without requantizing, as ONNX Runtime's own quantizer arranges)
_PASS_THROUGH = ("MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity")
#: activations whose output quantization also stands for their input's (clipping at the zero point)
_RELU_LIKE = ("Relu",)


def _plan_activations(graph: Any, requests: Dict[str, Tuple[float, int, Any]]) -> Dict[str, Tuple[float, int, Any]]:
    """Which tensors get a Q/DQ pair, with which parameters.

    * Through a pass-through op the output reuses the input's parameters (a max-pool's range is
      inside its input's, so nothing clips); a requested output without a quantized input lends its
      parameters backwards to the input (e.g. global-average-pool -> flatten -> fc input).
    * A tensor whose only consumer is a ReLU with a quantized output is left float: the ReLU
      output's (zero-point-clipped) quantization covers it and engines fuse conv+ReLU+Q.
    """
    producer = {o: n for n in graph.node for o in n.output}
    consumers: Dict[str, List[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    order = [i.name for i in graph.input] + [o for n in graph.node for o in n.output]
    plan = dict(requests)
    for t in reversed(order):
        p = producer.get(t)
        if t in plan and p is not None and p.op_type in _PASS_THROUGH and p.input[0] not in plan:
            plan[p.input[0]] = plan[t]
    for t in order:
        p = producer.get(t)
        if p is not None and p.op_type in _PASS_THROUGH and p.input[0] in plan:
            plan[t] = plan[p.input[0]]
    for t in list(plan):
        users = consumers.get(t, [])
        if len(users) == 1 and users[0].op_type in _RELU_LIKE and users[0].output[0] in plan:
            del plan[t]
    return {t: plan[t] for t in order if t in plan}


def insert_qdq(onnx_bytes: bytes, calibration_config: Dict[str, Dict[str, Dict[str, Any]]]) -> Any:
    """The ONNX model (a ``ModelProto``) with QDQ nodes for every 8-bit entry of the config."""
    import onnx
    model = onnx.load_from_string(onnx_bytes)
    g = _Graph(model)
    weights: List[Tuple[Any, str]] = []
    requests: Dict[str, Tuple[float, int, Any]] = {}
    for module_name, targets in calibration_config.items():
        nodes = _scope_nodes(model.graph, module_name)
        if not nodes:
            raise DeploymentError(f"calibration config names module {module_name!r}, which has no node in the exported "
                                  f"graph (it may be folded away, e.g. a BatchNorm after a conv, or unused); remove it "
                                  f"from the config")
        for target, entry in targets.items():
            where = f"calibration_config[{module_name!r}][{target!r}]"
            if entry.get("scale") is None:
                raise DeploymentError(f"{where} has no scale; run compress() on the quantizer first")
            if target.startswith("_input_") or target.startswith("_output_"):
                dtype = _np_dtype(entry, where)
                tensor = nodes[0].input[0] if target.startswith("_input_") else nodes[-1].output[0]
                params = (_scalar(entry["scale"], f"{where}.scale"),
                          int(round(_scalar(entry["zero_point"], f"{where}.zero_point"))), dtype)
                requests.setdefault(tensor, params)  # a module's output is the next one's input: first wins
            elif target == "weight":
                _np_dtype(entry, where)
                compute = [n for n in nodes if n.op_type in _COMPUTE]
                if not compute:
                    raise DeploymentError(f"{where}: module {module_name!r} exports no Conv/Gemm/MatMul node")
                weights.append((compute[0], module_name))
            else:
                raise DeploymentError(f"{where}: only '_input_', 'weight' and '_output_' targets can be deployed")
    for tensor, (scale, zp, dtype) in _plan_activations(model.graph, requests).items():
        g.quantize_activation(tensor, scale, zp, dtype)
    for node, _ in weights:
        g.quantize_weight(node, g.act_scales.get(_source(model.graph, node.input[0])))
    onnx.checker.check_model(model)
    return model


def _source(graph: Any, tensor: str) -> str:
    """The float tensor a dequantized input stands for."""
    for n in graph.node:
        if n.op_type == "DequantizeLinear" and n.output[0] == tensor:
            for m in graph.node:
                if m.op_type == "QuantizeLinear" and m.output[0] == n.input[0]:
                    return m.input[0]
    return tensor
