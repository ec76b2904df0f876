"""Compression jobs: the runner in-process (no Ray), then as a Ray actor on a real local cluster."""
from __future__ import annotations

import os
import sys

import pytest
import torch

from nniray.actors.compression_job import (CompressionJobRunner, JobState, float_state_dict,
                                           submit_compression_job)
from nniray.compression import TorchEvaluator
from nniray.trace import trace  # (not `import nniray`: the package object cannot be pickled by value)

X = torch.randn(128, 6)
Y = (X[:, 0] > 0).long()


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def _evaluator(model):
    def training_func(model, optimizers, training_step, lr_schedulers, max_steps, max_epochs):
        for _ in range(max_steps or 10):
            loss = training_step((X, Y), model)
            optimizers.zero_grad()
            loss.backward()
            optimizers.step()

    def training_step(batch, model):
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    def evaluating_func(model):
        with torch.no_grad():
            return (model(X).argmax(1) == Y).float().mean().item()

    return TorchEvaluator(training_func, trace(torch.optim.Adam)(model.parameters(), lr=1e-2), training_step,
                          evaluating_func=evaluating_func)


def build_qat():
    from nniray.compression.quantization import QATQuantizer
    model = _model()
    return QATQuantizer(model, [{"op_types": ["Linear"], "target_names": ["_input_", "weight"]}], _evaluator(model))


def build_prune_then_qat():
    from nniray.compression.pruning import L1NormPruner
    from nniray.compression.quantization import QATQuantizer
    model = _model()
    pruner = L1NormPruner(model, [{"op_names": ["0"], "sparse_ratio": 0.5}], _evaluator(model))
    return QATQuantizer.from_compressor(pruner, [{"op_names": ["2"], "target_names": ["_input_", "weight"]}])


def build_not_a_compressor():
    return _model()


def test_runner_returns_model_calibration_and_checkpoints(tmp_path):
    runner = CompressionJobRunner(build_prune_then_qat, checkpoint_dir=str(tmp_path), checkpoint_every=4)
    result = runner.run(max_steps=10)
    assert result.steps == 10 and runner.progress().state is JobState.SUCCEEDED
    assert result.masks["0"]["weight"].flatten(1).any(1).sum().item() == 8
    assert set(result.calibration_config) == {"2"}
    assert 0.5 <= result.metric <= 1.0
    assert not hasattr(result.model[0], "_nniray_wrapper")  # returned unwrapped
    names = sorted(os.listdir(tmp_path))
    assert names == ["compression_final.pth", "compression_step4.pth", "compression_step8.pth"]
    ckpt = torch.load(tmp_path / "compression_step8.pth", weights_only=False)
    assert ckpt["steps"] == 8 and set(ckpt["state_dict"]) == set(_model().state_dict())
    # resume: the built model starts from the checkpoint's weights
    resumed = CompressionJobRunner(build_qat, resume_from=str(tmp_path / "compression_final.pth"))
    res2 = resumed.run(max_steps=1)
    assert res2.steps == 11


def test_runner_errors_are_clear():
    with pytest.raises(ValueError, match="checkpoint_dir"):
        CompressionJobRunner(build_qat, checkpoint_every=5)
    runner = CompressionJobRunner(build_not_a_compressor)
    with pytest.raises(TypeError, match="must return a compressor"):
        runner.run()
    assert runner.progress().state is JobState.FAILED and "TypeError" in runner.progress().error


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # the build functions live in this test module, which Ray's workers cannot import: ship them by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # address="local": a fresh cluster of our own, never another engineer's running one
    ray.init(address="local", num_cpus=2, resources={"compressor": 1}, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow  # a Ray start plus two actor starts that import torch: ~60-80 s on the shared machine
def test_job_runs_as_a_ray_actor_with_its_resources(ray_cluster, tmp_path):
    handle = submit_compression_job(build_prune_then_qat, max_steps=12, num_cpus=1, resources={"compressor": 1},
                                    checkpoint_dir=str(tmp_path), checkpoint_every=6)
    seen = [handle.progress()]
    result = handle.result(timeout=120)
    seen.append(handle.progress())
    assert seen[-1].state is JobState.SUCCEEDED and seen[-1].steps == 12
    assert all(a.steps <= b.steps for a, b in zip(seen, seen[1:]))
    assert result.masks["0"]["weight"].flatten(1).any(1).sum().item() == 8
    assert result.calibration_config["2"]["weight"]["scale"] is not None
    assert isinstance(result.model, torch.nn.Sequential)
    assert os.path.exists(result.checkpoint) and "final" in result.checkpoint
    assert float_state_dict(result.model).keys() == _model().state_dict().keys()
    handle.cancel()


@pytest.mark.slow
def test_infeasible_request_and_job_errors_reach_the_driver(ray_cluster):
    with pytest.raises(ValueError, match="GPU"):
        submit_compression_job(build_qat, num_gpus=1)
    handle = submit_compression_job(build_not_a_compressor)
    with pytest.raises(TypeError, match="must return a compressor"):
        handle.result(timeout=120)
    assert handle.progress().state is JobState.FAILED
    handle.cancel()
