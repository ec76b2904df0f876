"""Sensitivity analysis fanned out over a Ray cluster: one task per (layer, sparsity).

``fan_out_sensitivity(analysis, ...)`` fills ``analysis.sensitivities`` (and ``ori_metric``) with
the same values :meth:`SensitivityAnalysis.analysis` computes in one process, so
``analysis.export(path)`` writes the same CSV: every task starts from the analysis' original
weights, prunes one layer to one sparsity and calls ``val_func``; rows are then cut where the
sequential run would have stopped early (the metric that triggers the stop is kept, as there).
The model and ``val_func`` travel to the workers once (``ray.put``); ``val_func`` must not depend
on state the sequential run would change between calls.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["fan_out_sensitivity"]


def _one(analysis: Any, name: str, sparsity: float, val_args: List[Any], val_kwargs: Dict[str, Any]) -> float:
    """Body of one task: the pruned metric of ``name`` at ``sparsity`` (as in the sequential loop)."""
    real = (1.0 - analysis.already_pruned[name]) * sparsity + analysis.already_pruned[name]
    analysis._load(analysis.ori_state_dict)
    analysis._prune_layer(name, real)
    return analysis.val_func(*val_args, **val_kwargs)


def fan_out_sensitivity(analysis: Any, val_args: Optional[Sequence[Any]] = None,
                        val_kwargs: Optional[Dict[str, Any]] = None, specified_layers: Optional[Sequence[str]] = None,
                        num_cpus: float = 1, num_gpus: float = 0) -> Dict[str, Dict[float, Any]]:
    """Run ``analysis`` (a :class:`~nniray.compression.utils.SensitivityAnalysis`) on the cluster."""
    import ray
    if not ray.is_initialized():
        raise RuntimeError("fan_out_sensitivity needs a Ray connection: call ray.init(...) first")
    val_args = list(val_args or [])
    val_kwargs = dict(val_kwargs or {})
    if specified_layers is not None:
        unknown = [n for n in specified_layers if n not in analysis.target_layer]
        if unknown:
            raise ValueError(f"specified_layers has {unknown}, which are not Conv1d/Conv2d layers of the model; "
                             f"analysable layers: {list(analysis.target_layer)}")
    names = [n for n in analysis.target_layer if specified_layers is None or n in specified_layers]
    analysis._load(analysis.ori_state_dict)
    analysis.ori_metric = analysis.val_func(*val_args, **val_kwargs)
    shipped = ray.put(copy.deepcopy(analysis))
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_one)
    futures = {(n, s): task.remote(shipped, n, s, val_args, val_kwargs) for n in names for s in analysis.sparsities}
    values = dict(zip(futures, ray.get(list(futures.values()))))
    for name in names:
        row: Dict[float, Any] = {}
        for s in analysis.sparsities:
            row[s] = values[(name, s)]
            if analysis._need_to_stop(analysis.ori_metric, row[s]):
                break
        analysis.sensitivities[name] = row
    return analysis.sensitivities
