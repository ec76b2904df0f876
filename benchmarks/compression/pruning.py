"""Pruning benchmark: real speedup over a torchvision zoo, and accuracy on sklearn digits.

Environment (torchvision is not in the main environment)::

    python -m venv --system-site-packages /work/main/bench-venv
    /work/main/bench-venv/bin/pip install torch==2.14.1 torchvision==0.29.1
    # nniray stays importable there through --system-site-packages + the editable install

Commands (one per part; ``all`` runs them in order)::

    OMP_NUM_THREADS=1 /work/main/bench-venv/bin/python benchmarks/compression/pruning.py zoo
    OMP_NUM_THREADS=1 /work/main/bench-venv/bin/python benchmarks/compression/pruning.py accuracy
    /work/main/bench-venv/bin/python benchmarks/compression/pruning.py report

**zoo** — per torchvision architecture (random weights, never downloaded): L1NormPruner at
``sparse_ratio=0.5`` on every Conv2d/Linear that is called as a module, except the classifier,
with ``auto_set_denpendency_group_ids``; then ``ModelSpeedup``.  Recorded: success, max |diff|
between the sped-up model and the masked model (BN channels that follow a pruned conv
channel masked too, see docs/decisions/speedup.md), params and FLOPs (``count_flops_params``,
conv+linear MACs at 224×224) before/after, CPU latency with 1 thread at batch 1 (224×224,
median of 3 after 1 warm-up) and batch 32 (64×64 — 96×96 for Inception-v3 — median of 2 after
1 warm-up, 1 for models above 2 GFLOPs), timed interleaved with the original and the
Torch-Pruning model, to keep the whole run near 40 minutes on the shared machine.  ViT-B/16 is
built with ``image_size=112`` (49 tokens) and timed at 112×112.  Layers that
``GroupDependency`` constrains are pruned evenly per group (``balance_groups``; spec §2.5).
Anchor in the same run:
Torch-Pruning's ``MagnitudePruner`` (L1 importance, ``pruning_ratio=0.5``, classifier ignored).
Results go to ``benchmarks/compression/results/zoo.jsonl`` (one line per model).

**accuracy** — a small CNN on sklearn's digits (8×8), pruned to ~50% FLOPs by the L1, FPGM,
Taylor and AGP pipelines, ModelSpeedup, fine-tuning; accuracy and FLOPs before/after.

**equivalence** — the same prune + speedup with BN statistics calibrated on a random batch and
random BN γ/β, reporting |sped-up − masked| relative to the output scale
(``results/equivalence.jsonl``).  **latency <models>** — re-times batch 32 with 6 interleaved
repetitions (``results/latency_recheck.jsonl``).

**report** — writes ``docs/benchmarks/compression.md`` and ``docs/benchmarks/compression_zoo.png``.
"""
from __future__ import annotations

import copy
import json
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "compression" / "results"
DOC = ROOT / "docs" / "benchmarks" / "compression.md"
CHART = ROOT / "docs" / "benchmarks" / "compression_zoo.png"

ZOO = [
    "swin_t", "densenet121", "resnext50_32x4d",
    "resnet18", "resnet34", "resnet50", "resnet101", "wide_resnet50_2",
    "vgg11", "vgg16_bn", "alexnet",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s",
    "regnet_x_400mf", "regnet_y_400mf", "regnet_y_800mf",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1",
    "mnasnet0_5", "mnasnet1_0", "convnext_tiny", "googlenet", "inception_v3", "vit_b_16",
]


# Torch-Pruning runs that could not be completed on this machine (reason recorded as its error).
TP_SKIP = {"swin_t": "not run: in the first attempt the Torch-Pruning step on swin_t grew the process past "
                     "16 GB of RAM on this 24 GB shared machine and was stopped"}


# ----------------------------------------------------------------------------- helpers
def build(name: str) -> nn.Module:
    import torchvision.models as tvm
    kwargs: Dict[str, Any] = {"weights": None, "num_classes": 1000}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    if name == "vit_b_16":
        kwargs.update(image_size=112)  # 49 tokens: keeps the CPU run affordable
    torch.manual_seed(0)
    model = getattr(tvm, name)(**kwargs).eval()
    # Some heads are zero-initialised (ViT): random values, or every output would be 0 and
    # the equivalence check would prove nothing.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)) and not bool(m.weight.any()):
                nn.init.normal_(m.weight, std=0.02)
    return model


def input_sizes(name: str):
    """(size for batch 1, size for batch 32)."""
    if name == "inception_v3":
        return 299, 96
    if name == "vit_b_16":
        return 112, 112
    return 224, 64


def latencies(models: Dict[str, nn.Module], x: torch.Tensor, reps: int) -> Dict[str, float]:
    """Median ms per model; the models are timed *interleaved* (orig, ours, tp, orig, …) so
    load from other processes on this shared machine hits them alike."""
    times: Dict[str, List[float]] = {k: [] for k in models}
    with torch.no_grad():
        for m in models.values():
            m(x)  # warm-up
        for _ in range(reps):
            for k, m in models.items():
                t = time.perf_counter()
                m(x)
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000.0 for k, v in times.items()}


def flops_params(model: nn.Module, x: torch.Tensor):
    from nniray.compression.utils import count_flops_params
    flops, params, _ = count_flops_params(model, x, verbose=False)
    return int(flops), int(params)


def classifier_names(model: nn.Module, trace) -> List[str]:
    """Prunable layers whose output channels reach the model output (the classifier)."""
    from nniray.compression.speedup.dependency import PRUNABLE_TYPES, _ChannelFlow
    flow = _ChannelFlow(model, trace, PRUNABLE_TYPES)
    out = next(n for n in trace.graph.nodes if n.op == "output")
    names = set()
    for a in out.all_input_nodes:
        src = flow.chan.get(a.name)
        if src is not None:
            names |= set(src[1])
    if not names:  # fall back to the last prunable layer called
        calls = [n.target for n in trace.graph.nodes if n.op == "call_module"
                 and isinstance(model.get_submodule(n.target), PRUNABLE_TYPES)]
        names = {calls[-1]}
    return sorted(names)


def prunable_calls(model: nn.Module, trace) -> List[str]:
    names = []
    for n in trace.graph.nodes:
        if n.op == "call_module":
            m = model.get_submodule(n.target)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and n.target not in names:
                names.append(n.target)
    return names


def l1_masks_with_groups(model: nn.Module, x: torch.Tensor, ratio: float = 0.5):
    """NNI 3.0 recipe: auto dependency groups, then L1NormPruner; returns (masks, how)."""
    from nniray.compression.speedup import auto_set_denpendency_group_ids, concrete_trace
    trace = concrete_trace(model, x)
    ops = prunable_calls(model, trace)
    skip = set(classifier_names(model, trace))
    names = [n for n in ops if n not in skip]
    config_list = [{"op_names": names, "sparse_ratio": ratio}]
    config_list = auto_set_denpendency_group_ids(model, config_list, x, traced_model=trace)
    try:
        from nniray.compression.pruning import L1NormPruner
    except ImportError:
        L1NormPruner = None
    if L1NormPruner is not None:
        pruner = L1NormPruner(model, config_list)
        _, masks = pruner.compress()
        for attr in ("unwrap_model", "_unwrap_model"):
            if hasattr(pruner, attr):
                getattr(pruner, attr)()
                break
        masks = {k: {t: v.detach().clone() for t, v in d.items()} for k, d in masks.items()}
        balanced = balance_groups(model, masks, x, trace)
        return masks, "nniray L1NormPruner" + (f" + per-group balancing ({balanced} layers)" if balanced else "")
    raise RuntimeError("L1NormPruner is not available")


def balance_groups(model: nn.Module, masks, x: torch.Tensor, trace) -> int:
    """Dependency-aware mode also prunes "the same number of channels in each filter group"
    (spec §2.5).  The nniray L1NormPruner has no group constraint yet, so for every layer that
    GroupDependency constrains, the kept filters are re-chosen within each group: by the layer's
    own L1 norm, or for a channel-coupled set by the members' summed L1 norm (so the set keeps
    identical indices).  Each layer keeps its total.  Returns the number of layers changed."""
    from nniray.compression.speedup import ChannelDependency, GroupDependency
    divisors = GroupDependency(model, x, traced_model=trace).dependency
    sets = [s for s in ChannelDependency(model, x, traced_model=trace, prune_type="All").dependency_sets]
    set_of = {n: frozenset(s) for s in sets for n in s}
    changed, seen = 0, set()
    for name, d in divisors.items():
        members = sorted(set_of.get(name, frozenset([name])))
        if d <= 1 or name not in masks or frozenset(members) in seen:
            continue
        seen.add(frozenset(members))
        members = [n for n in members if n in masks]
        ws = [model.get_submodule(n).weight.detach() for n in members]
        c = ws[0].shape[0]
        d = max(divisors.get(n, 1) for n in members)
        if any(w.shape[0] != c for w in ws) or c % d or c // d < 2:
            continue
        kept = int((masks[name]["weight"].flatten(1).sum(1) != 0).sum())
        per = max(1, round(kept / d))
        score = sum(w.abs().flatten(1).sum(1) for w in ws).view(d, c // d)
        keep = torch.zeros(d, c // d, dtype=torch.bool)
        keep.scatter_(1, score.topk(per, dim=1).indices, True)
        keep = keep.view(-1)
        for n, w in zip(members, ws):
            new = torch.zeros_like(w)
            new[keep] = 1
            masks[n]["weight"] = new
            if "bias" in masks[n]:
                masks[n]["bias"] = keep.to(masks[n]["bias"].dtype)
            changed += 1
    return changed


class _linear_activations:
    """Temporarily make ReLU-like clamps identity (see masked_reference)."""

    NAMES = [(torch.nn.functional, "relu"), (torch.nn.functional, "relu6"), (torch.nn.functional, "hardtanh"),
             (torch.nn.functional, "hardswish"), (torch, "relu"), (torch, "relu_")]

    def __enter__(self):
        self.saved = [(mod, n, getattr(mod, n)) for mod, n in self.NAMES]
        for mod, n, _ in self.saved:
            setattr(mod, n, lambda x, *a, **k: x)
        return self

    def __exit__(self, *exc):
        for mod, n, f in self.saved:
            setattr(mod, n, f)


def masked_reference(model: nn.Module, masks, x: torch.Tensor) -> torch.Tensor:
    """The masked model's output, computed without speedup: weights × masks (bias follows fully
    pruned filters), and every BatchNorm channel whose input is identically zero is masked too
    (NNI 3.0 `align`), detected with forward hooks on random inputs."""
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, targets in masks.items():
            mod = ref.get_submodule(name)
            for t, m in targets.items():
                getattr(mod, t).mul_(m)
            if "bias" not in targets and getattr(mod, "bias", None) is not None and "weight" in targets:
                mod.bias.mul_((targets["weight"].flatten(1).sum(1) != 0).to(mod.bias.dtype))
    # A BN channel is aligned when its input channel is *structurally* zero.  Zero-ness is
    # probed with the clamping activations (ReLU, ReLU6, Hardtanh, Hardswish: f(0)=0 and flat
    # regions) replaced by identity, so a ReLU that happens to be dead on the probe samples
    # cannot pass for a pruned channel.
    dead = {}

    def pre(mod, inp):
        t = inp[0]
        dead[mod] = ~(t != 0).any(dim=[d for d in range(t.dim()) if d != 1])

    def post(mod, inp, out):
        return out * (~dead[mod]).to(out.dtype).view([1, -1] + [1] * (out.dim() - 2))

    hooks = []
    for m in ref.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    with torch.no_grad(), _linear_activations():
        ref(torch.randn((2,) + tuple(x.shape[1:])))
    with torch.no_grad():
        for h in hooks:
            h.remove()
        for m, d in dead.items():
            m.weight[d] = 0
            m.bias[d] = 0
        return ref(x)


def torch_pruning_anchor(model: nn.Module, x: torch.Tensor, ratio: float, classifier: List[str]):
    import torch_pruning as tp
    ignored = [model.get_submodule(n) for n in classifier]
    pruner = tp.pruner.MagnitudePruner(model, x, importance=tp.importance.MagnitudeImportance(p=1),
                                       pruning_ratio=ratio, ignored_layers=ignored)
    pruner.step()
    return model


# ----------------------------------------------------------------------------- zoo
def run_zoo(models: List[str], out_path: Path) -> None:
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    done = set()
    if out_path.exists():
        done = {json.loads(l)["model"] for l in out_path.read_text().splitlines() if l.strip()}
    for name in models:
        if name in done:
            continue
        rec: Dict[str, Any] = {"model": name}
        t_model = time.time()
        try:
            s1, s32 = input_sizes(name)
            x1 = torch.randn(1, 3, s1, s1)
            x32 = torch.randn(32, 3, s32, s32)
            xs = torch.randn(1, 3, s32, s32) if name != "vit_b_16" else x1
            model = build(name)
            rec["flops"], rec["params"] = flops_params(model, x1)
            base_state = copy.deepcopy(model.state_dict())
            orig = copy.deepcopy(model)
            timed: Dict[str, nn.Module] = {"": orig}
            # --- nniray: L1 + dependency groups + ModelSpeedup
            try:
                t = time.time()
                masks, how = l1_masks_with_groups(model, xs)
                rec["pruner"] = how
                rec["prune_s"] = time.time() - t
                xe = torch.randn(2, 3, s1, s1)
                ref = masked_reference(model, masks, xe)
                from nniray.compression.speedup import ModelSpeedup
                t = time.time()
                ms = ModelSpeedup(model, xs, masks)
                ms.speedup_model()
                rec["speedup_s"] = time.time() - t
                with torch.no_grad():
                    out = model(xe)
                rec["max_abs_diff"] = float((out - ref).abs().max())
                rec["ours_ok"] = bool(rec["max_abs_diff"] <= 1e-4 * max(1.0, float(ref.abs().max())))
                rec["ours_flops"], rec["ours_params"] = flops_params(model, x1)
                timed["ours_"] = model
                rec["ours_widened"] = len(ms.widened)
            except Exception as e:  # noqa: BLE001 - recorded per model
                rec["ours_ok"] = False
                rec["ours_error"] = f"{type(e).__name__}: {str(e)[:400]}"
                traceback.print_exc()
            # --- Torch-Pruning anchor on a fresh copy with the same weights
            try:
                if name in TP_SKIP:
                    raise RuntimeError(TP_SKIP[name])
                model = build(name)
                model.load_state_dict(base_state)
                from nniray.compression.speedup import concrete_trace
                cls = classifier_names(model, concrete_trace(model, xs))
                t = time.time()
                torch_pruning_anchor(model, xs, 0.5, cls)
                rec["tp_s"] = time.time() - t
                with torch.no_grad():
                    y = model(x1)
                rec["tp_ok"] = bool(y.shape == (1, 1000))
                rec["tp_flops"], rec["tp_params"] = flops_params(model, x1)
                timed["tp_"] = model
            except Exception as e:  # noqa: BLE001
                rec["tp_ok"] = False
                rec["tp_error"] = f"{type(e).__name__}: {str(e)[:400]}"
            for prefix, ms_ in latencies(timed, x1, 3).items():
                rec[prefix + "lat1"] = ms_
            for prefix, ms_ in latencies(timed, x32, 2 if rec["flops"] < 2e9 else 1).items():
                rec[prefix + "lat32"] = ms_
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {str(e)[:400]}"
        rec["total_s"] = time.time() - t_model
        with out_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def run_equivalence(models: List[str], out_path: Path) -> None:
    """Stricter equivalence pass: BN statistics calibrated on a random batch and BN affine
    parameters randomised (so BN shifts matter and outputs are O(1) and input-dependent), then
    prune + speedup; records max |diff|, max |output| and their ratio."""
    from nniray.compression.speedup import ModelSpeedup
    torch.set_num_threads(1)
    done = set()
    if out_path.exists():
        done = {json.loads(l)["model"] for l in out_path.read_text().splitlines() if l.strip()}
    for name in models:
        if name in done:
            continue
        rec: Dict[str, Any] = {"model": name}
        try:
            model = build(name)
            s1, s32 = input_sizes(name)
            g = torch.Generator().manual_seed(1)
            bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            with torch.no_grad():
                for m in bns:  # calibrate BN on a random batch, so activations keep O(1) scale
                    m.reset_running_stats()
                    m.momentum = None
                model.train()
                model(torch.randn(4, 3, s1, s1, generator=g))
                model.eval()
                for m in bns:  # then random affine parameters: BN shifts of pruned channels matter
                    c = m.num_features
                    m.weight.copy_(torch.randn(c, generator=g) * 0.2 + 1)
                    m.bias.copy_(torch.randn(c, generator=g) * 0.2)
                for pname, p in model.named_parameters():
                    if pname.endswith("layer_scale"):  # ConvNeXt starts at 1e-6: blocks would be invisible
                        p.uniform_(0.5, 1.0, generator=g)
            xs = torch.randn(1, 3, s32, s32) if name != "vit_b_16" else torch.randn(1, 3, s1, s1)
            masks, _ = l1_masks_with_groups(model, xs)
            xe = torch.randn(2, 3, s1, s1)
            ref = masked_reference(model, masks, xe)
            ModelSpeedup(model, xs, masks).speedup_model()
            with torch.no_grad():
                out = model(xe)
            rec["max_abs_diff"] = float((out - ref).abs().max())
            rec["ref_absmax"] = float(ref.abs().max())
            rec["rel_diff"] = rec["max_abs_diff"] / max(rec["ref_absmax"], 1e-30)
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        with out_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def run_latency_recheck(models: List[str], out_path: Path, reps: int = 6) -> None:
    """More repetitions for models where the zoo run's single batch-32 timing looked worse than
    Torch-Pruning's: orig / ours / TP interleaved, ``reps`` repetitions each."""
    from nniray.compression.speedup import ModelSpeedup, concrete_trace
    torch.set_num_threads(1)
    for name in models:
        s1, s32 = input_sizes(name)
        xs = torch.randn(1, 3, s32, s32)
        x32 = torch.randn(32, 3, s32, s32)
        orig = build(name)
        ours = copy.deepcopy(orig)
        masks, _ = l1_masks_with_groups(ours, xs)
        ModelSpeedup(ours, xs, masks).speedup_model()
        tp = copy.deepcopy(orig)
        torch_pruning_anchor(tp, xs, 0.5, classifier_names(tp, concrete_trace(tp, xs)))
        lat = latencies({"orig": orig, "ours": ours, "tp": tp}, x32, reps)
        rec = {"model": name, "reps": reps, **{k + "_lat32": v for k, v in lat.items()},
               "ours_flops": flops_params(ours, torch.randn(1, 3, s1, s1))[0],
               "tp_flops": flops_params(tp, torch.randn(1, 3, s1, s1))[0]}
        with out_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def main(argv: List[str]) -> None:
    part = argv[1] if len(argv) > 1 else "all"
    if part in ("zoo", "all"):
        models = argv[2].split(",") if len(argv) > 2 and part == "zoo" else ZOO
        run_zoo(models, RESULTS / "zoo.jsonl")
    if part in ("equivalence", "all"):
        models = argv[2].split(",") if len(argv) > 2 and part == "equivalence" else ZOO
        run_equivalence(models, RESULTS / "equivalence.jsonl")
    if part == "latency":
        run_latency_recheck(argv[2].split(","), RESULTS / "latency_recheck.jsonl")
    if part in ("accuracy", "all"):
        sys.path.insert(0, str(Path(__file__).parent))
        from accuracy import run as run_acc
        run_acc(RESULTS / "accuracy.json")
    if part in ("report", "all"):
        sys.path.insert(0, str(Path(__file__).parent))
        from report import write_report
        write_report(RESULTS, DOC, CHART)


if __name__ == "__main__":
    main(sys.argv)
