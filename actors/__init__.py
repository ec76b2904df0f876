"""Ray actors that run an experiment: the controller, the algorithm hosts and the trial runners.

Importing this package does not import Ray; :mod:`nniray.actors.handles` does.
"""
