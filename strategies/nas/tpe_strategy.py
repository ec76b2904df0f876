"""``TPEStrategy``: the project's TPE tuner (``strategies/tpe.py``) proposing architectures.

The space goes to TPE in NNI's JSON format (each label a ``choice`` of its candidates; an
InputChoice's candidates are its possible selections); one suggestion per free slot; each
finished model's metric is fed back, a failed one only ends its pending state.  NNI 2.x's
TPEStrategy took no arguments and minimized; here ``optimize_mode`` defaults to 'maximize', the
mode of the metrics NAS reports (accuracy).
"""
from __future__ import annotations

import itertools
import logging
from typing import Any

from nniray.strategies.tpe import TpeTuner

from ._space import finite_candidates, model_of, space_of
from .base import BaseStrategy, InvalidMutation, Model, ModelStatus, get_execution_engine, list_models, \
    submit_models

log = logging.getLogger("nniray.nas.strategy")


class TPEStrategy(BaseStrategy):
    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None, **tpe_args: Any) -> None:
        self.optimize_mode = optimize_mode
        self.tpe_args = dict(tpe_args)
        self.seed = seed
        self._tuner = TpeTuner(optimize_mode=optimize_mode, seed=seed, tpe_args=tpe_args or None)

    def run(self, base_model, applied_mutators) -> None:
        space = finite_candidates(space_of(base_model, applied_mutators), "TPEStrategy")
        # candidates by index: TPE sees ints, so any candidate value (lists, dicts) works
        self._tuner.update_search_space({k: {"_type": "choice", "_value": list(range(len(v)))} for k, v in space.items()})
        engine = get_execution_engine()
        ids = itertools.count()
        # resume: the models already evaluated teach TPE first
        history = []
        for m in list_models():
            if m.status == ModelStatus.Trained and m.metric is not None:
                try:
                    history.append({"parameter": {k: space[k].index(m.sample[k]) for k in space}, "value": m.metric})
                except (KeyError, ValueError):
                    continue
        if history:
            self._tuner.import_data(history)
        running: dict[int, tuple[Model, dict]] = {}
        while True:
            while engine.query_available_resources() > 0 and not engine.budget_exhausted():
                pid = next(ids)
                params = self._tuner.generate_parameters(pid)
                sample = {k: space[k][int(i)] for k, i in params.items()}
                try:
                    model = model_of(base_model, applied_mutators, sample).freeze()
                except InvalidMutation as e:
                    log.warning("invalid model skipped: %s", e)
                    self._tuner.trial_end(pid, False)
                    continue
                running[pid] = (model, params)
                submit_models(model)
                self._feed(running)
            if engine.budget_exhausted() and not running:
                return
            if running:
                engine.idle_wait()
            self._feed(running)
            if engine.budget_exhausted() and not any(m.status not in (ModelStatus.Trained, ModelStatus.Failed)
                                                     for m, _ in running.values()):
                return

    def _feed(self, running: dict) -> None:
        for pid, (model, params) in list(running.items()):
            if model.status == ModelStatus.Trained and model.metric is not None:
                self._tuner.receive_trial_result(pid, params, model.metric)
                self._tuner.trial_end(pid, True)
                del running[pid]
            elif model.status in (ModelStatus.Trained, ModelStatus.Failed):
                self._tuner.trial_end(pid, False)
                del running[pid]
