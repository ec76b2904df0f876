"""Digits (scikit-learn, no download) and small models shared by the quantization tests."""
from __future__ import annotations

import functools

import torch

import nniray
from nniray.compression import TorchEvaluator


@functools.lru_cache(maxsize=1)
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(X), generator=g)
    X, y = X[perm], y[perm]
    return X[:1400], y[:1400], X[1400:], y[1400:]


class DigitsCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(32 * 16, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.conv2(x)))
        return self.fc(x.flatten(1))


def training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs):
    Xtr, ytr, _, _ = digits()
    g = torch.Generator().manual_seed(1)
    step = 0
    for _ in range(max_epochs or 1000):
        model.train()
        perm = torch.randperm(len(Xtr), generator=g)
        for i in range(0, len(Xtr), 64):
            idx = perm[i:i + 64]
            loss = training_step((Xtr[idx], ytr[idx]), model)
            optimizers.zero_grad()
            loss.backward()
            optimizers.step()
            step += 1
            if max_steps is not None and step >= max_steps:
                return
        if max_epochs is None and max_steps is None:
            return


def training_step(batch, model):
    return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])


def accuracy(model) -> float:
    _, _, Xte, yte = digits()
    model.eval()
    with torch.no_grad():
        return (model(Xte).argmax(1) == yte).float().mean().item()


def evaluator(model, lr=1e-2, evaluating_func=accuracy):
    Xtr = digits()[0]
    return TorchEvaluator(training_func, nniray.trace(torch.optim.Adam)(model.parameters(), lr=lr), training_step,
                          dummy_input=Xtr[:2], evaluating_func=evaluating_func)


def trained_cnn(epochs: int = 4) -> DigitsCNN:
    """A fresh copy of a CNN trained for ``epochs`` (trained once per process)."""
    import copy
    return copy.deepcopy(_trained_cnn(epochs))


@functools.lru_cache(maxsize=4)
def _trained_cnn(epochs: int) -> DigitsCNN:
    torch.manual_seed(0)
    model = DigitsCNN()
    ev = evaluator(model)
    ev.bind_model(model)
    ev.train(None, epochs)
    ev.unbind_model()
    model.eval()
    return model
