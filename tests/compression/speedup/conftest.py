import os
import sys

import torch

# One thread: on the shared 2-core machine two threads are many times slower for small models.
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))  # for `from models import ...`
