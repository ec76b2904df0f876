"""Tiny models, data and a real TorchEvaluator for the advanced-pruner tests."""
from __future__ import annotations

import torch
from torch import nn

from nniray.trace import trace
from nniray.compression.evaluator import TorchEvaluator

torch.set_num_threads(1)


class ConvNet(nn.Module):
    """2 convs + linear on 1x6x6 inputs."""

    def __init__(self, c1=8, c2=16, classes=3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc = nn.Linear(c2, classes)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


def make_data(n=64, seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g)
    y = (x[:, 0, :3].sum((1, 2)) > 0).long() + (x[:, 0, 3:].sum((1, 2)) > 0).long()
    return x, y.clamp(max=classes - 1)


def accuracy(model, data):
    x, y = data
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return acc


def make_evaluator(model, data=None, lr=0.05, batch=16, evaluating_func=None, dummy_input=None, steps_log=None):
    """A TorchEvaluator whose training_func honours max_steps / max_epochs."""
    data = data if data is not None else make_data()
    x, y = data

    def training_step(batch_, model_):
        xb, yb = batch_
        return nn.functional.cross_entropy(model_(xb), yb)

    def training_func(model_, optimizer, training_step_, lr_scheduler=None, max_steps=None, max_epochs=None):
        steps = 0
        epochs = max_epochs if max_epochs is not None else (10 ** 9 if max_steps is not None else 1)
        for _ in range(epochs):
            for i in range(0, len(x), batch):
                if max_steps is not None and steps >= max_steps:
                    return
                optimizer.zero_grad()
                loss = training_step_((x[i:i + batch], y[i:i + batch]), model_)
                loss.backward()
                optimizer.step()
                steps += 1
                if steps_log is not None:
                    steps_log.append(1)

    optimizer = trace(torch.optim.SGD)(model.parameters(), lr=lr)
    if evaluating_func is None:
        evaluating_func = lambda m: accuracy(m, data)  # noqa: E731
    return TorchEvaluator(training_func, optimizer, training_step, evaluating_func=evaluating_func,
                          dummy_input=dummy_input if dummy_input is not None else x[:2])


class Twin(nn.Module):
    """Two convs feeding one add (a channel-dependency group), then a conv and a classifier."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.b = nn.Conv2d(1, 8, 5, padding=2)
        self.c = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.c(self.a(x) + self.b(x))).mean((2, 3)))
