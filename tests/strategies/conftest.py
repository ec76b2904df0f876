import os
import sys

# the helpers module sits next to the tests (pytest runs in importlib mode)
sys.path.insert(0, os.path.dirname(__file__))
