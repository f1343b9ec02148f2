"""The regulator console: server-rendered pages served by the API under ``/console``.

Regulators (and admins) see the manifests and alerts of their regions and work
alerts through their lifecycle; producers, haulers and disposal sites get
read-only views of their own records. ``/verify/{number}`` is the public
verification page a printed manifest's QR code opens. See ``docs/console.md``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Mount the console's pages and static files on ``app``."""
    # Imported here so that the pure modules (session, maps, charts) load without the web stack.
    from waste.console import alert_pages, pages, public_page, web

    app.include_router(pages.router)
    app.include_router(alert_pages.router)
    app.include_router(public_page.router)
    app.mount(
        f"{web.PREFIX}/static",
        StaticFiles(packages=[("waste.console", "static")]),
        name="console-static",
    )
