"""The FastAPI application: routers, error mapping, middleware, and the lifespan that wires components."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.errors import COMMON_RESPONSES, install_error_handlers
from service.middleware import BodyLimit, HttpMetrics
from service.routes import chat, ingest, memories, ops, pages, respond, stats, users
from service.settings import Settings, get_settings
from service.wiring import Components, build


def create_app(settings: Settings | None = None, components: Components | None = None) -> FastAPI:
    """With `components` given (tests), the app uses them and leaves closing them to the caller."""
    settings = settings or (components.settings if components else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = components is None
        app.state.components = components or await build(settings)
        await app.state.components.start()
        try:
            yield
        finally:
            if owned:
                await app.state.components.close()

    app = FastAPI(
        title="heedful",
        version="0.1.0",
        summary="Personalization memory for chat apps: remembers only what users' own words support.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (ingest.router, memories.router, users.router, respond.router, chat.router, stats.router):
        app.include_router(router, responses=COMMON_RESPONSES)
    app.include_router(ops.router)
    app.include_router(pages.router)  # HTML pages and their assets; not part of the API schema
    app.add_middleware(HttpMetrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
