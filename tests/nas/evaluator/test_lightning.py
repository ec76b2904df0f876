"""Lightning evaluators on CPU (tiny data), run through evaluate() and through a pickled copy
(what a trial process receives)."""
import os
import pickle

import cloudpickle
import pytest
import torch

import nniray
import nniray.nas.nn as nn
from nniray.nas import fixed_arch
from nniray.nas.evaluator.pytorch import lightning as pl


class Space(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        self.body = nn.LayerChoice([nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))],
                                   label="body")

    def forward(self, x):
        return self.body(x)


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return x, y


def _loader(x, y):
    ds = nniray.trace(torch.utils.data.TensorDataset)(x, y)
    return pl.DataLoader(ds, batch_size=16)


def test_classification_reports_val_acc_each_epoch_and_final(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NNI_OUTPUT_DIR", str(tmp_path))
    x, y = _data()
    ev = pl.Classification(train_dataloaders=_loader(x, y), val_dataloaders=_loader(x, y), max_epochs=3,
                           learning_rate=0.05)
    ev = pickle.loads(cloudpickle.dumps(ev))  # as in a trial process: traced loaders rebuilt from recipes
    with fixed_arch({"body": 1}):
        model = Space()
    result = ev.evaluate(model)
    out = capsys.readouterr().out
    assert out.count("intermediate result") == 3 and out.count("final result") == 1
    assert 0.0 <= result["acc"] <= 1.0
    assert (tmp_path / "model.onnx").exists()  # for Netron


def test_regression_and_old_singular_spelling(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    x, _ = _data()
    y = x.sum(dim=1, keepdim=True)

    class Reg(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 1)

        def forward(self, v):
            return self.fc(v)

    ev = pl.Regression(train_dataloader=_loader(x, y), val_dataloaders=_loader(x, y), max_epochs=2,
                       export_onnx=False)
    result = ev.evaluate(Reg)
    assert result["mse"] >= 0 and "final result" in capsys.readouterr().out
    assert not (tmp_path / "model.onnx").exists()
    with pytest.raises(TypeError, match="not both"):
        pl.Regression(train_dataloader=_loader(x, y), train_dataloaders=_loader(x, y))


def test_criterion_and_optimizer_must_be_classes():
    with pytest.raises(TypeError, match="criterion must be a class"):
        pl.Classification(criterion=torch.nn.CrossEntropyLoss())


def test_custom_lightning_module_with_set_model(capsys):
    class Module(pl.LightningModule):
        def training_step(self, batch, idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.model(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def on_fit_end(self):
            nniray.report_final_result(1.0)

    x, y = _data(32)
    ev = pl.Lightning(Module(), pl.Trainer(max_epochs=1), train_dataloaders=_loader(x, y))
    with fixed_arch({"body": 0}):
        ev.evaluate(Space())
    assert "final result: 1.0" in capsys.readouterr().out
    with pytest.raises(TypeError, match="traced"):
        import pytorch_lightning
        pl.Lightning(Module(), pytorch_lightning.Trainer(max_epochs=1))
