"""Every service's skeleton: migrations, health, readiness, metrics and OpenAPI."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from marquee_platform.db import Database
from marquee_platform.service import ServiceSpec, discover_services
from marquee_testing.fixtures import DatabaseFactory

SERVICES = discover_services()
EXPECTED = {
    "gateway",
    "auth",
    "events",
    "search",
    "inventory",
    "booking",
    "payments",
    "notifications",
    "waitroom",
    "analytics",
}


def test_every_service_is_installed_with_its_own_port() -> None:
    assert set(SERVICES) == EXPECTED
    ports = [spec.dev_port for spec in SERVICES.values()]
    assert len(set(ports)) == len(ports)
    assert SERVICES["gateway"].dev_port == 8000


DEVELOPMENT_SETTINGS: dict[str, dict[str, object]] = {
    # What make dev sets: payments takes no payment without a provider configured.
    "payments": {"simulator_enabled": True},
}


@pytest.mark.parametrize("name", sorted(EXPECTED - {"gateway"}))
async def test_service_migrates_its_own_database_and_reports_health(
    name: str,
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
) -> None:
    spec: ServiceSpec = SERVICES[name]
    assert spec.migrations is not None
    url = await make_database(spec.migrations, prefix=name)

    database = Database(url)
    async with database.reading() as session:
        tables = set(
            (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                )
            ).scalars()
        )
        publication = (
            await session.execute(text("SELECT pubname FROM pg_publication"))
        ).scalar_one()
    await database.dispose()
    assert {"outbox", "inbox", "idempotency_keys", "alembic_version"} <= tables
    assert publication == "marquee_outbox"

    settings = spec.settings_class(
        database_url=url,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        log_json=False,
        **DEVELOPMENT_SETTINGS.get(name, {}),
    )
    module_name, factory_name = spec.app_factory.split(":")
    factory = getattr(__import__(module_name, fromlist=[factory_name]), factory_name)
    app = factory(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            alive = await client.get("/healthz")
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
            docs = await client.get("/docs")
            schema = await client.get("/openapi.json")
            missing = await client.get("/api/v1/nothing-here")
    assert alive.json() == {"status": "ok", "service": name}
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["database"]["status"] == "up"
    assert ready.json()["checks"]["kafka"]["status"] == "up"
    assert (
        'marquee_http_requests_total{method="GET",route="/healthz",'
        f'service="{name}",status="2xx"}} 1.0' in metrics.text
    )
    assert docs.status_code == 200
    assert schema.json()["info"]["title"].lower().endswith(name)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_readiness_names_the_piece_that_is_down(make_database: DatabaseFactory) -> None:
    spec = SERVICES["events"]
    settings = spec.settings_class(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        kafka_bootstrap="127.0.0.1:1",
        log_json=False,
        **DEVELOPMENT_SETTINGS.get(spec.name, {}),
    )
    module_name, factory_name = spec.app_factory.split(":")
    app = getattr(__import__(module_name, fromlist=[factory_name]), factory_name)(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["status"] == "down"
    assert checks["kafka"]["status"] == "down"
