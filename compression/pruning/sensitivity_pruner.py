"""SensitivityPruner: prune by per-layer sensitivity, round by round ("Learning both Weights and
Connections", Han et al. 2015, as NNI v1 implements it).

Each round:

1. :class:`~nniray.compression.utils.sensitivity_analysis.SensitivityAnalysis` measures, for
   every target conv layer alone, the score at the analysis sparsities (relative to the layer's
   remaining weights);
2. ``sparsity_proportion_calc(ori_score, acc_drop_threshold, sensitivities)`` gives each layer a
   proportion; the default is the largest analysed sparsity whose score drop stays within
   ``acc_drop_threshold`` (0 if already the smallest one drops more);
3. ``normalize`` scales the proportions so that the round removes ``sparsity_per_iter`` of the
   targets' original weights (never more than what is left to reach the total), capping any layer
   at 0.95 of its remaining weights per round;
4. the layers are pruned (masks only grow), optionally fine-tuned, and evaluated; the new score is
   the baseline of the next round.

It stops when the total share of pruned weights reaches the config's total (see
SimulatedAnnealingPruner for how it is read) or a round makes no progress.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from nniray.compression.utils.sensitivity_analysis import SensitivityAnalysis, load_sensitivity_csv

from ._advanced.base import AdvancedPruner

__all__ = ["SensitivityPruner", "max_prune_ratio", "MAX_PRUNE_RATIO_PER_ITER"]

_logger = logging.getLogger(__name__)

MAX_PRUNE_RATIO_PER_ITER = 0.95


def max_prune_ratio(ori_acc: float, threshold: float, sensitivities: Dict[str, Dict[float, float]]) -> Dict[str, float]:
    """Default ``sparsity_proportion_calc``: per layer, the largest analysed sparsity whose score
    is still within ``threshold`` of ``ori_acc`` (stopping at the first one that is not)."""
    out = {}
    for layer, row in sensitivities.items():
        last = 0.0
        for ratio in sorted(row):
            if row[ratio] + threshold < ori_acc:
                break
            last = ratio
        out[layer] = last
    return out


class SensitivityPruner(AdvancedPruner):
    """Sensitivity-guided iterative pruning in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list
        Conv1d/Conv2d targets (default op type Conv2d); their ``sparse_ratio`` values fix the total.
    evaluator
        Needs ``evaluating_func`` (the "accuracy"); ``finetune_steps``/``finetune_epochs`` need the
        training parts too (v1's ``finetuner``).
    pruning_algorithm
        ``'l1'`` (default), ``'l2'``, ``'fpgm'`` or ``'level'`` (analysis and pruning).
    sparsity_proportion_calc
        ``fn(ori_acc, acc_drop_threshold, sensitivities) -> {layer: proportion}``; default
        :func:`max_prune_ratio`.
    sparsity_per_iter
        Share of the targets' original weights removed per round (0.1).
    acc_drop_threshold
        Score drop that counts as sensitive (0.05).
    checkpoint_dir
        If set, every round writes ``<name>.pth`` (state dict), ``<name>_pruner.json`` (the round's
        config list) and ``<name>_sensitivity.csv`` there.
    sparsities
        Analysis grid (default ``np.arange(0.1, 1.0, 0.1)``).
    resume_sensitivity
        A CSV from ``SensitivityAnalysis.export`` used instead of the first analysis.
    """

    _default_op_types = ("Conv2d",)
    _required_evaluator_parts = ("evaluating_func",)

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 pruning_algorithm: str = "l1", sparsity_proportion_calc: Optional[Callable[..., Dict[str, float]]] = None,
                 sparsity_per_iter: float = 0.1, acc_drop_threshold: float = 0.05,
                 checkpoint_dir: Optional[str] = None, finetune_steps: Optional[int] = None,
                 finetune_epochs: Optional[int] = None, sparsities: Optional[Sequence[float]] = None,
                 resume_sensitivity: Optional[str] = None, existed_wrappers=None):
        if not 0 < sparsity_per_iter < 1:
            raise ValueError(f"SensitivityPruner: sparsity_per_iter must be in (0, 1), got {sparsity_per_iter!r}")
        if acc_drop_threshold < 0:
            raise ValueError(f"SensitivityPruner: acc_drop_threshold must be >= 0, got {acc_drop_threshold!r}")
        if finetune_steps is not None and finetune_epochs is not None:
            raise ValueError("SensitivityPruner: give at most one of finetune_steps and finetune_epochs")
        self.sparsity_proportion_calc = sparsity_proportion_calc or max_prune_ratio
        self.sparsity_per_iter = float(sparsity_per_iter)
        self.acc_drop_threshold = float(acc_drop_threshold)
        self.checkpoint_dir = checkpoint_dir
        self.finetune_steps = finetune_steps
        self.finetune_epochs = finetune_epochs
        self.resume_sensitivity = resume_sensitivity
        self.history: List[Dict[str, Any]] = []
        super().__init__(model, config_list, evaluator, pruning_algorithm=pruning_algorithm,
                         existed_wrappers=existed_wrappers)
        if finetune_steps is not None or finetune_epochs is not None:
            self._required_evaluator_parts = ("evaluating_func", "training_func", "optimizers", "training_step")
            self._check_evaluator()
        self.analyzer = SensitivityAnalysis(model, self._val, sparsities=sparsities, prune_type=pruning_algorithm)
        bad = [name for name in self._weights if name not in self.analyzer.target_layer]
        if bad:
            raise ValueError(f"SensitivityPruner analyses Conv1d/Conv2d layers only; config_list selects {bad}")
        self.sensitivities: Dict[str, Dict[float, float]] = {}
        self.ori_acc: Optional[float] = None

    def _val(self) -> float:
        score = self.evaluate_score()
        if score is None:
            raise ValueError("SensitivityPruner needs evaluator.evaluate() to return a score (give an evaluating_func)")
        return score

    # ---- v1 helpers ---------------------------------------------------------------------------
    def load_sensitivity(self, filepath: str) -> Dict[str, Dict[float, float]]:
        """Load a CSV exported by SensitivityAnalysis."""
        return load_sensitivity_csv(filepath)

    def normalize(self, ratios: Dict[str, float], target_pruned: float) -> Dict[str, float]:
        """Scale ``ratios`` (of each layer's remaining weights) so they remove ``target_pruned`` of
        the targets' original weights; no layer above MAX_PRUNE_RATIO_PER_ITER."""
        numel = self.numels()
        already = self.analyzer.already_pruned
        ratios = dict(ratios)
        if all(r <= 0 for r in ratios.values()):
            # every layer is too sensitive: spread the round evenly rather than stall
            _logger.warning("SensitivityPruner: every layer drops more than acc_drop_threshold at the smallest "
                            "analysed sparsity; pruning this round uniformly")
            ratios = {k: 1.0 for k in ratios}
        w_sum = sum(r * numel[k] * (1 - already[k]) for k, r in ratios.items())
        target_count = sum(numel.values()) * target_pruned
        out = {k: r * target_count / w_sum for k, r in ratios.items()}
        top = max(out.values())
        if top > MAX_PRUNE_RATIO_PER_ITER:
            out = {k: v * MAX_PRUNE_RATIO_PER_ITER / top for k, v in out.items()}
        return out

    def create_cfg(self, ratios: Dict[str, float]) -> List[Dict[str, Any]]:
        """3.0 config list for ratios of the remaining weights, e.g. ``{'conv1': 0.2}`` →
        ``[{'sparse_ratio': 0.2, 'op_names': ['conv1'], 'op_types': ['Conv2d']}]`` (plus what is
        already pruned)."""
        modules = dict(self.bound_model.named_modules())
        cfg = []
        for name, ratio in ratios.items():
            already = self.analyzer.already_pruned[name]
            sparsity = already + (1 - already) * ratio
            if sparsity > 0:
                cfg.append({"sparse_ratio": sparsity, "op_names": [name], "op_types": [type(modules[name]).__name__]})
        return cfg

    # ---- search ----------------------------------------------------------------------------------
    def _run(self) -> None:
        names = list(self._weights)
        self.ori_acc = self._val()
        if self.resume_sensitivity:
            self.sensitivities = {k: v for k, v in self.load_sensitivity(self.resume_sensitivity).items() if k in names}
            self.analyzer.sensitivities = self.sensitivities
        else:
            self.analyzer.load_state_dict(self.bound_model.state_dict())
            self.sensitivities = self.analyzer.analysis(specified_layers=names)
        goal = self.overall_target()
        ori_acc = self.ori_acc
        iteration = 0
        while self.current_sparsity() < goal - 1e-9:
            iteration += 1
            proportion = self.sparsity_proportion_calc(ori_acc, self.acc_drop_threshold, self.sensitivities)
            proportion = {k: float(proportion.get(k, 0.0)) for k in names}
            step = min(self.sparsity_per_iter, goal - self.current_sparsity())
            new_ratios = self.normalize(proportion, step)
            cfg = self.create_cfg(new_ratios)
            before = self.current_sparsity()
            allocation = {c["op_names"][0]: c["sparse_ratio"] for c in cfg}
            self.update_masks(self.masks_for(allocation, keep_pruned=True))
            if self.current_sparsity() <= before + 1e-12 and new_ratios:
                # the ratios rounded down to zero whole channels: take one more block from the
                # layer the proportions favour most, so the round still makes progress
                name = max(new_ratios, key=new_ratios.get)
                shape = self._weights[name].shape
                block = 1 if self.pruning_algorithm == "level" else shape.numel() // shape[0]
                n_blocks = shape.numel() // block
                done = round(self.current_ratios()[name] * n_blocks)
                if done + 1 < n_blocks:
                    allocation = {name: (done + 1) / n_blocks}
                    cfg = [{"sparse_ratio": allocation[name], "op_names": [name], "op_types": [type(
                        dict(self.bound_model.named_modules())[name]).__name__]}]
                    self.update_masks(self.masks_for(allocation, keep_pruned=True))
            pruned_acc = self._val()
            finetune_acc = pruned_acc
            if self.finetune_steps is not None or self.finetune_epochs is not None:
                self.train(self.finetune_steps, self.finetune_epochs)
                finetune_acc = self._val()
            ori_acc = finetune_acc
            for name, ratio in self.current_ratios().items():
                self.analyzer.update_already_pruned(name, ratio)
            self.history.append({"iteration": iteration, "config_list": cfg, "pruned_score": pruned_acc,
                                 "score": finetune_acc, "sparsity": self.current_sparsity(),
                                 "sparse_ratios": self.current_ratios()})
            self.record(iteration, finetune_acc, self.get_masks(), self.current_ratios(), latest=True)
            self._checkpoint(iteration, finetune_acc, cfg)
            if self.current_sparsity() <= before + 1e-12:
                _logger.warning("SensitivityPruner: round %d could prune nothing more; stopping at sparsity %.4f",
                                iteration, self.current_sparsity())
                break
            if self.current_sparsity() < goal - 1e-9:
                # skip the analysis after the last round: it would not be used
                self.analyzer.load_state_dict(self.bound_model.state_dict())
                self.sensitivities = self.analyzer.analysis(specified_layers=names)

    def _checkpoint(self, iteration: int, score: float, cfg: List[Dict[str, Any]]) -> None:
        if self.checkpoint_dir is None:
            return
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        stem = os.path.join(self.checkpoint_dir, "Iter_%d_finetune_acc_%.5f_sparsity_%.4f"
                            % (iteration, score, self.current_sparsity()))
        torch.save(self.bound_model.state_dict(), stem + ".pth")
        with open(stem + "_pruner.json", "w") as f:
            json.dump(cfg, f)
        self.analyzer.export(stem + "_sensitivity.csv")
