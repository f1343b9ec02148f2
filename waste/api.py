"""The HTTP application: ``create_app(settings)`` wires routers, errors and resources."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from waste import __version__, problems
from waste.alerts.router import router as alerts_router
from waste.alerts.thresholds import ThresholdBook
from waste.alerts.thresholds import configure as configure_alert_thresholds
from waste.auth.router import router as auth_router
from waste.config import Settings
from waste.console import install as install_console
from waste.db import make_engine, make_session_factory
from waste.ledger.router import router as log_router
from waste.ledger.service import CheckpointPublisher, load_or_create_log_key
from waste.manifests.query_router import public_router as public_manifests_router
from waste.manifests.query_router import router as manifest_queries_router
from waste.manifests.router import router as manifests_router
from waste.migrate import ensure_schema
from waste.registry.router import router as registry_router
from waste.webhooks.router import router as webhooks_router
from waste.webhooks.worker import WebhookWorker

DESCRIPTION = """
Chain of custody for solid and hazardous waste.

Producers file transfer manifests; every custody event is signed by the
parties' Ed25519 keys, hash-chained per manifest and appended to a Merkle
transparency log. Errors are RFC 9457 problem details; authenticate with
`Authorization: Bearer <token>`. The wire contract is PROTOCOL.md (v1).
"""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    on_startup: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    """Build the API; the engine is made (and migrated) when the app starts, not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        own_engine = engine is None
        db = engine or make_engine(settings.resolved_database_url)
        ensure_schema(db, auto_migrate=settings.auto_migrate)
        configure_alert_thresholds(ThresholdBook.parse(settings.alert_thresholds))
        app.state.engine = db
        app.state.session_factory = make_session_factory(db)
        app.state.log_key = load_or_create_log_key(
            settings.resolved_log_key_path, settings.log_origin
        )
        publisher = CheckpointPublisher(
            app.state.session_factory, app.state.log_key, settings.checkpoint_interval_s
        )
        if on_startup is not None:
            on_startup(app)
        webhooks = app.state.webhooks = WebhookWorker(  # on_startup may set webhook_transport
            app.state.session_factory, transport=getattr(app.state, "webhook_transport", None)
        )
        publisher.start()
        webhooks.start()
        try:
            yield
        finally:
            webhooks.stop()
            publisher.stop()
            if own_engine:
                db.dispose()

    app = FastAPI(
        title="Waste custody API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    app.include_router(auth_router)
    app.include_router(registry_router)
    app.include_router(manifests_router)
    app.include_router(manifest_queries_router)
    app.include_router(public_manifests_router)
    app.include_router(webhooks_router)
    app.include_router(log_router)
    app.include_router(alerts_router)
    install_console(app)
    _add_health(app)
    return app


def app_from_env() -> FastAPI:
    """The API from ``WASTE_*`` settings read now: uvicorn's factory in each worker process
    of ``waste serve --workers N``."""
    return create_app(Settings())


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """Readiness: the database answers."""
        try:
            with app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return problems.problem_response(
                {
                    "type": "https://waste-custody.org/problems/unavailable",
                    "title": "Service unavailable",
                    "status": 503,
                    "detail": "the database does not answer",
                },
                {"Retry-After": "5"},
            )
        return JSONResponse({"status": "ready"})
