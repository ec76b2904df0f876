"""The advanced pruners through a LightningEvaluator (slow: Lightning starts a Trainer per fit)."""
import pytest
import torch
import torch.nn.functional as F

from adv_helpers import ConvNet, make_data
from nniray.trace import trace

pl = pytest.importorskip("pytorch_lightning")


@trace
class Data(pl.LightningDataModule):
    def setup(self, stage=None):
        self.x, self.y = make_data(64)

    def _loader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(self.x, self.y), batch_size=16)

    def train_dataloader(self):
        return self._loader()

    def test_dataloader(self):
        return self._loader()


class Lit(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = ConvNet()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def test_step(self, batch, batch_idx):
        self.log("default", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return trace(torch.optim.SGD)(self.parameters(), lr=0.05)


def evaluator():
    from nniray.compression import LightningEvaluator
    trainer = trace(pl.Trainer)(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    return LightningEvaluator(trainer, Data())


@pytest.mark.slow
def test_lottery_ticket_apoz_and_annealing_with_lightning():
    from nniray.compression.pruning import ActivationAPoZRankPruner, LotteryTicketPruner, SimulatedAnnealingPruner
    torch.manual_seed(0)
    model = Lit()
    _, masks = LotteryTicketPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], evaluator(),
                                   total_iteration=2, training_steps=2).compress()
    assert float((masks["net.conv2"]["weight"] == 0).float().mean()) == pytest.approx(0.5)
    model = Lit()
    _, masks = ActivationAPoZRankPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], evaluator(),
                                        training_steps=2).compress()
    assert int((masks["net.conv1"]["bias"] == 0).sum()) == 4
    model = Lit()
    pruner = SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], evaluator(),
                                      cool_down_rate=0.5, seed=0)
    pruner.compress()
    assert len(pruner.history) == 4 and all(0 <= h["score"] <= 1 for h in pruner.history)
