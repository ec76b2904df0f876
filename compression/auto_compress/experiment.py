"""Auto-compression: an HPO experiment whose trials are compression jobs (NNI's
``AutoCompressionExperiment`` and ``AbstractAutoCompressionModule``).

The user describes the task once in a module class::

    class MyModule(AbstractAutoCompressionModule):
        @classmethod
        def model(cls): ...                    # a fresh pre-trained model
        @classmethod
        def evaluator(cls): ...                # fn(model) -> accuracy (higher is better)
        @classmethod
        def dummy_input(cls): ...              # for FLOPs and speedup
        @classmethod
        def compression_evaluator(cls, model): # a TorchEvaluator, for the algorithms that train
            ...

Each trial draws ``(algorithm_name, config_list)`` from an
:class:`~.search_space.AutoCompressionSearchSpaceGenerator` space, compresses a fresh model
(pruners: masks then ``ModelSpeedup``; quantizers: simulated quantization), optionally fine-tunes
(``finetune(model)``), and reports ``calculate_final_metric(accuracy, flops_ratio)`` as its final
metric (by default ``accuracy - flops_weight * flops_ratio``; ``flops_weight`` is 0 unless set),
with the accuracy and FLOPs in the metric dict.  The experiment is a normal
:class:`~nniray.experiment.Experiment` (CLI, store, web UI and resume work as for any experiment).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional

import torch

from .algorithms import AlgorithmKind, load_algorithm
from .search_space import parse_params

__all__ = ["AbstractAutoCompressionModule", "AutoCompressionExperiment", "run_auto_compression_trial",
           "SUPPORTED_TUNERS"]

#: NNI's auto-compression documents these tuners only (they handle the nested search space)
SUPPORTED_TUNERS = ("TPE", "Random", "Anneal", "Evolution")


class AbstractAutoCompressionModule:
    """Describe the model and how to judge it; every method is a classmethod."""

    #: weight of the FLOPs ratio in the default final metric
    flops_weight: float = 0.0

    @classmethod
    def model(cls) -> torch.nn.Module:
        raise NotImplementedError  # abstract: a fresh pre-trained model

    @classmethod
    def evaluator(cls) -> Callable[[torch.nn.Module], float]:
        raise NotImplementedError  # abstract: fn(model) -> accuracy

    @classmethod
    def dummy_input(cls) -> Any:
        raise NotImplementedError  # abstract: an example input

    @classmethod
    def compression_evaluator(cls, model: torch.nn.Module) -> Any:
        """An evaluator for the algorithms that train or calibrate (None: only one-shot pruners)."""
        return None

    @classmethod
    def finetune(cls, model: torch.nn.Module) -> None:
        """Fine-tune after compression (default: none)."""

    @classmethod
    def calculate_final_metric(cls, accuracy: float, flops_ratio: float) -> float:
        return accuracy - cls.flops_weight * flops_ratio


def _flops(model: torch.nn.Module, dummy: Any) -> int:
    from nniray.compression.utils import count_flops_params
    flops, _, _ = count_flops_params(model, dummy, verbose=False)
    return int(flops)


def run_auto_compression_trial(module_cls: type, params: Dict[str, Any]) -> Dict[str, Any]:
    """One trial: compress with the drawn algorithm and config, return the metric dict."""
    name, config_list = parse_params(params)
    algorithm, kind = load_algorithm(name)
    model = module_cls.model()
    dummy = module_cls.dummy_input()
    flops_before = _flops(model, dummy)
    evaluator = None
    if kind is not AlgorithmKind.ONE_SHOT_PRUNER:
        evaluator = module_cls.compression_evaluator(model)
        if evaluator is None:
            raise ValueError(f"algorithm {name!r} trains or calibrates: implement "
                             f"{module_cls.__name__}.compression_evaluator(model) returning a TorchEvaluator")
    if kind is AlgorithmKind.ONE_SHOT_PRUNER:
        compressor = algorithm(model, config_list)
        _, masks = compressor.compress()
    elif kind is AlgorithmKind.TRAINING_PRUNER:
        compressor = algorithm(model, config_list, evaluator, training_steps=10)
        _, masks = compressor.compress()
    else:
        compressor = algorithm(model, config_list, evaluator)
        compressor.compress(max_steps=None if kind is AlgorithmKind.POST_TRAINING_QUANTIZER else 20)
        masks = None
    if masks is not None:
        from nniray.compression.speedup import ModelSpeedup
        compressor.unwrap_model()
        ModelSpeedup(model, dummy, masks).speedup_model()
    module_cls.finetune(model)
    model.eval()
    accuracy = float(module_cls.evaluator()(model))
    if masks is None:
        compressor.unwrap_model()
    flops_ratio = _flops(model, dummy) / max(flops_before, 1)
    metric = float(module_cls.calculate_final_metric(accuracy, flops_ratio))
    return {"default": metric, "accuracy": accuracy, "flops_ratio": flops_ratio, "algorithm": name}


class AutoCompressionExperiment:
    """``AutoCompressionExperiment(module_cls, 'local')``: ``.config`` as for ``Experiment``, then ``run()``."""

    def __new__(cls, auto_compress_module: type, config_or_platform: Any = "local", id: Optional[str] = None):
        from nniray.experiment import Experiment
        if not (isinstance(auto_compress_module, type) and issubclass(auto_compress_module, AbstractAutoCompressionModule)):
            raise TypeError(f"AutoCompressionExperiment needs a subclass of AbstractAutoCompressionModule, got "
                            f"{auto_compress_module!r}")

        class _Experiment(Experiment):
            def start(self, *args: Any, **kwargs: Any) -> None:
                tuner = self.config.tuner
                name = getattr(tuner, "name", None) if tuner is not None else None
                if name not in SUPPORTED_TUNERS:
                    raise ValueError(f"auto-compression needs a tuner for nested search spaces: set "
                                     f"config.tuner.name to one of {list(SUPPORTED_TUNERS)} (got {name!r})")
                super().start(*args, **kwargs)

        _Experiment.__name__ = "AutoCompressionExperiment"
        trial = functools.partial(run_auto_compression_trial, auto_compress_module)
        return _Experiment(config_or_platform, trial_function=trial, id=id)
