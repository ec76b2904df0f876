"""One real local Ray per session for the NAS experiment tests; private NNIRAY_HOME per test."""
import os
import sys
from pathlib import Path

import pytest

# test modules import nas_helpers (pytest runs in importlib mode)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def ray_session():
    import ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not ray.is_initialized():
        # address="local": always a fresh cluster of our own (another engineer's `ray start` cluster on this
        # machine would otherwise be joined)
        ray.init(address="local", num_cpus=4, namespace="nniray", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NNIRAY_HOME", str(tmp_path / "home"))
    return tmp_path
