"""NNI's REST API for the daemon: the FastAPI app of :mod:`nniray.web`, served by uvicorn.

Kept as the daemon's import point (``HttpError``, ``PortInUse``, ``RestServer``); the routes live
in :mod:`nniray.web.nni_routes` (NNI's 27) and :mod:`nniray.web.ui_routes` (the UI's paged ones).
"""
from __future__ import annotations

from nniray.web.exceptions import HttpError, PortInUse
from nniray.web.server import RestServer

PREFIX = "/api/v1/nni"

__all__ = ["HttpError", "PortInUse", "RestServer", "PREFIX"]
