"""A compression job (pruning, quantization or distillation with its evaluator) on a Ray worker.

The driver sends a ``build`` function (pickled by Ray) that creates the compressor -- model,
config_list and evaluator included -- on the worker, so the driver stays light::

    handle = submit_compression_job(build, max_steps=200, num_cpus=2, num_gpus=1,
                                    checkpoint_dir="/shared/ckpt", checkpoint_every=50)
    handle.progress()          # JobProgress(state=RUNNING, steps=120, ...)
    result = handle.result()   # CompressionResult(model, masks, calibration_config, metric, ...)

The worker calls ``compressor.compress(max_steps, max_epochs)``, counts optimizer steps (progress)
and writes a checkpoint every ``checkpoint_every`` steps and at the end: ``{'state_dict' (float
parameter names, masks and wrappers left out), 'masks', 'calibration_config', 'steps'}``.
``resume_from`` loads such a checkpoint's weights into the built model before compressing.  The
result holds the unwrapped model, the masks of every pruner and the calibration config of every
quantizer in the compressor's ``from_compressor`` chain, and ``evaluator.evaluate()`` of the
compressed (still simulated) model when the evaluator has an evaluating function.

:class:`CompressionJobRunner` is the plain-Python part (no Ray); :func:`submit_compression_job`
runs it in a Ray actor with the requested resources.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import traceback
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

__all__ = ["JobState", "JobProgress", "CompressionResult", "CompressionJobRunner", "CompressionJobHandle",
           "submit_compression_job", "float_state_dict"]


class JobState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclasses.dataclass
class JobProgress:
    state: JobState
    steps: int
    checkpoint: Optional[str] = None
    metric: Optional[float] = None
    error: Optional[str] = None


@dataclasses.dataclass
class CompressionResult:
    model: Any
    masks: Optional[Dict[str, Dict[str, Any]]]
    calibration_config: Optional[Dict[str, Dict[str, Any]]]
    metric: Optional[float]
    steps: int
    checkpoint: Optional[str]


def float_state_dict(model: Any) -> Dict[str, Any]:
    """The model's parameters under their original names, whether or not it is wrapped."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("_mask"):
            continue
        if key.endswith("_orig"):
            key = key[: -len("_orig")]
        out[key.replace(".fused.", ".")] = value.detach().cpu().clone()
    return out


def _chain(compressor: Any) -> List[Any]:
    return list(getattr(compressor, "_fused_chain", [])) + [compressor]


class CompressionJobRunner:
    """Runs one compression job in this process (the actor's body)."""

    def __init__(self, build: Callable[[], Any], checkpoint_dir: Optional[str] = None,
                 checkpoint_every: Optional[int] = None, resume_from: Optional[str] = None):
        if not callable(build):
            raise TypeError(f"build must be a function returning a compressor (e.g. lambda: L1NormPruner(model, "
                            f"config_list, evaluator)), got {type(build).__name__}")
        if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                             or checkpoint_every < 1):
            raise ValueError(f"checkpoint_every must be a positive int, got {checkpoint_every!r}")
        if checkpoint_every is not None and checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir (where to write the checkpoints)")
        self.build = build
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume_from = resume_from
        self._lock = threading.Lock()
        self._progress = JobProgress(JobState.PENDING, 0)
        self._compressor: Any = None

    # ---- progress ------------------------------------------------------------------------------
    def progress(self) -> JobProgress:
        with self._lock:
            return dataclasses.replace(self._progress)

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._progress = dataclasses.replace(self._progress, **changes)

    def _on_step(self) -> None:
        steps = self._progress.steps + 1
        self._update(steps=steps)
        if self.checkpoint_every and steps % self.checkpoint_every == 0:
            self._update(checkpoint=self._save(f"step{steps}"))

    # ---- checkpoints ---------------------------------------------------------------------------
    def _masks(self) -> Optional[Dict[str, Any]]:
        masks: Dict[str, Any] = {}
        for c in _chain(self._compressor):
            if hasattr(c, "get_masks"):
                masks.update(c.get_masks())
        return masks or None

    def _calibration(self) -> Optional[Dict[str, Any]]:
        calib: Dict[str, Any] = {}
        for c in _chain(self._compressor):
            if hasattr(c, "get_calibration_config"):
                calib.update(c.get_calibration_config())
        return calib or None

    def _save(self, tag: str) -> Optional[str]:
        if self.checkpoint_dir is None:
            return None
        import torch
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        path = os.path.join(self.checkpoint_dir, f"compression_{tag}.pth")
        tmp = path + ".tmp"
        torch.save({"state_dict": float_state_dict(self._compressor.bound_model), "masks": self._masks(),
                    "calibration_config": self._calibration(), "steps": self._progress.steps}, tmp)
        os.replace(tmp, path)  # a reader never sees a half-written checkpoint
        return path

    def _resume(self) -> None:
        import torch
        ckpt = torch.load(self.resume_from, map_location="cpu", weights_only=False)
        compressor = self._compressor
        compressor.unwrap_model()
        missing, unexpected = compressor.bound_model.load_state_dict(ckpt["state_dict"], strict=False)
        if unexpected:
            raise ValueError(f"resume_from {self.resume_from}: keys {unexpected[:5]} are not in the built model")
        compressor.wrap_model()
        self._update(steps=int(ckpt.get("steps", 0)))

    # ---- run -----------------------------------------------------------------------------------
    def run(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> CompressionResult:
        self._update(state=JobState.RUNNING)
        try:
            compressor = self._compressor = self.build()
            if not hasattr(compressor, "compress") or not hasattr(compressor, "bound_model"):
                raise TypeError(f"build() must return a compressor (pruner, quantizer or distiller), got "
                                f"{type(compressor).__name__}")
            if self.resume_from:
                self._resume()
            evaluator = compressor.evaluator
            if evaluator is not None:
                evaluator.patch_optimizer_step([], [self._on_step])
            compressor.compress(max_steps, max_epochs)
            masks, calib = self._masks(), self._calibration()
            metric = self._evaluate(compressor)
            checkpoint = self._save("final")
            compressor.unwrap_model()
            self._update(state=JobState.SUCCEEDED, metric=metric, checkpoint=checkpoint or self._progress.checkpoint)
            return CompressionResult(compressor.bound_model, masks, calib, metric, self._progress.steps,
                                     self._progress.checkpoint)
        except BaseException as exc:
            self._update(state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            raise

    @staticmethod
    def _evaluate(compressor: Any) -> Optional[float]:
        evaluator = compressor.evaluator
        if evaluator is None or (hasattr(evaluator, "missing_parts") and evaluator.missing_parts(["evaluating_func"])):
            return None
        evaluator.bind_model(compressor.bound_model)
        try:
            value = evaluator.evaluate()
        finally:
            evaluator.unbind_model()
        return value[0] if isinstance(value, tuple) else value


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------

class CompressionJobHandle:
    """The driver's view of a running job."""

    def __init__(self, actor: Any, future: Any):
        self.actor = actor
        self.future = future

    def progress(self) -> JobProgress:
        import ray
        return ray.get(self.actor.progress.remote())

    def result(self, timeout: Optional[float] = None) -> CompressionResult:
        """The result (raises the job's error; ``TimeoutError`` after ``timeout`` seconds)."""
        import ray
        try:
            return ray.get(self.future, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"the compression job did not finish within {timeout} s; its progress: "
                               f"{self.progress()}") from None
        except ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None

    def cancel(self) -> None:
        import ray
        ray.kill(self.actor)


def _check_feasible(num_cpus: float, num_gpus: float, resources: Dict[str, float]) -> None:
    import ray
    total = ray.cluster_resources()
    wanted = {"CPU": num_cpus, "GPU": num_gpus, **resources}
    short = {k: v for k, v in wanted.items() if v and total.get(k, 0) < v}
    if short:
        raise ValueError(f"the compression job asks for {short}, but the Ray cluster has "
                         f"{ {k: total.get(k, 0) for k in short} } in total; lower the request or add nodes with "
                         f"those resources")


def submit_compression_job(build: Callable[[], Any], *, max_steps: Optional[int] = None,
                           max_epochs: Optional[int] = None, num_cpus: float = 1, num_gpus: float = 0,
                           resources: Optional[Dict[str, float]] = None, checkpoint_dir: Optional[str] = None,
                           checkpoint_every: Optional[int] = None,
                           resume_from: Optional[str] = None) -> CompressionJobHandle:
    """Start ``build()``'s compressor in a Ray actor with the given resources (``ray.init`` first)."""
    import ray
    if not ray.is_initialized():
        raise RuntimeError("submit_compression_job needs a Ray connection: call ray.init(...) first")
    resources = dict(resources or {})
    _check_feasible(num_cpus, num_gpus, resources)
    # validate the arguments on the driver, where the error is readable
    CompressionJobRunner(build, checkpoint_dir, checkpoint_every, resume_from)
    # max_concurrency=2: progress() answers while run() trains
    actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, resources=resources or None,
                           max_concurrency=2)(CompressionJobRunner)
    actor = actor_cls.remote(build, checkpoint_dir, checkpoint_every, resume_from)
    return CompressionJobHandle(actor, actor.run.remote(max_steps, max_epochs))
