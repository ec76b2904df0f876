"""Pruner comparison on sklearn's digits (bundled, no download): a small CNN is trained, pruned to
50% of its conv filters by each pruner, sped up with ModelSpeedup, fine-tuned one epoch, and
evaluated.  Writes docs/benchmarks/compression_core.md.

    OMP_NUM_THREADS=1 python docs/benchmarks/compression_core.py
"""
from __future__ import annotations

import copy
import pathlib
import sys
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import nniray
from nniray.compression import TorchEvaluator
from nniray.compression.pruning import (AGPPruner, FPGMPruner, L1NormPruner, L2NormPruner, LevelPruner,
                                        MovementPruner, SlimPruner, TaylorPruner)
from nniray.compression.speedup import ModelSpeedup
from nniray.compression.utils import count_flops_params

torch.set_num_threads(1)
torch.manual_seed(0)

digits = load_digits()
X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
Y = torch.tensor(digits.target)
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
X, Y = X[perm], Y[perm]
train = [(X[i:i + 64], Y[i:i + 64]) for i in range(0, 1400, 64)]
test_x, test_y = X[1400:], Y[1400:]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


def accuracy(model):
    model.eval()
    with torch.no_grad():
        acc = (model(test_x).argmax(1) == test_y).float().mean().item()
    model.train()
    return acc


def training_step(batch, model, *args, **kwargs):
    return F.cross_entropy(model(batch[0]), batch[1])


def training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs):
    steps, epochs = 0, (max_epochs if max_epochs is not None else 10 ** 9)
    for _ in range(epochs):
        for batch in train:
            optimizers.zero_grad()
            training_step(batch, model).backward()
            optimizers.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                return


def evaluator_for(model):
    opt = nniray.trace(torch.optim.Adam)(model.parameters(), lr=1e-3)
    return TorchEvaluator(training_func, opt, training_step, dummy_input=X[:2], evaluating_func=accuracy)


def fine_tune(model, epochs=1):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    training_func(model, opt, training_step, None, None, epochs)


conv_cfg = [{"op_types": ["Conv2d"], "sparse_ratio": 0.5},
            {"op_names": ["bn1"], "target_names": ["weight", "bias"],
             "target_settings": {"weight": {"align": {"module_name": "conv1", "target_name": "weight", "dims": [0]}}}},
            {"op_names": ["bn2"], "target_names": ["weight", "bias"],
             "target_settings": {"weight": {"align": {"module_name": "conv2", "target_name": "weight", "dims": [0]}}}}]
bn_cfg = [{"op_types": ["BatchNorm2d"], "sparse_ratio": 0.5}]

PRUNERS = {
    "L1NormPruner": lambda m: L1NormPruner(m, conv_cfg),
    "L2NormPruner": lambda m: L2NormPruner(m, conv_cfg),
    "FPGMPruner": lambda m: FPGMPruner(m, conv_cfg),
    "TaylorPruner (20 steps)": lambda m: TaylorPruner(m, conv_cfg, evaluator_for(m), training_steps=20),
    "SlimPruner (20 steps, BN)": lambda m: SlimPruner(m, bn_cfg, evaluator_for(m), training_steps=20,
                                                      regular_scale=1e-3),
    "AGPPruner(L1, 4 x 5 steps)": lambda m: AGPPruner(L1NormPruner(m, conv_cfg), 5, 4, evaluator_for(m)),
    "LevelPruner (unstructured)": lambda m: LevelPruner(m, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]),
    "MovementPruner (unstructured, 20 steps)": lambda m: MovementPruner(
        m, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], evaluator_for(m), warmup_step=5, cooldown_begin_step=15),
}


def main():
    base = CNN()
    fine_tune(base, epochs=3)
    base_acc = accuracy(base)
    base_flops, base_params, _ = count_flops_params(base, X[:1], verbose=False)
    rows = [("unpruned", base_acc, "", base_flops, base_params, "")]
    for name, make in PRUNERS.items():
        model = copy.deepcopy(base)
        t0 = time.perf_counter()
        pruner = make(model)
        _, masks = pruner.compress()
        elapsed = time.perf_counter() - t0
        masked_acc = accuracy(model)
        pruner.unwrap_model()
        structured = "unstructured" not in name
        if structured:
            ModelSpeedup(model, X[:2], masks).speedup_model()
        else:
            from nniray.compression.utils import apply_masks
            apply_masks(model, masks)
        flops, params, _ = count_flops_params(model, X[:1], verbose=False)
        if not structured:
            flops, params = "(masked)", "(masked)"
        fine_tune(model, epochs=1)
        rows.append((name, masked_acc, accuracy(model), flops, params, f"{elapsed:.2f}"))
    lines = ["# Compression core: pruners on sklearn digits", "",
             "Small CNN (conv 1→32→64, BN, fc) trained 3 epochs with Adam on 1,400 digits, tested on 397. Each",
             "pruner removes 50% of the conv filters (BN aligned with its conv; Slim prunes 50% of BN channels),",
             "the model is sped up with ModelSpeedup (structured pruners), then fine-tuned 1 epoch. FLOPs/params",
             "per sample from count_flops_params after speedup. Loaded 2-core CPU machine, 1 thread: times are",
             "upper bounds. Taylor, Slim, AGP and Movement train 20 extra steps inside compress() (their",
             "'after pruning' accuracy includes that training); the magnitude pruners see none.", "",
             "Command: `OMP_NUM_THREADS=1 python docs/benchmarks/compression_core.py`", "",
             "| pruner | acc. after pruning | acc. after 1-epoch fine-tune | FLOPs | params | compress() s |",
             "|---|---|---|---|---|---|"]
    for name, a1, a2, fl, pa, t in rows:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
        lines.append(f"| {name} | {fmt(a1)} | {fmt(a2)} | {fl} | {pa} | {t} |")
    text = "\n".join(lines) + "\n"
    out = pathlib.Path(__file__).with_name("compression_core.md")
    out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
