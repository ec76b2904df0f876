"""Quantization benchmark: int8 accuracy and real CPU int8 latency (ONNX Runtime), with anchors.

Command (main environment, ~5 minutes on the shared 2-core machine)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/compression/quantization.py

**Accuracy** on tasks that need no download, each model trained here:

* ``digits``: scikit-learn digits (8x8), a CNN with conv-BN-ReLU;
* ``synthetic-mlp``: scikit-learn ``make_classification`` (32 features, 8 classes), an MLP;
* ``gratings-cnn``: synthetic 3x32x32 images of oriented gratings in noise (4 classes), a CNN
  with three conv-BN-ReLU blocks.

For each: fp32; nniray ``PtqQuantizer`` int8 (simulated in PyTorch, and run by the ONNX Runtime int8
engine of ``ModelSpeedupTensorRT``); nniray ``QATQuantizer`` int8 (fine-tuned from fp32, same two
numbers); anchors: PyTorch FX int8 (``prepare_fx``/``convert_fx``, x86 backend) and ONNX Runtime's own
``quantize_static`` (QDQ, per-channel, U8S8) on the same calibration batches.

Config (every quantizer): Conv2d/Linear ``_input_`` (uint8 affine), ``weight`` (int8 symmetric,
per channel), ``_output_`` (uint8 affine), ReLU ``_output_`` (uint8); every conv->BN(->ReLU) chain
found by FX tracing is a ``fuse_names`` group, so the calibrated output is the one the engine
computes after BN folding.

**Latency** (CPU, 1 thread, batch 1 and 32, median of repeated runs after warm-up, engines interleaved) of the three
trained models and two random-weight zoo architectures (``resnet-style``: a ResNet-18-layout
BasicBlock net at 3x32x32; ``vgg-style``: 8 conv-BN-ReLU layers at 3x32x32): PyTorch fp32, PyTorch
FX int8, ONNX Runtime fp32, nniray int8 on ONNX Runtime, ONNX Runtime ``quantize_static`` int8; and
model size on disk of the three ONNX files.

Results: ``benchmarks/compression/results/quantization.json`` and ``docs/benchmarks/quantization.md``
(``python benchmarks/compression/quantization.py report run.log`` rebuilds both from the JSON lines a
run printed, e.g. when parts were run separately by name: ``... quantization.py digits resnet-style``).
"""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

import nniray
from nniray.compression import TorchEvaluator
from nniray.compression.quantization import PtqQuantizer, QATQuantizer
from nniray.compression.quantization_speedup import ModelSpeedupTensorRT

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results", "quantization.json")
DOC = os.path.join(ROOT, "docs", "benchmarks", "quantization.md")
COMMAND = "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/compression/quantization.py"


# ---------------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------------

class DigitsCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(32)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(64 * 16, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.fc(torch.flatten(self.pool(self.relu2(self.conv2(x))), 1))


class MLP(torch.nn.Module):
    def __init__(self, d=32, h=256, k=8):
        super().__init__()
        self.fc1, self.relu1 = torch.nn.Linear(d, h), torch.nn.ReLU()
        self.fc2, self.relu2 = torch.nn.Linear(h, h), torch.nn.ReLU()
        self.fc3 = torch.nn.Linear(h, k)

    def forward(self, x):
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


def _cbr(cin, cout, stride=1):
    return [torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]


class SmallCNN(torch.nn.Module):
    def __init__(self, k=4):
        super().__init__()
        self.features = torch.nn.Sequential(*_cbr(3, 32), torch.nn.MaxPool2d(2), *_cbr(32, 64), torch.nn.MaxPool2d(2),
                                            *_cbr(64, 128), torch.nn.AdaptiveAvgPool2d(1))
        self.fc = torch.nn.Linear(128, k)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1, self.relu1 = _cbr(cin, cout, stride)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))
        self.relu2 = torch.nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + (x if self.down is None else self.down(x)))


class ResNetStyle(torch.nn.Module):
    """ResNet-18 layout (2 BasicBlocks per stage, widths 64-512) for 32x32 inputs."""

    def __init__(self, k=10):
        super().__init__()
        self.stem = torch.nn.Sequential(*_cbr(3, 64))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = torch.nn.Sequential(*blocks)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(512, k)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class VGGStyle(torch.nn.Module):
    def __init__(self, k=10):
        super().__init__()
        layers, cin = [], 3
        for cout in (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M"):
            if cout == "M":
                layers.append(torch.nn.MaxPool2d(2))
            else:
                layers += _cbr(cin, cout)
                cin = cout
        self.features = torch.nn.Sequential(*layers)
        self.fc = torch.nn.Linear(512 * 4, k)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def digits_data():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    X, y = X[perm], y[perm]
    return X[:1400], y[:1400], X[1400:], y[1400:]


def mlp_data():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=8000, n_features=32, n_informative=24, n_redundant=4, n_classes=8,
                               n_clusters_per_class=2, class_sep=1.5, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    return X[:6000], y[:6000], X[6000:], y[6000:]


def gratings_data(n=4000):
    g = torch.Generator().manual_seed(0)
    angles = torch.tensor([0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4])
    y = torch.randint(0, 4, (n,), generator=g)
    theta = angles[y] + (torch.rand(n, generator=g) - 0.5) * 0.3
    freq = 0.4 + torch.rand(n, generator=g) * 0.4
    phase = torch.rand(n, generator=g) * 2 * math.pi
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    proj = xx[None] * torch.cos(theta)[:, None, None] + yy[None] * torch.sin(theta)[:, None, None]
    img = torch.sin(proj * freq[:, None, None] + phase[:, None, None])
    colour = torch.rand(n, 3, 1, 1, generator=g) * 0.8 + 0.2
    X = img[:, None] * colour + torch.randn(n, 3, 32, 32, generator=g) * 0.8
    return X[:3200], y[:3200], X[3200:], y[3200:]


# ---------------------------------------------------------------------------------------------
# training and quantization through nniray
# ---------------------------------------------------------------------------------------------

def make_training(Xtr, ytr, batch=64):
    def training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs):
        g = torch.Generator().manual_seed(1)
        step = 0
        for _ in range(max_epochs or 10 ** 6):
            model.train()
            perm = torch.randperm(len(Xtr), generator=g)
            for i in range(0, len(Xtr) - batch + 1, batch):
                idx = perm[i:i + batch]
                loss = training_step((Xtr[idx], ytr[idx]), model)
                optimizers.zero_grad()
                loss.backward()
                optimizers.step()
                step += 1
                if max_steps is not None and step >= max_steps:
                    return
            if max_epochs is None and max_steps is None:
                return
    return training_func


def training_step(batch, model):
    return F.cross_entropy(model(batch[0]), batch[1])


def accuracy(fn: Callable[[torch.Tensor], torch.Tensor], X, y, batch=256) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), batch):
            correct += (fn(X[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(X)


def torch_acc(model, X, y):
    model.eval()
    return accuracy(model, X, y)


def evaluator_for(model, data, lr, calib_X):
    Xtr, ytr = data[0], data[1]

    def calibrate(m):
        m.eval()
        with torch.no_grad():
            for i in range(0, len(calib_X), 64):
                m(calib_X[i:i + 64])
        return 0.0

    return TorchEvaluator(make_training(Xtr, ytr), nniray.trace(torch.optim.Adam)(model.parameters(), lr=lr),
                          training_step, dummy_input=Xtr[:2], evaluating_func=calibrate)


def fusion_groups(model: torch.nn.Module) -> List[Tuple[str, ...]]:
    """conv -> BN (-> ReLU) chains, found by FX tracing."""
    gm = torch.fx.symbolic_trace(model)
    modules = dict(model.named_modules())
    users: Dict[Any, List[Any]] = {}
    for node in gm.graph.nodes:
        for arg in node.all_input_nodes:
            users.setdefault(arg, []).append(node)

    def module_of(node):
        return modules.get(node.target) if node.op == "call_module" else None

    groups = []
    for node in gm.graph.nodes:
        if not isinstance(module_of(node), torch.nn.Conv2d):
            continue
        chain = [node.target]
        nxt = users.get(node, [])
        if len(nxt) == 1 and isinstance(module_of(nxt[0]), torch.nn.BatchNorm2d):
            chain.append(nxt[0].target)
            after = users.get(nxt[0], [])
            if len(after) == 1 and isinstance(module_of(after[0]), torch.nn.ReLU):
                chain.append(after[0].target)
        if len(chain) > 1:
            groups.append(tuple(chain))
    return groups


def quant_config(model: torch.nn.Module) -> List[Dict[str, Any]]:
    groups = fusion_groups(model)
    absorbed = {n for g in groups for n in g[1:]}
    relus = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU) and n not in absorbed]
    cfg: List[Dict[str, Any]] = [{
        "op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "weight", "_output_"],
        "target_settings": {"_input_": {"quant_dtype": "uint8", "quant_scheme": "affine"},
                            "weight": {"quant_dtype": "int8", "quant_scheme": "symmetric", "granularity": "per_channel"},
                            "_output_": {"quant_dtype": "uint8", "quant_scheme": "affine"}},
        "fuse_names": groups}]
    if relus:
        cfg.append({"op_names": relus, "target_names": ["_output_"], "quant_dtype": "uint8", "quant_scheme": "affine"})
    return cfg


def nniray_ptq(model, data, calib_X):
    m = copy.deepcopy(model)
    q = PtqQuantizer(m, quant_config(m), evaluator_for(m, data, 1e-3, calib_X))
    _, calib = q.compress()
    sim = torch_acc(m, data[2], data[3])
    q.unwrap_model()
    return m, calib, sim


def nniray_qat(model, data, calib_X, steps, lr):
    m = copy.deepcopy(model)
    q = QATQuantizer(m, quant_config(m), evaluator_for(m, data, lr, calib_X), quant_start_step=20)
    _, calib = q.compress(max_steps=steps)
    sim = torch_acc(m, data[2], data[3])
    q.unwrap_model()
    return m, calib, sim


# ---------------------------------------------------------------------------------------------
# anchors
# ---------------------------------------------------------------------------------------------

def fx_int8(model, calib_X):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "x86"
    m = copy.deepcopy(model).eval()
    prepared = prepare_fx(m, get_default_qconfig_mapping("x86"), (calib_X[:2],))
    with torch.no_grad():
        for i in range(0, len(calib_X), 64):
            prepared(calib_X[i:i + 64])
    return convert_fx(prepared)


def ort_fp32_path(model, shape, tmp) -> str:
    engine = ModelSpeedupTensorRT(model, shape, onnx_path=os.path.join(tmp, "fp32.onnx"), backend="onnxruntime",
                                  num_threads=1)
    engine.compress()
    return engine.onnx_path


def ort_quantize_static(fp32_path, calib_X, tmp) -> str:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    pre = os.path.join(tmp, "pre.onnx")
    quant_pre_process(fp32_path, pre)
    name = "actual_input_1"

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: calib_X[i:i + 64].numpy()} for i in range(0, len(calib_X), 64)])

        def get_next(self):
            return next(self.batches, None)

    out = os.path.join(tmp, "ort_int8.onnx")
    quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def ort_session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: torch.from_numpy(sess.run(None, {name: x.numpy() if isinstance(x, torch.Tensor) else x})[0])


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------

def engines_for(model, calib, calib_X, shape, tmp):
    """Callables of every engine (and ONNX sizes) for one model."""
    fp32_path = ort_fp32_path(model, shape, tmp)
    nni = ModelSpeedupTensorRT(model, shape, config=calib, onnx_path=os.path.join(tmp, "nniray_int8.onnx"),
                               backend="onnxruntime", num_threads=1)
    nni.compress()
    ort_int8 = ort_quantize_static(fp32_path, calib_X, tmp)
    fx = fx_int8(model, calib_X)
    model.eval()

    def torch_fp32(x):
        with torch.no_grad():
            return model(x)

    def torch_fx(x):
        with torch.no_grad():
            return fx(x)

    fns = {"pytorch fp32": torch_fp32, "pytorch FX int8": torch_fx, "ORT fp32": ort_session(fp32_path),
           "nniray int8 (ORT)": ort_session(nni.onnx_path), "ORT quantize_static int8": ort_session(ort_int8)}
    sizes = {"ORT fp32": os.path.getsize(fp32_path), "nniray int8 (ORT)": os.path.getsize(nni.onnx_path),
             "ORT quantize_static int8": os.path.getsize(ort_int8)}
    return fns, sizes


def latency(fns, shape) -> Dict[str, Dict[str, float]]:
    """Median ms per engine.  Engines take turns within every repetition in a random order (seeded):
    load changes on the shared machine hit all alike, and no engine always runs right after the same
    other one (a fixed or rotating order kept neighbours fixed and measurably favoured one engine)."""
    out: Dict[str, Dict[str, float]] = {}
    names = list(fns)
    rng = np.random.default_rng(0)
    for bs, repeats in ((1, 200), (32, 30)):
        x = torch.randn((bs,) + tuple(shape[1:]))
        times: Dict[str, List[float]] = {name: [] for name in fns}
        start = time.perf_counter()
        for fn in fns.values():
            for _ in range(3):
                fn(x)
        per_round = (time.perf_counter() - start) / 3
        # heavy models: fewer rounds (at least 10), so one model stays within a few minutes
        repeats = max(10, min(repeats, int(60 / max(per_round, 1e-6))))
        for _ in range(repeats):
            for name in rng.permutation(names):
                t0 = time.perf_counter()
                fns[name](x)
                times[name].append(time.perf_counter() - t0)
        for name, ts in times.items():
            out.setdefault(name, {})[f"b{bs}"] = statistics.median(ts) * 1000
    return out


def run_task(name, model, data, epochs, lr, qat_steps, qat_lr, shape) -> Dict[str, Any]:
    t0 = time.time()
    torch.manual_seed(0)
    ev = evaluator_for(model, data, lr, data[0][:512])
    ev.bind_model(model)
    ev.train(None, epochs)
    ev.unbind_model()
    Xte, yte = data[2], data[3]
    calib_X = data[0][:512]
    res: Dict[str, Any] = {"task": name, "test_size": len(Xte)}
    res["fp32"] = torch_acc(model, Xte, yte)
    ptq_model, ptq_calib, res["ptq_sim"] = nniray_ptq(model, data, calib_X)
    qat_model, qat_calib, res["qat_sim"] = nniray_qat(model, data, calib_X, qat_steps, qat_lr)
    with tempfile.TemporaryDirectory() as tmp:
        fns, sizes = engines_for(ptq_model, ptq_calib, calib_X, shape, tmp)
        res["ptq_ort"] = accuracy(fns["nniray int8 (ORT)"], Xte, yte)
        res["fx_int8"] = accuracy(fns["pytorch FX int8"], Xte, yte)
        res["ort_static_int8"] = accuracy(fns["ORT quantize_static int8"], Xte, yte)
        res["ort_fp32"] = accuracy(fns["ORT fp32"], Xte, yte)
        qat_engine = ModelSpeedupTensorRT(qat_model, shape, config=qat_calib, onnx_path="", backend="onnxruntime",
                                          num_threads=1)
        qat_engine.compress()
        res["qat_ort"] = accuracy(lambda x: qat_engine.inference(x)[0], Xte, yte)
        res["latency_ms"] = latency(fns, shape)
        res["size_bytes"] = sizes
    res["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(res), flush=True)
    return res


def run_zoo(name, model, shape) -> Dict[str, Any]:
    t0 = time.time()
    torch.manual_seed(0)
    model.eval()
    calib_X = torch.randn((256,) + tuple(shape[1:]))
    # random weights: give BN realistic statistics from the calibration batches first
    model.train()
    with torch.no_grad():
        for i in range(0, 256, 64):
            model(calib_X[i:i + 64])
    model.eval()
    m = copy.deepcopy(model)
    q = PtqQuantizer(m, quant_config(m), evaluator_for(m, (calib_X, None), 1e-3, calib_X))
    _, calib = q.compress()
    q.unwrap_model()
    res: Dict[str, Any] = {"task": name}
    with tempfile.TemporaryDirectory() as tmp:
        fns, sizes = engines_for(m, calib, calib_X, shape, tmp)
        x = calib_X[:64]
        ref = fns["ORT fp32"](x)
        res["argmax_agreement_vs_fp32"] = {k: float((fns[k](x).argmax(1) == ref.argmax(1)).float().mean())
                                           for k in ("nniray int8 (ORT)", "ORT quantize_static int8", "pytorch FX int8")}
        res["latency_ms"] = latency(fns, shape)
        res["size_bytes"] = sizes
    res["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(res), flush=True)
    return res


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

ENGINES = ["pytorch fp32", "pytorch FX int8", "ORT fp32", "nniray int8 (ORT)", "ORT quantize_static int8"]


def report(results: Dict[str, Any]) -> str:
    lines = ["# Quantization benchmark (issue 13)", "",
             f"Command: `{COMMAND}` (results also in `benchmarks/compression/results/quantization.json`). "
             f"This run: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/compression/quantization.py digits "
             f"synthetic-mlp resnet-style gratings-cnn vgg-style > run.log`, then "
             f"`python benchmarks/compression/quantization.py report run.log` (same work, written from the log).",
             "", f"Machine: {results['machine']}; torch {results['torch']}, onnxruntime {results['onnxruntime']}; "
             f"1 thread everywhere; latency = median of up to 200 runs (batch 1) / 30 runs (batch 32; at least 10, fewer for the heavy zoo models) after 3 warm-ups, the engines taking turns within each repetition (in the run below in a rotating order, which biases the last column, see the notes; the script now uses a random order); "
             f"the machine is shared with other engineers' jobs, so absolute times are upper bounds.", "",
             "Quantization config (all nniray quantizers): Conv2d/Linear `_input_` uint8 affine, `weight` int8 "
             "symmetric per channel, `_output_` uint8 affine; ReLU `_output_` uint8; conv→BN(→ReLU) chains fused "
             "with `fuse_names`. PTQ calibrates on 512 training samples (the same batches feed the anchors); QAT "
             "fine-tunes the fp32 model (quantization from step 20).", "",
             "## Accuracy (test set)", "",
             "| task | test n | fp32 | PTQ int8 sim | PTQ int8 ORT engine | QAT int8 sim | QAT int8 ORT engine | "
             "PyTorch FX int8 | ORT quantize_static int8 | target: int8 within 1 pt |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["tasks"]:
        best = max(r["ptq_ort"], r["qat_ort"])
        ok = "met" if r["fp32"] - best <= 0.01 else "MISSED"
        lines.append(f"| {r['task']} | {r['test_size']} | {r['fp32']:.4f} | {r['ptq_sim']:.4f} | {r['ptq_ort']:.4f} | "
                     f"{r['qat_sim']:.4f} | {r['qat_ort']:.4f} | {r['fx_int8']:.4f} | {r['ort_static_int8']:.4f} | "
                     f"{ok} (PTQ {100 * (r['ptq_ort'] - r['fp32']):+.1f} pt, QAT {100 * (r['qat_ort'] - r['fp32']):+.1f} pt) |")
    lines += ["", "## CPU latency (ms, 1 thread) and ONNX size", "",
              "| model | batch | " + " | ".join(ENGINES) + " | nniray int8 vs ORT fp32 | nniray int8 vs ORT quantize_static |",
              "|---|---|" + "---|" * (len(ENGINES) + 2)]
    for r in results["tasks"] + results["zoo"]:
        for b in ("b1", "b32"):
            lat = r["latency_ms"]
            cells = " | ".join(f"{lat[e][b]:.3f}" for e in ENGINES)
            sp = lat["ORT fp32"][b] / lat["nniray int8 (ORT)"][b]
            vs = lat["ORT quantize_static int8"][b] / lat["nniray int8 (ORT)"][b]
            lines.append(f"| {r['task']} | {b[1:]} | {cells} | {sp:.2f}x | {vs:.2f}x |")
    lines += ["", "| model | ORT fp32 (KiB) | nniray int8 QDQ (KiB) | ORT quantize_static int8 (KiB) |", "|---|---|---|---|"]
    for r in results["tasks"] + results["zoo"]:
        s = r["size_bytes"]
        lines.append(f"| {r['task']} | {s['ORT fp32'] / 1024:.0f} | {s['nniray int8 (ORT)'] / 1024:.0f} | "
                     f"{s['ORT quantize_static int8'] / 1024:.0f} |")
    lines += ["", "Random-weight zoo models: argmax agreement with ORT fp32 on 64 random inputs: " + "; ".join(
        f"{r['task']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["argmax_agreement_vs_fp32"].items())
        for r in results["zoo"]), ""]
    lines += results.get("notes", [])
    return "\n".join(lines) + "\n"


def write_outputs(results: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=1)
    notes_path = os.path.join(HERE, "results", "quantization_notes.md")
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            results["notes"] = f.read().splitlines()
    with open(DOC, "w") as f:
        f.write(report(results))
    print("wrote", DOC)


def report_from_log(path: str) -> None:
    """Rebuild the results and the doc from the JSON lines a run printed (``... > run.log``)."""
    import onnxruntime
    results: Dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                               "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                               "tasks": [], "zoo": []}
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                r = json.loads(line)
                results["zoo" if "argmax_agreement_vs_fp32" in r else "tasks"].append(r)
    write_outputs(results)


def recheck() -> None:
    """Random-order timing of the three ORT engines (fp32, nniray int8, ORT quantize_static) on the
    digits CNN and MLP (2 epochs of training) and the ResNet-style model (random weights)."""
    rows = {}
    for name, cls, data_fn, shape in (("digits", DigitsCNN, digits_data, (1, 1, 8, 8)),
                                      ("synthetic-mlp", MLP, mlp_data, (1, 32)),
                                      ("resnet-style", ResNetStyle, None, (1, 3, 32, 32))):
        torch.manual_seed(0)
        model = cls()
        if data_fn is not None:
            data = data_fn()
            ev = evaluator_for(model, data, 3e-3, data[0][:512])
            ev.bind_model(model)
            ev.train(None, 2)
            ev.unbind_model()
            calib_X = data[0][:512]
            m, calib, _ = nniray_ptq(model, data, calib_X)
        else:
            calib_X = torch.randn((256,) + shape[1:])
            model.train()
            with torch.no_grad():
                model(calib_X[:64])
            model.eval()
            m = copy.deepcopy(model)
            q = PtqQuantizer(m, quant_config(m), evaluator_for(m, (calib_X, None), 1e-3, calib_X))
            _, calib = q.compress()
            q.unwrap_model()
        with tempfile.TemporaryDirectory() as tmp:
            fns, _ = engines_for(m, calib, calib_X, shape, tmp)
            keep = {k: fns[k] for k in ("ORT fp32", "nniray int8 (ORT)", "ORT quantize_static int8")}
            rows[name] = latency(keep, shape)
        print(json.dumps({"recheck": name, "latency_ms": rows[name]}), flush=True)


def main() -> None:
    import onnxruntime
    if sys.argv[1:2] == ["recheck"]:
        recheck()
        return
    if sys.argv[1:2] == ["report"]:
        report_from_log(sys.argv[2])
        return
    results: Dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                               "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                               "tasks": [], "zoo": []}
    only = sys.argv[1:]
    tasks = [
        ("digits", DigitsCNN, digits_data, 15, 3e-3, 200, 2e-4, (1, 1, 8, 8)),
        ("synthetic-mlp", MLP, mlp_data, 15, 2e-3, 300, 2e-4, (1, 32)),
        ("gratings-cnn", SmallCNN, gratings_data, 4, 3e-3, 150, 2e-4, (1, 3, 32, 32)),
    ]
    for name, cls, data_fn, epochs, lr, qsteps, qlr, shape in tasks:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        results["tasks"].append(run_task(name, cls(), data_fn(), epochs, lr, qsteps, qlr, shape))
    for name, cls, shape in (("resnet-style", ResNetStyle, (1, 3, 32, 32)), ("vgg-style", VGGStyle, (1, 3, 32, 32))):
        if only and name not in only:
            continue
        torch.manual_seed(0)
        results["zoo"].append(run_zoo(name, cls(), shape))
    if only:
        return
    write_outputs(results)


if __name__ == "__main__":
    main()
