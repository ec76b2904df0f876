"""Multi-trial NAS in a few lines (README example; run by tests/nas/test_example.py with -m slow)."""
import torch
from sklearn.datasets import load_digits

import nniray
import nniray.nas.nn as nn
import nniray.nas.strategy as strategy
from nniray.nas import fixed_arch
from nniray.nas.evaluator import FunctionalEvaluator
from nniray.nas.experiment import RetiariiExeConfig, RetiariiExperiment


class Net(nn.ModelSpace):                      # or @model_wrapper on an nn.Module
    def __init__(self):
        super().__init__()
        width = nn.ValueChoice([8, 16], label="width")
        self.conv = nn.LayerChoice({"conv3": nn.Conv2d(1, width, 3, padding=1),
                                    "conv5": nn.Conv2d(1, width, 5, padding=2)}, label="conv")
        self.fc = nn.Linear(width * 16, 10)

    def forward(self, x):
        return self.fc(torch.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


def fit(model_cls, x, y):                      # receives the class of one sampled architecture
    model = model_cls()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(3):
        for i in range(0, 1200, 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    with torch.no_grad():
        nniray.report_final_result((model(x[1200:]).argmax(1) == y[1200:]).float().mean().item())


if __name__ == "__main__":
    X, Y = load_digits(return_X_y=True)
    x, y = torch.tensor(X / 16, dtype=torch.float32).view(-1, 1, 8, 8), torch.tensor(Y)
    exp = RetiariiExperiment(Net(), FunctionalEvaluator(fit, x=x, y=y), strategy=strategy.Random())
    config = RetiariiExeConfig("local")
    config.trial_concurrency = 2
    config.max_trial_number = 4
    exp.run(config)                            # an ordinary experiment: nniray experiment list / trial ls / resume
    best = exp.export_top_models(top_k=1)[0]   # e.g. {'width': 16, 'conv': 'conv5'}
    print("best architecture:", best)
    with fixed_arch(best):
        model = Net()                          # the concrete model, ready to retrain
    print(model)
