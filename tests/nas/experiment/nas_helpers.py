"""A tiny model space on scikit-learn's digits (8x8 images as 1x8x8 tensors) and its fit function."""
import torch
from sklearn.datasets import load_digits

import nniray
import nniray.nas.nn as nn


def digits(n=400):
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x[:n] / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    return x, torch.tensor(y[:n])


class DigitsSpace(nn.ModelSpace):
    """2 convolutions x 2 widths = 4 architectures."""

    def __init__(self, fail_on_tanh=False):
        super().__init__()
        width = nn.ValueChoice([4, 8], label="width")
        self.conv = nn.LayerChoice({"conv3": nn.Conv2d(1, width, 3, padding=1),
                                    "conv5": nn.Conv2d(1, width, 5, padding=2)}, label="conv")
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act") if fail_on_tanh else nn.ReLU()
        self.fail_on_tanh = fail_on_tanh
        self.head = nn.Linear(width * 16, 10)

    def forward(self, x):
        h = self.act(self.conv(x))
        if self.fail_on_tanh and isinstance(self.act, torch.nn.Tanh):
            raise RuntimeError("this architecture cannot run")
        return self.head(torch.nn.functional.max_pool2d(h, 2).flatten(1))


def fit(model_cls, x, y, epochs=2):
    torch.manual_seed(0)
    model = model_cls()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    split = int(len(x) * 0.75)
    for _ in range(epochs):
        for i in range(0, split, 50):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 50]), y[i:i + 50]).backward()
            opt.step()
        with torch.no_grad():
            acc = (model(x[split:]).argmax(1) == y[split:]).float().mean().item()
        nniray.report_intermediate_result(acc)
    nniray.report_final_result(acc)
