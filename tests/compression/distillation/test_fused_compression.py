"""Prune + quantize + distill in one training run (NNI 3.0 fusion compression), then speedup."""
import copy

from nniray.compression.distillation import DynamicLayerwiseDistiller
from nniray.compression.pruning import L1NormPruner, TaylorPruner
from nniray.compression.quantization import QATQuantizer
from nniray.compression.speedup import ModelSpeedup

from quant_helpers import accuracy, digits, evaluator, trained_cnn


def _predict(batch, teacher):
    return teacher(batch[0])


def test_prune_quantize_distill_in_one_run_then_speedup():
    teacher = trained_cnn()
    model = copy.deepcopy(teacher)
    ev = evaluator(model, lr=2e-3)
    pruner = L1NormPruner(model, [{"op_names": ["conv2"], "sparse_ratio": 0.5}], ev)
    quantizer = QATQuantizer.from_compressor(pruner, [{"op_names": ["conv1", "fc"], "target_names": ["_input_", "weight"],
                                                       "quant_dtype": "int8"}])
    distiller = DynamicLayerwiseDistiller.from_compressor(quantizer, [{"op_names": ["fc"], "apply_method": "kl",
                                                                      "lambda": 1.0}], teacher, _predict)
    assert distiller.evaluator is ev and quantizer._fused_chain == [pruner]
    distiller.compress(max_steps=40)
    assert quantizer.step_count == 40  # the quantizer's step hook ran in the distiller's training run
    masks = pruner.get_masks()
    kept = masks["conv2"]["weight"].flatten(1).any(1)
    assert kept.sum().item() == 16
    # one-shot pruner in fused mode: masks follow the trained weights (regenerated after each step)
    w = model.conv2.weight_orig.detach()
    norms = w.abs().flatten(1).sum(1)
    assert set(norms.topk(16).indices.tolist()) == set(kept.nonzero().flatten().tolist())
    calib = quantizer.get_calibration_config()
    assert set(calib) == {"conv1", "fc"}
    model.eval()
    fused_acc = accuracy(model)
    assert fused_acc > 0.9
    distiller.unwrap_model()
    ModelSpeedup(model, digits()[0][:2], masks).speedup_model()
    assert model.conv2.out_channels == 16
    assert accuracy(model) > 0.9


def test_training_pruner_in_a_fused_chain_generates_its_masks():
    teacher = trained_cnn()
    model = copy.deepcopy(teacher)
    pruner = TaylorPruner(model, [{"op_names": ["conv2"], "sparse_ratio": 0.25}], evaluator(model, lr=1e-3),
                          training_steps=5)
    quantizer = QATQuantizer.from_compressor(pruner, [{"op_names": ["fc"], "target_names": ["weight"]}])
    quantizer.compress(max_steps=8)
    mask = pruner.get_masks()["conv2"]["weight"]
    assert mask.flatten(1).any(1).sum().item() == 24
    quantizer.unwrap_model()


def test_one_shot_pruner_last_in_the_chain_trains_in_fused_mode():
    model = trained_cnn()
    quantizer = QATQuantizer(model, [{"op_names": ["fc"], "target_names": ["_input_", "weight"]}],
                             evaluator(model, lr=1e-3))
    pruner = L1NormPruner.from_compressor(quantizer, [{"op_names": ["conv2"], "sparse_ratio": 0.5}])
    _, masks = pruner.compress(max_steps=6)
    assert quantizer.step_count == 6
    assert masks["conv2"]["weight"].flatten(1).any(1).sum().item() == 16
    assert quantizer.get_calibration_config()["fc"]["weight"]["scale"] is not None
    quantizer.unwrap_model()
    assert not hasattr(model.fc, "_nniray_wrapper")
