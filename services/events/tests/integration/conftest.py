"""Fixtures for the events integration tests: the app in-process against its own freshly
migrated database. Factories live in :mod:`marquee_testing.events`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from marquee_events.main import SERVICE, create_app
from marquee_events.settings import EventsSettings
from marquee_platform.db import Database
from marquee_testing.events import Catalog, Clock, People
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def people(token_issuer: TokenIssuer) -> People:
    return People(token_issuer)


@pytest.fixture
async def events_database_url(make_database: DatabaseFactory) -> str:
    return await make_database(SERVICE.migrations, prefix="events")


@pytest.fixture
def events_settings(
    events_database_url: str, token_issuer: TokenIssuer, kafka_bootstrap: str
) -> EventsSettings:
    return EventsSettings(
        database_url=events_database_url,
        jwks_url=token_issuer.jwks_url,
        kafka_bootstrap=kafka_bootstrap,
        log_json=False,
        database_pool_size=4,
    )


@pytest.fixture
async def client(events_settings: EventsSettings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(events_settings, clock=clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://events.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def database(events_database_url: str) -> AsyncIterator[Database]:
    database = Database(events_database_url, pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
def catalog(client: httpx.AsyncClient, people: People, clock: Clock) -> Catalog:
    return Catalog(client, people, clock)
