"""``nniray``: NNI's ``nnictl`` command line, and the per-experiment daemon that serves NNI's REST API.

Commands that only read (``trial ls``, ``experiment show/export``, ``log``…) read the experiment's
SQLite store and the registry directly, so they work on stopped experiments and never import
Ray.  Commands that change a running experiment go through its daemon's REST API.
"""
