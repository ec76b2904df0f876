import os
import sys

import pytest
import torch

# importlib import mode puts no test folder on sys.path; the shared helpers live next to this file.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
