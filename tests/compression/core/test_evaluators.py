import pytest
import torch
import torch.nn.functional as F

import nniray
from nniray.compression import TorchEvaluator
from nniray.compression.pruning import TaylorPruner

from compression_core_helpers import SmallCNN, make_data, make_evaluator, make_training_func, training_step


def test_torch_evaluator_rebuilds_traced_optimizer_and_scheduler():
    model = SmallCNN()
    data = make_data()
    opt = nniray.trace(torch.optim.SGD)(model.parameters(), lr=0.1, momentum=0.5)
    sched = nniray.trace(torch.optim.lr_scheduler.StepLR)(opt, step_size=1, gamma=0.5)
    got = {}

    def training_func(m, optimizers, step_fn, lr_schedulers, max_steps, max_epochs):
        got.update(opt=optimizers, sched=lr_schedulers, max_steps=max_steps, max_epochs=max_epochs)
        make_training_func(data)(m, optimizers, step_fn, lr_schedulers, max_steps, max_epochs)

    evaluator = TorchEvaluator(training_func, opt, training_step, sched)
    evaluator.bind_model(model)
    before = model.fc.weight.detach().clone()
    evaluator.train(max_epochs=2)
    assert got["opt"] is not opt and isinstance(got["opt"], torch.optim.SGD)
    assert got["opt"].defaults["momentum"] == 0.5
    assert got["sched"].optimizer is got["opt"]
    assert got["opt"].param_groups[0]["lr"] == pytest.approx(0.025)  # two epoch-steps of gamma 0.5
    assert (got["max_steps"], got["max_epochs"]) == (None, 2)
    assert not torch.equal(before, model.fc.weight)
    evaluator.unbind_model()


def test_torch_evaluator_loss_patch_and_step_tasks_with_tuple_and_dict_steps():
    model = SmallCNN()
    data = make_data()
    for kind in ("tuple", "dict"):
        seen_losses, order = [], []

        def step(batch, m, *a, **k):
            loss = F.cross_entropy(m(batch[0]), batch[1])
            return (loss, 1) if kind == "tuple" else {"loss": loss, "extra": 1}

        def training_func(m, optimizers, step_fn, lr_schedulers, max_steps, max_epochs):
            for batch in data[:max_steps]:
                optimizers.zero_grad()
                out = step_fn(batch, m)
                loss = out[0] if kind == "tuple" else out["loss"]
                seen_losses.append(loss.item())
                loss.backward()
                optimizers.step()

        evaluator = TorchEvaluator(training_func, nniray.trace(torch.optim.SGD)(model.parameters(), lr=0.0), step)
        evaluator.bind_model(model)
        evaluator.patch_loss(lambda loss, batch: loss + 100.0)
        evaluator.patch_optimizer_step([lambda: order.append("before")], [lambda: order.append("after")])
        evaluator.train(max_steps=2)
        evaluator.unbind_model()
        plain = F.cross_entropy(model(data[0][0]), data[0][1]).item()
        assert seen_losses[0] == pytest.approx(plain + 100.0, rel=1e-5)
        assert order == ["before", "after", "before", "after"]


def test_torch_evaluator_evaluate_float_and_dict_and_errors():
    model = SmallCNN()
    evaluator = make_evaluator(model)
    evaluator.bind_model(model)
    default, metrics = evaluator.evaluate()
    assert 0.0 <= default <= 1.0 and metrics["n"] == 4
    evaluator.unbind_model()
    ev2 = TorchEvaluator(evaluating_func=lambda m: 0.75)
    ev2.bind_model(model)
    assert ev2.evaluate() == 0.75
    ev3 = TorchEvaluator(evaluating_func=lambda m: {"acc": 1.0})
    ev3.bind_model(model)
    with pytest.raises(ValueError, match="without a 'default' key"):
        ev3.evaluate()
    with pytest.raises(TypeError, match=r"optimizers\[0\] \(Adam\) was not created through nniray.trace"):
        TorchEvaluator(lambda *a: None, torch.optim.Adam(model.parameters()), training_step)


def test_evaluator_is_usable_by_several_pruners_in_turn():
    model = SmallCNN()
    evaluator = make_evaluator(model)
    pruner = TaylorPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.25}], evaluator, training_steps=2)
    pruner.compress()
    pruner.unwrap_model()
    pruner2 = TaylorPruner(model, [{"op_types": ["Linear"], "sparse_ratio": 0.25}], evaluator, training_steps=2)
    _, masks = pruner2.compress()
    assert set(masks) == {"fc"}


# ---------------------------------------------------------------------------------------------
# Lightning
# ---------------------------------------------------------------------------------------------

pl = pytest.importorskip("pytorch_lightning")


@nniray.trace
class TinyData(pl.LightningDataModule):
    def __init__(self, n=64):
        super().__init__()
        self.n = n

    def setup(self, stage=None):
        data = make_data(self.n)
        self.x = torch.cat([b[0] for b in data])
        self.y = torch.cat([b[1] for b in data])

    def _loader(self):
        ds = torch.utils.data.TensorDataset(self.x, self.y)
        return torch.utils.data.DataLoader(ds, batch_size=16)

    def train_dataloader(self):
        return self._loader()

    def test_dataloader(self):
        return self._loader()


class LitCNN(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = SmallCNN()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def test_step(self, batch, batch_idx):
        acc = (self(batch[0]).argmax(1) == batch[1]).float().mean()
        self.log("default", acc)

    def configure_optimizers(self):
        return nniray.trace(torch.optim.SGD)(self.parameters(), lr=0.05)


def _pl_trainer():
    return nniray.trace(pl.Trainer)(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                                    enable_checkpointing=False, enable_progress_bar=False,
                                    enable_model_summary=False)


def test_lightning_evaluator_trains_prunes_and_tests():
    from nniray.compression import LightningEvaluator
    model = LitCNN()
    evaluator = LightningEvaluator(_pl_trainer(), TinyData())
    pruner = TaylorPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], evaluator, training_steps=2)
    _, masks = pruner.compress(max_steps=3)
    assert masks["net.conv1"]["bias"].tolist().count(0.0) == 4
    evaluator.bind_model(model)
    default, metrics = evaluator.evaluate()
    assert 0.0 <= default <= 1.0 and "default" in metrics
    evaluator.unbind_model()
    assert "training_step" not in model.__dict__  # patches removed
    assert tuple(evaluator.get_dummy_input().shape) == (16, 1, 8, 8)


def test_lightning_evaluator_requires_traced_parts():
    from nniray.compression import LightningEvaluator
    plain = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                       enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(TypeError, match="trainer was not created through nniray.trace"):
        LightningEvaluator(plain, TinyData())


# ---------------------------------------------------------------------------------------------
# Transformers (tiny random BERT built from a config: no download)
# ---------------------------------------------------------------------------------------------

def test_transformers_evaluator_tiny_bert(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate (not installed here)")
    from nniray.compression import TransformersEvaluator
    from nniray.compression.pruning import MovementPruner

    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, vocab_size=100, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 100, (32, 8), generator=g)
    dataset = [{"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long),
                "labels": int(ids[i, 0] > 50)} for i in range(32)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8,
                                          per_device_eval_batch_size=8, report_to=[], save_strategy="no",
                                          use_cpu=True, learning_rate=1e-3, logging_strategy="no")
    trainer = nniray.trace(transformers.Trainer)(model=model, args=args, train_dataset=dataset, eval_dataset=dataset)
    evaluator = TransformersEvaluator(trainer)
    pruner = MovementPruner(model, [{"op_types": ["Linear"], "op_names_re": [".*intermediate.*"],
                                     "sparse_ratio": 0.5}], evaluator, warmup_step=1, cooldown_begin_step=3)
    _, masks = pruner.compress(max_steps=4)
    dense = model.bert.encoder.layer[0].intermediate.dense
    assert set(masks) == {"bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.1.intermediate.dense"}
    assert int((masks["bert.encoder.layer.0.intermediate.dense"]["weight"] == 0).sum()) == 37 * 32 // 2
    assert hasattr(dense, "weight_mask")
    evaluator.bind_model(model)
    default, metrics = evaluator.evaluate()
    assert default == pytest.approx(-metrics["eval_loss"])
    evaluator.unbind_model()
