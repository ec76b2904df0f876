"""Accuracy part of the pruning benchmark: sklearn digits (8×8, bundled, no download).

A small CNN is trained, then pruned by four NNI-style pipelines at the same ``sparse_ratio``
(chosen so the sped-up model keeps about half the FLOPs): L1NormPruner, FPGMPruner,
TaylorPruner (importance from 30 training steps) and AGPPruner driving L1NormPruner over 60
training steps.  Each pipeline then runs ModelSpeedup and fine-tunes 8 epochs.  Reported:
test accuracy before pruning, after pruning+speedup (no fine-tuning) and after fine-tuning,
FLOPs and parameters (``count_flops_params``) before/after.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

import nniray

RATIO = 0.3  # per-conv channel ratio; ≈50% FLOPs after speedup for this network


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return xtr, ytr, xte, yte


XTR, YTR, XTE, YTE = data()


def batches(epoch_seed: int, bs: int = 64):
    g = torch.Generator().manual_seed(epoch_seed)
    perm = torch.randperm(len(XTR), generator=g)
    for i in range(0, len(perm), bs):
        idx = perm[i:i + bs]
        yield XTR[idx], YTR[idx]


def accuracy(model: nn.Module) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(XTE).argmax(1) == YTE).float().mean())


def train(model: nn.Module, epochs: int, lr: float = 0.05, optimizer=None, max_steps=None) -> None:
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    steps = 0
    for ep in range(epochs):
        model.train()
        for xb, yb in batches(ep):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                return


def training_step(batch, model, *args, **kwargs):
    xb, yb = batch
    return F.cross_entropy(model(xb), yb)


def training_func(model, optimizers, training_step, lr_schedulers=None, max_steps=None, max_epochs=None):
    opt = optimizers[0] if isinstance(optimizers, (list, tuple)) else optimizers
    steps, ep = 0, 0
    while True:
        model.train()
        for batch in batches(100 + ep):
            opt.zero_grad()
            training_step(batch, model).backward()
            opt.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                return
        ep += 1
        if max_epochs is not None and ep >= max_epochs:
            return
        if max_steps is None and max_epochs is None and ep >= 2:
            return


def evaluator(model):
    from nniray.compression.evaluator import TorchEvaluator
    opt = nniray.trace(torch.optim.SGD)(model.parameters(), lr=0.01, momentum=0.9)
    return TorchEvaluator(training_func, opt, training_step, dummy_input=XTR[:2],
                          evaluating_func=lambda m: accuracy(m))


def config_list():
    return [{"op_names": ["conv1", "conv2", "conv3"], "sparse_ratio": RATIO}]


def prune(name: str, model: nn.Module):
    from nniray.compression import pruning as P
    if name == "L1":
        pruner = P.L1NormPruner(model, config_list())
    elif name == "FPGM":
        pruner = P.FPGMPruner(model, config_list())
    elif name == "Taylor":
        pruner = P.TaylorPruner(model, config_list(), evaluator(model), training_steps=30)
    elif name == "AGP":
        inner = P.L1NormPruner(model, config_list())
        pruner = P.AGPPruner(inner, interval_steps=10, total_times=6, evaluator=evaluator(model))
    else:
        raise ValueError(name)
    if name == "AGP":
        _, masks = pruner.compress(max_steps=60)
    else:
        _, masks = pruner.compress()
    pruner.unwrap_model()
    return {k: {t: v.detach().clone() for t, v in d.items()} for k, d in masks.items()}


def run(out_path: Path) -> Dict[str, Any]:
    from nniray.compression.speedup import ModelSpeedup
    from nniray.compression.utils import count_flops_params
    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = DigitsCNN()
    train(base, 15)
    base_acc = accuracy(base)
    flops0, params0, _ = count_flops_params(base, XTR[:1], verbose=False)
    results: Dict[str, Any] = {"base": {"acc": base_acc, "flops": int(flops0), "params": int(params0)},
                               "ratio": RATIO, "pipelines": {}}
    for name in ("L1", "FPGM", "Taylor", "AGP"):
        model = copy.deepcopy(base)
        rec: Dict[str, Any] = {}
        t = time.time()
        try:
            masks = prune(name, model)
            ModelSpeedup(model, XTR[:2], masks).speedup_model()
            rec["acc_pruned"] = accuracy(model)
            f, p, _ = count_flops_params(model, XTR[:1], verbose=False)
            rec["flops"], rec["params"] = int(f), int(p)
            train(model, 8, lr=0.02)
            rec["acc_finetuned"] = accuracy(model)
            rec["channels"] = [model.conv1.out_channels, model.conv2.out_channels, model.conv3.out_channels]
        except Exception as e:  # noqa: BLE001 - a missing or failing pruner is reported, not hidden
            rec["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        rec["seconds"] = time.time() - t
        results["pipelines"][name] = rec
        print(name, rec, flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    run(Path(__file__).parent / "results" / "accuracy.json")
