"""The NAS benchmark's model space: scikit-learn digits (8x8 images as 1x8x8 tensors).

stem: LayerChoice of 4 ops (1 -> width channels) x width ValueChoice [8, 16]
body: Repeat of depth 0..2, each block a LayerChoice of 5 ops (conv3, conv5, max-pool, avg-pool,
identity), then 2x2 average pooling and a linear head.  4 * 2 * 3 * 5^2 = 600 samples, of which
4 * 2 * (1 + 5 + 25) = 248 distinct architectures (labels of blocks beyond the depth do not matter).
"""
from __future__ import annotations

from collections import OrderedDict

import torch

import nniray.nas.nn as nn

STEM_OPS = ["conv3", "conv5", "conv1", "dilconv3"]
BLOCK_OPS = ["conv3", "conv5", "maxpool", "avgpool", "identity"]
MAX_DEPTH = 2


def _stem(width):
    return OrderedDict([
        ("conv3", nn.Conv2d(1, width, 3, padding=1)), ("conv5", nn.Conv2d(1, width, 5, padding=2)),
        ("conv1", nn.Conv2d(1, width, 1)), ("dilconv3", nn.Conv2d(1, width, 3, padding=2, dilation=2))])


def _block(width):
    def make(i):
        return nn.LayerChoice(OrderedDict([
            ("conv3", torch.nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())),
            ("conv5", torch.nn.Sequential(nn.Conv2d(width, width, 5, padding=2), nn.ReLU())),
            ("maxpool", nn.MaxPool2d(3, stride=1, padding=1)), ("avgpool", nn.AvgPool2d(3, stride=1, padding=1)),
            ("identity", nn.Identity())]), label=f"block{i}")
    return make


class DigitsSpace(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        width = nn.ValueChoice([8, 16], label="width")
        self.stem = nn.LayerChoice(_stem(width), label="stem")
        self.act = nn.ReLU()
        # the Repeat's blocks need the concrete width: build them from the frozen value
        w = nn.ensure_frozen(width)
        self.body = nn.Repeat(_block(w), (0, MAX_DEPTH), label="depth")
        self.head = nn.Linear(w * 4, 10)

    def forward(self, x):
        h = self.body(self.act(self.stem(x)))
        return self.head(torch.nn.functional.adaptive_avg_pool2d(h, 2).flatten(1))


def arch_key(sample: dict) -> str:
    """The distinct architecture of a sample (block choices beyond the depth dropped)."""
    parts = [f"stem={sample['stem']}", f"width={sample['width']}", f"depth={sample['depth']}"]
    parts += [f"block{i}={sample[f'block{i}']}" for i in range(sample["depth"])]
    return ",".join(parts)


def all_archs():
    import itertools
    for stem, width, depth in itertools.product(STEM_OPS, (8, 16), range(MAX_DEPTH + 1)):
        for blocks in itertools.product(BLOCK_OPS, repeat=depth):
            sample = {"stem": stem, "width": width, "depth": depth}
            sample.update({f"block{i}": BLOCK_OPS[0] for i in range(MAX_DEPTH)})
            sample.update({f"block{i}": b for i, b in enumerate(blocks)})
            yield sample


def digits_splits():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    x = torch.tensor(x / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)[perm]
    y = torch.tensor(y)[perm]
    return (x[:1200], y[:1200]), (x[1200:1500], y[1200:1500]), (x[1500:], y[1500:])


def train_and_score(model, splits, epochs=4, seed=0):
    torch.manual_seed(seed)
    (xt, yt), (xv, yv), (xs, ys) = splits
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    with torch.no_grad():
        val = (model(xv).argmax(1) == yv).float().mean().item()
        test = (model(xs).argmax(1) == ys).float().mean().item()
    return val, test
