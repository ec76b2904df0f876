"""A small client of a daemon's REST API (``http://127.0.0.1:<port>/api/v1/nni/...``), stdlib only."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from nniray.web import tokens

from .errors import CliError

PREFIX = "/api/v1/nni"
TIMEOUT = 20.0  # as NNI's REST_TIME_OUT


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def request(port: int, method: str, path: str, body: Any = None, timeout: float = TIMEOUT,
            prefix: str = PREFIX) -> Any:
    """One call; the decoded JSON reply (None for an empty one).  A refused connection or an
    error reply becomes a :class:`CliError` carrying the server's own message."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    token = tokens.for_port(port)  # the experiment's token, stored next to it by its daemon
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base_url(port) + prefix + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read().decode()).get("error") or str(e)
        except Exception:
            msg = str(e)
        raise CliError(msg) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"the experiment's REST server on port {port} does not answer ({reason})") from None
    return json.loads(text) if text.strip() else None


def get(port: int, path: str, **kw: Any) -> Any:
    return request(port, "GET", path, **kw)


def put(port: int, path: str, body: Any, **kw: Any) -> Any:
    return request(port, "PUT", path, body, **kw)


def post(port: int, path: str, body: Any, **kw: Any) -> Any:
    return request(port, "POST", path, body, **kw)


def delete(port: int, path: str, **kw: Any) -> Any:
    return request(port, "DELETE", path, **kw)
