"""The app factory every service uses: logging, tracing, errors, health, metrics, OpenAPI.

A service passes its settings, routers and readiness checks; the lifespan owns the
database engines and clients and closes them on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as redis_asyncio
from fastapi import APIRouter, Depends, FastAPI

from marquee_platform.db import Database
from marquee_platform.health import (
    Readiness,
    database_check,
    health_router,
    kafka_check,
    redis_check,
)
from marquee_platform.idempotency import install_idempotency
from marquee_platform.logging import configure_logging
from marquee_platform.maintenance import pruning_task
from marquee_platform.metrics import PrometheusMiddleware, metrics_router
from marquee_platform.middleware import RequestContextMiddleware
from marquee_platform.periodic import PeriodicTask
from marquee_platform.problems import UnexpectedErrorMiddleware, install_problem_handlers
from marquee_platform.security import create_token_verifier
from marquee_platform.settings import ServiceSettings
from marquee_platform.storable_input import refuse_unstorable_input
from marquee_platform.tracing import configure_tracing

Startup = Callable[[FastAPI, AsyncExitStack], Awaitable[None]]
PeriodicTaskFactory = Callable[[FastAPI], PeriodicTask]
"""Builds a periodic task from the started app (its state holds the database, clients)."""


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    uses_database: bool = True,
    uses_redis: bool = False,
    uses_kafka: bool = True,
    on_startup: Sequence[Startup] = (),
    periodic_tasks: Sequence[PeriodicTaskFactory] = (),
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's FastAPI app.

    ``app.state.database`` (and ``app.state.redis`` when asked for) are created in the
    lifespan, not at import time, so tests build apps against their own databases.
    ``periodic_tasks`` start after every ``on_startup`` and stop first at shutdown; a
    service with a database also prunes the platform tables (one replica at a time).
    """
    service = settings.service_name
    configure_logging(service, level=settings.log_level, json=settings.log_json)
    configure_tracing(service, otlp_endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        readiness = Readiness()
        app.state.readiness = readiness
        app.state.settings = settings
        async with AsyncExitStack() as stack:
            if uses_database:
                database = Database(
                    settings.database_url,
                    read_url=settings.read_database_url,
                    pool_size=settings.database_pool_size,
                    application_name=f"marquee-{service}",
                )
                stack.push_async_callback(database.dispose)
                app.state.database = database
                readiness.add("database", database_check(database.write_engine))
                pruning = pruning_task(
                    database,
                    every_seconds=settings.maintenance_interval_seconds,
                    idempotency_key_ttl_hours=settings.idempotency_key_ttl_hours,
                    inbox_retention_days=settings.inbox_retention_days,
                )
                stack.push_async_callback(pruning.start().stop)
            if uses_redis:
                # A blocking pool waits for a free connection under a burst instead of
                # failing with MaxConnectionsError as the default pool does.
                pool = redis_asyncio.BlockingConnectionPool.from_url(
                    settings.redis_url, max_connections=settings.redis_pool_size, timeout=5
                )
                client = redis_asyncio.Redis(connection_pool=pool)
                stack.push_async_callback(pool.disconnect)
                stack.push_async_callback(client.aclose)
                app.state.redis = client
                readiness.add("redis", redis_check(client))
            if uses_kafka:
                readiness.add("kafka", kafka_check(settings.kafka_bootstrap))
            jwks_client = httpx.AsyncClient()
            stack.push_async_callback(jwks_client.aclose)
            app.state.token_verifier = create_token_verifier(
                jwks_url=settings.jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                client=jwks_client,
            )
            for startup in on_startup:
                await startup(app, stack)
            for make_task in periodic_tasks:
                stack.push_async_callback(make_task(app).start().stop)
            yield {}

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        # RequestContextMiddleware and PrometheusMiddleware already trace and count each
        # request; FastAPI's own OpenTelemetry would add a second server span (and
        # per-dependency spans) to every request, and hold them for a stream's lifetime.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Before every endpoint: a NUL or an integer past 64 bits is a 422 naming the field,
        # not a 500 from the first query that meets it.
        dependencies=[Depends(refuse_unstorable_input)],
    )
    install_problem_handlers(app)
    install_idempotency(app)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(PrometheusMiddleware, service=service)
    app.add_middleware(RequestContextMiddleware, service=service)
    app.include_router(health_router(service))
    app.include_router(metrics_router())
    for router in routers:
        app.include_router(router)
    return app
