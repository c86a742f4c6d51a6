"""The gateway: the one door for the web SPA."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from fastapi import FastAPI

from marquee_gateway.proxy import proxy_router
from marquee_gateway.readiness import add_service_checks
from marquee_gateway.settings import GatewaySettings
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    async def open_upstream_pool(app: FastAPI, stack: AsyncExitStack) -> None:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.upstream_timeout_seconds,
                connect=settings.upstream_connect_timeout_seconds,
            ),
            limits=httpx.Limits(
                max_connections=settings.upstream_pool_size,
                max_keepalive_connections=settings.upstream_pool_size,
            ),
            follow_redirects=False,
        )
        stack.push_async_callback(client.aclose)
        app.state.upstream = client
        await add_service_checks(app, client)

    return create_service_app(
        settings,
        title="Marquee gateway",
        description="The one door for the web SPA: routes /api/v1/<service>/... to each "
        "service; /readyz reports every service and infrastructure piece.",
        routers=[proxy_router()],
        uses_database=False,
        uses_redis=True,
        uses_kafka=True,
        on_startup=[open_upstream_pool],
    )


SERVICE = ServiceSpec(
    name="gateway",
    settings_class=GatewaySettings,
    app_factory="marquee_gateway.main:create_app",
    dev_port=8000,
    migrations=None,
)
