"""CLI test fixtures: a private NNIRAY_HOME per test, daemons stopped at teardown."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cli_helpers import Cli  # noqa: E402


@pytest.fixture
def cli(tmp_path):
    c = Cli(tmp_path / "home", tmp_path)
    yield c
    c.stop_all()
