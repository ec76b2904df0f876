"""``nni.retiarii.experiment``."""
