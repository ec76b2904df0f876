"""A tiny synthetic classification task and a TorchEvaluator for it."""
import torch
import torch.nn.functional as F
from torch import nn

import nniray
from nniray.compression import TorchEvaluator


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def make_data(n=64, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long() + (x[:, 0, 4:].mean((1, 2)) > 0).long()
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def training_step(batch, model, *args, **kwargs):
    return F.cross_entropy(model(batch[0]), batch[1])


def make_training_func(data, log=None):
    def training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs):
        steps = 0
        epochs = max_epochs if max_epochs is not None else 10 ** 9
        for _ in range(epochs):
            for batch in data:
                optimizers.zero_grad()
                loss = training_step(batch, model)
                loss.backward()
                optimizers.step()
                steps += 1
                if log is not None:
                    log(model, steps)
                if max_steps is not None and steps >= max_steps:
                    return
            if lr_schedulers is not None:
                lr_schedulers.step()
    return training_func


def make_evaluator(model, data=None, lr=0.05, log=None, optimizer_cls=torch.optim.SGD):
    data = data or make_data()
    opt = nniray.trace(optimizer_cls)(model.parameters(), lr=lr)

    def evaluating_func(m):
        with torch.no_grad():
            correct = sum(int((m(x).argmax(1) == y).sum()) for x, y in data)
        return {"default": correct / sum(len(y) for _, y in data), "n": len(data)}

    return TorchEvaluator(make_training_func(data, log), opt, training_step, dummy_input=data[0][0][:2],
                          evaluating_func=evaluating_func)
