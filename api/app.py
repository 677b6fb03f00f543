"""The FastAPI application: management REST API (/api/v1, OpenAPI at /openapi.json, Swagger UI
at /docs, ReDoc at /redoc), health, metrics and the operator console (/console), all served from
one :class:`~api.context.ApiContext`. Nothing is loaded from a CDN: operator networks are often
air-gapped, so the documentation UIs' assets come from the ``fastapi-offline`` package."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from api.auth import KeyStore
from api.context import ApiContext
from api.idempotency import KeyReused
from api.telemetry import HttpMetricsMiddleware, build_registry
from charging.admin import Conflict, NotFound
from openpcc import __version__

log = logging.getLogger("openpcc.api")
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
#: Swagger UI 5 and ReDoc 2 bundles (both render OpenAPI 3.1) shipped in fastapi-offline.
DOCS_ASSETS = ("fastapi_offline", "static")
DOCS_STATIC = "/docs/static"
# Matched in this order: the most frequent calls (balance lookups, top-ups) first.
ROUTES = (
    "accounts",
    "subscribers",
    "dashboard",
    "sessions",
    "peers",
    "cdrs",
    "tariffs",
    "audit",
    "health",
)


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="OpenPCC management API",
        version=__version__,
        description="Subscribers, balances, tariffs, live sessions, CDRs and Diameter peers. "
        "Every /api/v1 call needs `Authorization: Bearer <key>`; money is in minor units.",
        docs_url=None,
        redoc_url=None,
    )
    _serve_docs(app)
    app.state.ctx = ctx
    app.state.keys = KeyStore(ctx.engine, ctx.settings)
    registry, requests, latency = build_registry(ctx)
    app.state.registry = registry
    app.add_middleware(HttpMetricsMiddleware, requests=requests, latency=latency)
    for name in ROUTES:
        app.include_router(importlib.import_module(f"api.routes.{name}").router)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(KeyReused)
    async def key_reused(_: Request, exc: KeyReused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("event=api_conflict error=%s", str(exc.orig).splitlines()[0])
        return JSONResponse({"detail": "conflicts with stored data"}, status_code=409)

    @app.exception_handler(DataError)
    async def bad_value(_: Request, exc: DataError) -> JSONResponse:
        # e.g. a NUL character in a text value (PostgreSQL refuses it) or an id beyond 64 bits.
        reason = str(exc.orig).splitlines()[0]
        return JSONResponse({"detail": f"value not storable: {reason}"}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def database_down(_: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("event=api_database_error error=%s", str(exc.orig).splitlines()[0])
        return JSONResponse(
            {"detail": "database unavailable, retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    if ctx.settings.api_console:
        app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/console/")

    return app


def _serve_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from local assets under /docs/static."""
    app.mount(DOCS_STATIC, StaticFiles(packages=[DOCS_ASSETS]), name="docs-static")
    title = f"{app.title} {app.version}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
            oauth2_redirect_url=None,
            # No badge from the public validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
