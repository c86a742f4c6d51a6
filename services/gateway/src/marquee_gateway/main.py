"""The gateway: the one door for the web SPA."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
import redis.asyncio as redis_asyncio
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from marquee_gateway.api_docs import OpenApiAggregator, api_docs_router
from marquee_gateway.balancer import balancers_for
from marquee_gateway.edge import EdgeMiddleware, fail_open_revocation_check
from marquee_gateway.fanout import StreamHub
from marquee_gateway.proxy import proxy_router
from marquee_gateway.ratelimit import RateLimiter
from marquee_gateway.readiness import add_service_checks
from marquee_gateway.routes import DEFAULT_ROUTING, RoutingTable
from marquee_gateway.settings import GatewaySettings
from marquee_gateway.streams import StreamHandoffMiddleware, streams_router
from marquee_gateway.workers import add_worker_checks
from marquee_platform.app import create_service_app
from marquee_platform.service import ServiceSpec

CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "X-Request-ID",
    "Idempotent-Replayed",
    "Location",
]


def create_app(
    settings: GatewaySettings | None = None, *, routing: RoutingTable = DEFAULT_ROUTING
) -> FastAPI:
    """The gateway; ``routing`` says which service answers which path, for the proxy and
    for the merged OpenAPI document alike."""
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
        app.state.balancers = balancers = balancers_for(
            settings.service_urls,
            ejection_seconds=settings.upstream_ejection_seconds,
            max_ejection_seconds=settings.upstream_max_ejection_seconds,
        )
        await add_service_checks(app, client)
        app.state.openapi_aggregator = OpenApiAggregator(
            client=client,
            settings=settings,
            balancers=balancers,
            gateway_document=app.openapi,
            routing=routing,
        )

    async def open_edge(app: FastAPI, stack: AsyncExitStack) -> None:
        # Every request touches Redis here, so the pool waits for a free connection when
        # busy instead of failing at once (the default pool's behaviour at its limit).
        edge_redis = redis_asyncio.Redis(
            connection_pool=redis_asyncio.BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=settings.redis_pool_size,
                timeout=2.0,  # waiting for a free connection
                socket_connect_timeout=2.0,
                socket_timeout=5.0,
            )
        )
        stack.push_async_callback(edge_redis.aclose)
        app.state.edge_redis = edge_redis
        add_worker_checks(
            app,
            edge_redis,
            bootstrap=settings.kafka_bootstrap,
            consumer_groups=settings.expected_consumer_groups,
            relays=settings.expected_relays,
        )
        app.state.token_verifier.is_revoked = fail_open_revocation_check(edge_redis)
        app.state.rate_limiter = RateLimiter(edge_redis, settings)
        hub = StreamHub(
            settings.redis_url,
            subscribe_timeout=settings.stream_subscribe_timeout_seconds,
            send_timeout=settings.stream_send_timeout_seconds,
        )
        await hub.start()
        stack.push_async_callback(hub.stop)
        app.state.stream_hub = hub

    app = create_service_app(
        settings,
        title="Marquee gateway",
        description="The one door for the web SPA: routes /api/v1/<service>/... to each "
        "service (and a few public paths elsewhere, such as booking's /api/v1/orders), "
        "checks tokens and rate limits at the edge, streams real-time messages "
        "(/api/v1/stream) and serves the whole API's OpenAPI document (/api/openapi.json); "
        "/readyz reports every service (each replica), infrastructure piece, consumer "
        "group and outbox relay.",
        routers=[streams_router(), api_docs_router(), proxy_router(routing)],
        uses_database=False,
        uses_redis=True,
        uses_kafka=True,
        on_startup=[open_upstream_pool, open_edge],
    )
    # Innermost of the middleware, so a refusal at the edge still gets a request id, is
    # counted in the HTTP metrics and carries CORS headers (add_middleware would put it
    # outermost).
    app.user_middleware.append(Middleware(EdgeMiddleware))
    # Outside the rest: every answer, refusals included, must be readable by the SPA.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        allow_credentials=settings.cors_allow_credentials,
        max_age=settings.cors_max_age_seconds,
    )
    # Outermost of all: idle streams live on here, not inside the stack (see its docstring).
    app.add_middleware(StreamHandoffMiddleware)
    return app


SERVICE = ServiceSpec(
    name="gateway",
    settings_class=GatewaySettings,
    app_factory="marquee_gateway.main:create_app",
    dev_port=8000,
    migrations=None,
)
