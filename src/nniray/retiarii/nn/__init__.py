"""``nni.retiarii.nn``: see :mod:`nniray.retiarii.nn.pytorch`."""
