"""Fixtures for the inventory integration tests: the app in-process against its own
migrated database and the worker's Redis database, catalog messages applied the way the
consumer applies them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis_asyncio

from marquee_inventory.main import SERVICE, create_app
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_testing.events import Clock, People
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer
from marquee_testing.inventory import Catalog, HoldApi
from marquee_testing.localinfra import RedisServer, start_redis

# A fixture, imported rather than listed in pytest_plugins: pytest refuses pytest_plugins
# in a conftest below the rootdir once it is collected from a parent (`pytest services`).
from marquee_testing.redis_cluster import redis_cluster  # noqa: F401


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def people(token_issuer: TokenIssuer) -> People:
    return People(token_issuer)


@pytest.fixture
async def inventory_database_url(make_database: DatabaseFactory) -> str:
    return await make_database(SERVICE.migrations, prefix="inventory")


@pytest.fixture
async def database(inventory_database_url: str) -> AsyncIterator[Database]:
    database = Database(inventory_database_url, pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def index_prefix(unique_name: Callable[[str], str]) -> str:
    """The cross-event index keys of this test only (the worker's Redis is shared)."""
    return unique_name("inventory")


@pytest.fixture
def store(redis: redis_asyncio.Redis, index_prefix: str) -> HoldStore:
    return HoldStore(redis, index_prefix=index_prefix)


@pytest.fixture
def inventory_settings(
    inventory_database_url: str,
    redis_url: str,
    token_issuer: TokenIssuer,
    kafka_bootstrap: str,
    index_prefix: str,
) -> InventorySettings:
    return InventorySettings(
        database_url=inventory_database_url,
        redis_url=redis_url,
        jwks_url=token_issuer.jwks_url,
        kafka_bootstrap=kafka_bootstrap,
        log_json=False,
        database_pool_size=4,
        redis_index_prefix=index_prefix,
        # The tests run the sweeper, forwarder and reconciler themselves, when they mean to.
        sweep_interval_seconds=3600,
        forward_interval_seconds=3600,
        reconcile_interval_seconds=3600,
    )


@pytest.fixture
async def client(
    inventory_settings: InventorySettings, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(inventory_settings)
    app.state.clock = clock
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://inventory.test"
        ) as client,
    ):
        yield client


@pytest.fixture
def api(client: httpx.AsyncClient) -> HoldApi:
    return HoldApi(client)


@pytest.fixture
def catalog(database: Database, store: HoldStore) -> Catalog:
    return Catalog(database, store)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, for tests that flush Redis: FLUSHDB on the
    worker's shared Redis database would wipe the state of other tests using it."""
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()
