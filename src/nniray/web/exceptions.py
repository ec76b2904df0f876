"""The server's own exceptions (stdlib only: the daemon's session raises them without FastAPI)."""
from __future__ import annotations


class HttpError(Exception):
    """Answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PortInUse(OSError):
    """The port cannot be bound; the message names it and the ``--port`` fix."""
