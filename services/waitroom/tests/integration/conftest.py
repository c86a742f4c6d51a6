"""Fixtures for the waitroom integration tests: real Redis (the worker's), real PostgreSQL
databases for the waitroom and, where admission needs live supply, for inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI

from marquee_inventory.main import SERVICE as INVENTORY
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_testing.events import People
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer
from marquee_testing.inventory import Catalog
from marquee_waitroom.main import SERVICE, create_app
from marquee_waitroom.queue import QueueStore
from marquee_waitroom.settings import WaitroomSettings


@dataclass
class ShiftedClock:
    """Real time plus an offset the test moves forward: admission windows and the rate
    run on the wall clock, while the test jumps to the sale start without waiting."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump_to(self, moment: datetime) -> None:
        self.offset += max(moment - self(), timedelta())


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def queue_store(redis: redis_asyncio.Redis, unique_name: Callable[[str], str]) -> QueueStore:
    return QueueStore(redis, index_prefix=unique_name("waitroom"))


@pytest.fixture
async def waitroom_database_url(make_database: DatabaseFactory) -> str:
    return await make_database(SERVICE.migrations, prefix="waitroom")


@pytest.fixture
async def waitroom_database(waitroom_database_url: str) -> AsyncIterator[Database]:
    database = Database(waitroom_database_url, pool_size=8)
    yield database
    await database.dispose()


@pytest.fixture
async def inventory_database(make_database: DatabaseFactory) -> AsyncIterator[Database]:
    database = Database(await make_database(INVENTORY.migrations, prefix="inventory"), pool_size=8)
    yield database
    await database.dispose()


@pytest.fixture
def hold_store(redis: redis_asyncio.Redis, unique_name: Callable[[str], str]) -> HoldStore:
    return HoldStore(redis, index_prefix=unique_name("inventory"))


@pytest.fixture
def catalog(inventory_database: Database, hold_store: HoldStore) -> Catalog:
    return Catalog(inventory_database, hold_store)


@pytest.fixture
def people(token_issuer: TokenIssuer) -> People:
    return People(token_issuer)


@pytest.fixture
def waitroom_settings(
    waitroom_database_url: str,
    redis_url: str,
    token_issuer: TokenIssuer,
    kafka_bootstrap: str,
    queue_store: QueueStore,
) -> WaitroomSettings:
    return WaitroomSettings(
        database_url=waitroom_database_url,
        redis_url=redis_url,
        jwks_url=token_issuer.jwks_url,
        kafka_bootstrap=kafka_bootstrap,
        log_json=False,
        database_pool_size=4,
        redis_index_prefix=queue_store.onsales_key.removesuffix(":onsales"),
        # The tests run admission rounds themselves, when they mean to.
        admission_interval_seconds=3600,
        forward_interval_seconds=3600,
    )


@pytest.fixture
async def waitroom_app(
    waitroom_settings: WaitroomSettings, clock: ShiftedClock
) -> AsyncIterator[FastAPI]:
    app = create_app(waitroom_settings)
    app.state.clock = clock
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(waitroom_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=waitroom_app), base_url="http://waitroom.test"
    ) as client:
        yield client
