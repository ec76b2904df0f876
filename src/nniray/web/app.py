"""The experiment's web app: NNI's REST API, the UI's routes, the UI itself, behind one
security middleware (see :mod:`nniray.web.security`)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import nniray

from . import errors, nni_routes, ui_routes
from .security import Policy, SecurityMiddleware

STATIC = Path(__file__).parent / "static"
PREFIX = "/api/v1/nni"


def plotly_js() -> Path | None:
    """plotly.js as shipped inside the ``plotly`` Python package (no CDN)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def create_app(session: Any, *, readonly: bool = False, token: str | None = None,
               allowed_origins: Sequence[str] = (), host: str = "127.0.0.1",
               allowed_hosts: Sequence[str] = (), body_timeout: float | None = None) -> Any:
    """The ASGI app for one experiment ``session`` (the daemon's, or any object with the same
    methods: ``store``, ``exp_id``, ``exp_dir``, ``require_ready()``, ``check_status()``,
    ``profile()``, ``update()``, ``import_data()``, ``kill_trial()``, ``add_customized_trial()``,
    ``request_stop()``, ``daemon_info()``).  ``host`` is the bound address the ``Host`` header
    is checked against; ``token`` guards mutating routes (every route off loopback)."""
    app = FastAPI(title="nniray experiment", version=nniray.__version__, redirect_slashes=False,
                  description="NNI's REST API under /api/v1/nni (same paths and shapes as NNI 3.0's manager) "
                              "and the web UI's paged routes. Send the experiment's token as "
                              "`Authorization: Bearer <token>` (or `?token=`) on mutating routes.")
    app.state.session = session
    app.state.store = getattr(session, "store", None)
    app.state.closing = False
    errors.install(app)
    app.include_router(nni_routes.router, prefix=PREFIX)
    app.include_router(ui_routes.router, prefix=PREFIX)
    app.include_router(nni_routes.extra)
    if importlib.util.find_spec("nniray.web.analysis") is not None:
        from . import analysis
        app.include_router(analysis.router, prefix=PREFIX)
    _ui(app)
    exp_id = getattr(session, "exp_id", "")
    policy = Policy(host=host, token=token, readonly=readonly, allowed_origins=tuple(allowed_origins),
                    allowed_hosts=tuple(allowed_hosts),
                    **({} if body_timeout is None else {"body_timeout": body_timeout}),
                    readonly_message=f"experiment {exp_id} is opened with `view` (read-only); "
                                     f"`nniray resume {exp_id}` to change it")
    app.add_middleware(SecurityMiddleware, policy=policy)
    if allowed_origins:
        from fastapi.middleware.cors import CORSMiddleware
        app.add_middleware(CORSMiddleware, allow_origins=list(allowed_origins), allow_credentials=False,
                           allow_methods=["GET", "PUT", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    return app


def _ui(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> Any:
        page = STATIC / "index.html"
        if not page.is_file():
            return JSONResponse({"error": "the web UI is not installed (no static/index.html); the REST API is "
                                          f"under {PREFIX}"}, status_code=404)
        return FileResponse(page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @app.get("/experiments", include_in_schema=False)
    def experiments_page() -> Any:
        return index()

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> Any:
        path = plotly_js()
        if path is None:
            return JSONResponse({"error": "plotly is not installed: pip install plotly"}, status_code=404)
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
