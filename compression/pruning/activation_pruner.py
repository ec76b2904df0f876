"""Activation-based filter pruners: ActivationAPoZRankPruner and ActivationMeanRankPruner.

Both watch the output of every target layer (after the named ``activation`` function is applied
to it) during ``training_steps`` optimizer steps of the evaluator's training loop, then prune the
output channels whose activations matter least:

* APoZ (Network Trimming, Hu et al. 2016): ``APoZ_c = sum_k sum_j [O_cj(k) == 0] / (N * M)``, the
  fraction of zeros of channel c over N samples and M positions.  Channels with the *highest*
  APoZ are pruned, i.e. the importance is ``1 - APoZ``.
* Mean activation (Molchanov et al. 2016, §2.2): the mean of channel c's activation over the same
  samples and positions; the *smallest* means are pruned.

The channel axis of an output is 1 for convolutions (``N, C, ...``) and the last axis for Linear
(``..., C``), so both prune the rows of the layer's weight (dim 0), like NNI.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nniray.compression.base.sparsity import SparsityError

from ._training import TrainingPruner

__all__ = ["ACTIVATIONS", "ActivationStatistics", "apoz_importance", "mean_importance",
           "ActivationAPoZRankPruner", "ActivationMeanRankPruner"]

ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "relu6": F.relu6,
    "gelu": F.gelu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


def resolve_activation(activation) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}")
    return ACTIVATIONS[activation]


def _channel_first(output: Tensor, module: Optional[nn.Module]) -> Tensor:
    """Move the channel axis first and flatten the rest: ``(C, N*M)``."""
    if isinstance(module, nn.Linear) or output.dim() == 1:
        return output.reshape(-1, output.shape[-1]).transpose(0, 1)
    return output.transpose(0, 1).reshape(output.shape[1], -1)


class ActivationStatistics:
    """Running per-channel counts over every forward pass seen: zeros, sum and positions."""

    def __init__(self, activation="relu"):
        self.activation = resolve_activation(activation)
        self.zeros: Dict[str, Tensor] = {}
        self.sums: Dict[str, Tensor] = {}
        self.counts: Dict[str, int] = {}
        self.batches: Dict[str, int] = {}

    def update(self, name: str, output: Tensor, module: Optional[nn.Module] = None) -> None:
        act = _channel_first(self.activation(output.detach().float()), module)
        zeros = (act == 0).sum(dim=1).double()
        sums = act.sum(dim=1).double()
        if name in self.zeros:
            self.zeros[name] += zeros
            self.sums[name] += sums
            self.counts[name] += act.shape[1]
            self.batches[name] += 1
        else:
            self.zeros[name], self.sums[name] = zeros, sums
            self.counts[name], self.batches[name] = act.shape[1], 1

    def apoz(self, name: str) -> Tensor:
        return (self.zeros[name] / self.counts[name]).float()

    def mean(self, name: str) -> Tensor:
        return (self.sums[name] / self.counts[name]).float()


def apoz_importance(stats: ActivationStatistics, name: str) -> Tensor:
    """``1 - APoZ``: a channel that is zero more often is less important."""
    return 1.0 - stats.apoz(name)


def mean_importance(stats: ActivationStatistics, name: str) -> Tensor:
    return stats.mean(name)


# --------------------------------------------------------------------------------------------
# the pruners
# --------------------------------------------------------------------------------------------



class _ActivationPruner(TrainingPruner):
    """Collects activation statistics of the target layers while the evaluator trains
    ``training_steps`` steps, then masks output channels by importance (C1's mask generation:
    sparse goals, groups, bounds and bias alignment all apply).

    ``compress(max_steps=None, max_epochs=None)`` follows the other training-aware pruners
    (Slim, Taylor): masks are generated after ``training_steps`` optimizer steps; with
    ``max_steps``/``max_epochs`` training goes on with the masks applied.  LinearPruner/AGPPruner
    can drive these pruners: each update ranks with the activations seen since the last one.
    """

    _default_op_types = ("Conv2d", "Linear")
    _default_granularity = "out_channel"
    _supports_schedule = True

    def __init__(self, model: nn.Module, config_list, evaluator, training_steps: int, activation="relu",
                 existed_wrappers=None):
        self.activation = activation
        self._stats = ActivationStatistics(activation)   # validates ``activation`` before any wrapping
        self._handles = []
        self._collecting = False
        self.last_statistics: Optional[ActivationStatistics] = None  # what the last masks were ranked by
        super().__init__(model, config_list, evaluator, training_steps, existed_wrappers=existed_wrappers)

    def _importance(self, name: str) -> Tensor:
        raise NotImplementedError

    # collection ---------------------------------------------------------------------------------
    def _fuse_preprocess(self, evaluator) -> None:
        self._stats = ActivationStatistics(self.activation)
        self._collecting = True
        modules = dict(self.bound_model.named_modules())
        for name in self._target_spaces:
            self._handles.append(modules[name].register_forward_hook(
                lambda mod, args, out, name=name: self._collect(name, mod, out)))

    def _collect(self, name: str, module: nn.Module, output) -> None:
        if not self._collecting:
            return
        if isinstance(output, (tuple, list)):
            output = output[0]
        self._stats.update(name, output, module)

    def _finish_collecting(self) -> None:
        super()._finish_collecting()
        self._collecting = False

    def _fuse_postprocess(self, evaluator) -> None:
        self._collecting = False
        for h in self._handles:
            h.remove()
        self._handles = []

    # metrics ----------------------------------------------------------------------------------------
    def _calculate_metrics(self, targets, block_sizes):
        metrics = {}
        for key, ts in targets.items():
            module_name, target_name = key
            sizes = block_sizes[key]
            if ts.is_activation or list(sizes[1:]) != [-1] * (len(sizes) - 1) or sizes[0] != 1:
                raise SparsityError(f"{ts.where}: {type(self).__name__} ranks output channels, so it prunes "
                                    f"parameters with granularity 'out_channel' only (got {ts.granularity!r})")
            if module_name not in self._stats.counts:
                raise SparsityError(f"{ts.where}: no activation was recorded for {module_name!r} during "
                                    f"{self.training_steps} training steps; check the module is used in forward")
            importance = self._importance(module_name)
            if importance.numel() != ts.shape[0]:
                raise SparsityError(f"{ts.where}: the output has {importance.numel()} channels but the weight has "
                                    f"{ts.shape[0]} rows; activation pruners need outputs laid out (N, C, ...) "
                                    f"for convolutions and (..., C) for Linear")
            metrics[key] = importance.reshape([-1] + [1] * (len(ts.shape) - 1))
        # scheduled use: the next update ranks with the activations seen after this one
        self.last_statistics = self._stats
        self._stats = ActivationStatistics(self.activation)
        return metrics


class ActivationAPoZRankPruner(_ActivationPruner):
    """Prune the output channels with the highest APoZ (average percentage of zeros).

    Parameters
    ----------
    model, config_list, evaluator
        As for every NNI 3.0 pruner; the evaluator needs ``training_func``, ``optimizers`` and
        ``training_step`` (``TorchEvaluator``, ``LightningEvaluator``, ...).
    training_steps
        Optimizer steps during which activations are collected (v2: ``training_batches``; the
        guide's examples use 20).
    activation
        Applied to the layer's output before counting zeros: ``'relu'`` (default), ``'relu6'``,
        ``'gelu'``, ``'leaky_relu'``, ``'elu'``, ``'silu'``, ``'sigmoid'``, ``'identity'`` or a callable.
    """

    def _importance(self, name: str) -> Tensor:
        return apoz_importance(self._stats, name)


class ActivationMeanRankPruner(_ActivationPruner):
    """Prune the output channels with the smallest mean activation (arguments as
    :class:`ActivationAPoZRankPruner`)."""

    def _importance(self, name: str) -> Tensor:
        return mean_importance(self._stats, name)
