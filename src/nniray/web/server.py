"""The web app served by uvicorn in a background thread of the daemon.

The port is bound at construction, so a busy port fails before anything else starts (with
the ``--port`` fix in the message).  Limits that keep one client from exhausting the server:
``limit_concurrency`` (connections and tasks; beyond it uvicorn answers 503), a deadline for
a new connection's request headers, an idle keep-alive timeout, h11's cap on header size, the body size and body time limits of the
security middleware, and a short graceful shutdown (open changes feeds are ended).
"""
from __future__ import annotations

import socket
import threading
from typing import Any, Sequence

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import create_app
from .exceptions import PortInUse
from .security import is_loopback

MAX_CONNECTIONS = 64
KEEP_ALIVE_S = 5
SHUTDOWN_S = 3
HEADER_TIMEOUT_S = 10.0


class _TimedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the first request's headers: a connection
    that opens and sends nothing (or dribbles its headers) is closed, so idle sockets cannot
    hold the connection slots for ever (uvicorn has no such timeout of its own)."""

    header_timeout = HEADER_TIMEOUT_S

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_expired)

    def _header_expired(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_deadline.cancel()
        super().connection_lost(exc)


class RestServer:
    """``RestServer(session, port, host="127.0.0.1", token=None)``; ``.start()``, ``.close()``,
    ``.url``, ``.port``.  Off loopback a token is required (one is generated if not given).
    ``readonly`` defaults to whether the session is a ``view``."""

    def __init__(self, session: Any, port: int, host: str = "127.0.0.1", token: str | None = None, *,
                 readonly: bool | None = None, allowed_origins: Sequence[str] = (),
                 allowed_hosts: Sequence[str] = (), body_timeout: float | None = None,
                 header_timeout: float = HEADER_TIMEOUT_S) -> None:
        if readonly is None:  # a view serves a stopped experiment: read-only
            readonly = getattr(session, "mode", None) == "view"
        if token is None and not is_loopback(host):
            from . import tokens
            token = tokens.generate()
        self.host = host
        self.token = token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as e:
            self._sock.close()
            raise PortInUse(f"port {port} is not available ({e.strerror or e}): another experiment or program "
                            f"uses it; stop it (`nniray stop --port {port}`) or choose another with --port") from None
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.app = create_app(session, readonly=readonly, token=token, allowed_origins=allowed_origins,
                              host=host, allowed_hosts=allowed_hosts, body_timeout=body_timeout)
        protocol = type("TimedH11", (_TimedH11,), {"header_timeout": header_timeout})
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", http=protocol,
                                limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_S,
                                timeout_graceful_shutdown=SHUTDOWN_S, server_header=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="nniray-rest", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.app.state.closing = True  # ends open changes feeds
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_S + 5)
        self._sock.close()
