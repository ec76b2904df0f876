"""Prune half of the conv filters of a small CNN by L1 norm, then make the model really smaller."""
import torch
from torch import nn

from nniray.compression.pruning import L1NormPruner
from nniray.compression.speedup import ModelSpeedup
from nniray.compression.utils import count_flops_params

model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
dummy_input = torch.rand(8, 3, 32, 32)
flops_before, params_before, _ = count_flops_params(model, dummy_input, verbose=False)

pruner = L1NormPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])
_, masks = pruner.compress()           # masks = {module_name: {'weight': ..., 'bias': ...}}
pruner.unwrap_model()                  # ModelSpeedup needs the plain model
ModelSpeedup(model, dummy_input, masks).speedup_model()

flops_after, params_after, _ = count_flops_params(model, dummy_input, verbose=False)
print(model[0], model[3])              # Conv2d(3, 8, ...) Conv2d(8, 16, ...)
print(f"FLOPs {flops_before} -> {flops_after}, params {params_before} -> {params_after}")
