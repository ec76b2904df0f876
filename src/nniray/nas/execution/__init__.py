"""Execution of NAS experiments on the runtime: the strategy as a tuner, the trial function."""
