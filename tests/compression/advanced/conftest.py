import os
import sys

# the tests import their small models and evaluator from adv_helpers.py next to this file
sys.path.insert(0, os.path.dirname(__file__))
