"""Errors as NNI's ``{"error": message}`` bodies: 400 bad input, 401/403 refused, 404 unknown,
503 not ready, 500 a bug (logged with its traceback; the server outlives it)."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .exceptions import HttpError
from nniray.storage import QueryError

from .body import BodyError
from .files import FileRefused

log = logging.getLogger("nniray.web")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def _http_error(request: Request, e: HttpError) -> JSONResponse:
        return error(e.status, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 404:
            return error(404, f"no route {request.method} {request.url.path}; the REST API is under /api/v1/nni")
        if e.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}")
        return error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = []
        for err in e.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(BodyError)
    @app.exception_handler(QueryError)
    async def _bad_input(request: Request, e: ValueError) -> JSONResponse:
        return error(400, str(e))

    @app.exception_handler(FileRefused)
    async def _no_file(request: Request, e: FileRefused) -> JSONResponse:
        return error(404, str(e))

    @app.exception_handler(ValueError)
    async def _value(request: Request, e: ValueError) -> JSONResponse:
        return error(400, str(e))

    @app.exception_handler(LookupError)
    async def _lookup(request: Request, e: LookupError) -> JSONResponse:
        return error(404, str(e).strip("'\""))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error(500, f"{type(e).__name__}: {e}")
