"""The search service: app factory and its description for ``marquee``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI

from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec
from marquee_search import api
from marquee_search.engines import create_engine, uses_postgres
from marquee_search.settings import SearchSettings


def create_app(settings: SearchSettings | None = None) -> FastAPI:
    settings = settings or SearchSettings()

    async def start_search_engine(app: FastAPI, stack: AsyncExitStack) -> None:
        engine = create_engine(settings, database=app.state.database)
        stack.push_async_callback(engine.close)
        app.state.search_engine = engine
        if not uses_postgres(settings):
            app.state.readiness.add("search", engine.ping)

    return create_service_app(
        settings,
        title="Marquee search",
        description="The search index of events, rebuilt from the events change stream. "
        "Searching and suggestions are public.",
        routers=[api.search],
        on_startup=[start_search_engine],
    )


SERVICE = ServiceSpec(
    name="search",
    settings_class=SearchSettings,
    app_factory="marquee_search.main:create_app",
    dev_port=8003,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_search.consumers:create_consumer",
)
