"""One training run for a chain of compressors built with ``from_compressor`` (NNI 3.0 fusion).

``run_fused(last, max_steps, max_epochs)`` binds the shared evaluator to the model, calls every
compressor's fuse pre-processing in chain order, trains once, then calls every post-processing:

* a one-shot pruner (L1Norm, Level, FPGM, ...) generates its masks before training and again
  after every optimizer step (its fused mode: the masks follow the weights as they train);
* a training pruner (Slim, Taylor) collects during training and generates masks after its
  ``training_steps`` steps, as its own ``compress`` would;
* quantizers and distillers install their step hooks, loss terms and extra parameters.
"""
from __future__ import annotations

from typing import Any, List, Optional

from .compressor import Compressor, EvaluatorError, Pruner

__all__ = ["run_fused", "chain_of"]


def chain_of(compressor: Compressor) -> List[Compressor]:
    return list(getattr(compressor, "_fused_chain", [])) + [compressor]


def _is_training_pruner(c: Compressor) -> bool:
    from ..pruning._training import TrainingPruner
    return isinstance(c, TrainingPruner)


def _preprocess(c: Compressor, evaluator: Any) -> None:
    if isinstance(c, Pruner) and c._one_shot:
        def regenerate(pruner: Pruner = c) -> None:
            pruner.update_masks(pruner.generate_masks())
        regenerate()
        evaluator.patch_optimizer_step([], [regenerate])
    elif _is_training_pruner(c):
        c._step_count = 0
        c._masks_generated = False
        c._fuse_preprocess(evaluator)
        evaluator.patch_optimizer_step([], [c._after_step])
    else:
        c._fuse_preprocess(evaluator)


def _postprocess(c: Compressor, evaluator: Any) -> None:
    if isinstance(c, Pruner) and c._one_shot:
        return
    if _is_training_pruner(c) and not c._masks_generated:
        c._finish_collecting()
    c._fuse_postprocess(evaluator)


def run_fused(compressor: Compressor, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
    """Train the chain ending in ``compressor`` with its evaluator."""
    evaluator = compressor.evaluator
    name = type(compressor).__name__
    if evaluator is None:
        raise EvaluatorError(f"{name}.compress trains the model and needs an evaluator; pass evaluator="
                             f"TorchEvaluator(training_func, optimizers, training_step, ...)")
    missing = evaluator.missing_parts(["training_func", "optimizers", "training_step"]) \
        if hasattr(evaluator, "missing_parts") else []
    if missing:
        raise EvaluatorError(f"{name}.compress trains the model and needs the evaluator's {', '.join(missing)}")
    chain = chain_of(compressor)
    evaluator.bind_model(compressor.bound_model)
    try:
        for c in chain:
            _preprocess(c, evaluator)
        evaluator.train(max_steps, max_epochs)
        for c in chain:
            _postprocess(c, evaluator)
    finally:
        evaluator.unbind_model()
