"""Who may call the server, and with what: one ASGI middleware in front of every route.

- ``Host`` must name the address the server is bound to (loopback names for a loopback bind):
  a DNS-rebinding page reaches the port under its own host name and is refused.
- A cross-origin request (an ``Origin`` that is not this server and not in the explicit
  allow-list) is refused; there is no wildcard CORS.
- The experiment's token (``Authorization: Bearer`` or ``?token=``) is required for every
  mutating route, and for every route when the server is bound off loopback.
- A read-only server (``nniray view``) refuses mutating routes (403), except stopping itself.
- Bodies are limited in size (413) and must arrive in time (408); slow headers, idle
  connections and the number of connections are bounded by uvicorn's settings (``server.py``).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

MUTATING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
MAX_BODY = 1 << 20  # 1 MiB: the largest body a route needs is an import of a few thousand results
BODY_TIMEOUT = 10.0  # seconds for the whole body to arrive once the headers are in
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Mutating routes a read-only server still serves: stopping the viewer itself.
READONLY_ALLOWED = frozenset({("DELETE", "/api/v1/nni/experiment")})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Policy:
    host: str  # the bound address
    token: str | None = None
    readonly: bool = False
    readonly_message: str = "this server is read-only"
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # extra Host names (e.g. the machine's DNS name)
    max_body: int = MAX_BODY
    body_timeout: float = BODY_TIMEOUT
    _hosts: frozenset = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        names = {self.host.strip("[]").lower(), *(h.lower() for h in self.allowed_hosts)}
        if is_loopback(self.host):
            names |= LOOPBACK_NAMES
        object.__setattr__(self, "_hosts", frozenset(names))

    @property
    def token_for_reads(self) -> bool:
        """Off loopback every route needs the token (anyone on the network can reach it)."""
        return not is_loopback(self.host)

    def host_allowed(self, host_header: str) -> bool:
        if is_wildcard(self.host):
            return True  # any address of the machine; the token guards every route then
        name = _host_name(host_header)
        return name is not None and name.lower() in self._hosts


def _host_name(host_header: str) -> str | None:
    """``example:8080`` → ``example``; ``[::1]:8080`` → ``::1``."""
    if not host_header:
        return None
    if host_header.startswith("["):
        end = host_header.find("]")
        return host_header[1:end] if end > 0 else None
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class BodyTooLarge(Exception):
    """A request body over the size limit (answered 413)."""


class BodyTimeout(Exception):
    """A request body that did not arrive within the body timeout (answered 408)."""


ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        p = self.policy
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        host = headers.get("host", "")
        if not p.host_allowed(host):
            return await _refuse(send, 403, f"Host {host!r} is not this server's address; open it as "
                                            f"http://{p.host}:<port>/ (DNS rebinding is refused)")
        origin = headers.get("origin")
        if origin is not None and origin != "null" and not _same_origin(origin, host, scope) \
                and origin not in p.allowed_origins:
            return await _refuse(send, 403, f"cross-origin requests from {origin} are refused; start the "
                                            f"server with that origin in its allow-list to permit it")
        mutating = method in MUTATING
        if p.readonly and mutating and (method, path.rstrip("/")) not in READONLY_ALLOWED:
            return await _refuse(send, 403, p.readonly_message)
        if p.token is not None and (mutating or p.token_for_reads):
            given = _bearer(headers.get("authorization", "")) or _query_token(scope)
            if given is None or not hmac.compare_digest(given.encode(), p.token.encode()):
                what = "a wrong token" if given is not None else "no token"
                return await _refuse(send, 401, f"this route needs the experiment's token ({what} given): send "
                                                f"'Authorization: Bearer <token>' or ?token=<token>; the token "
                                                f"is printed with the URL and stored in the experiment directory")
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return await _refuse(send, 400, "Content-Length must be a number of bytes")
            if int(length) > p.max_body:
                return await _refuse(send, 413, f"the request body is {length} bytes; the limit is {p.max_body}")
        if not mutating:
            return await self.app(scope, receive, send)
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            try:
                msg = await asyncio.wait_for(receive(), p.body_timeout)
            except asyncio.TimeoutError:
                raise BodyTimeout() from None
            if msg.get("type") == "http.request":
                received += len(msg.get("body", b""))
                if received > p.max_body:
                    raise BodyTooLarge()
            return msg

        async def tracked_send(msg: dict) -> None:
            nonlocal started
            if msg.get("type") == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, 413, f"the request body is larger than the limit of {p.max_body} bytes")
        except BodyTimeout:
            if not started:
                await _refuse(send, 408, f"the request body did not arrive within {p.body_timeout:g} s")


def _same_origin(origin: str, host: str, scope: dict) -> bool:
    u = urllib.parse.urlsplit(origin)
    return bool(u.netloc) and u.netloc.lower() == host.lower() and u.scheme == scope.get("scheme", "http")


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _query_token(scope: dict) -> str | None:
    qs = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    vals = qs.get("token")
    return vals[0] if vals else None


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
