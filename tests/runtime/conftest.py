"""Shared fixtures for runtime tests: one real local Ray for the whole session (starting Ray
costs ~7 s), a private NNIRAY_HOME and experiment directory per test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# Test modules import runtime_helpers (pytest runs in importlib mode).
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def ray_session():
    import ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        # address="local": a fresh cluster of our own, never one that another process on this
        # machine started (a bare ray.init() joins whatever /tmp/ray/ray_current_cluster names).
        ray.init(address="local", num_cpus=4, namespace="nniray", include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield ray


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NNIRAY_HOME", str(tmp_path / "home"))
    return tmp_path


