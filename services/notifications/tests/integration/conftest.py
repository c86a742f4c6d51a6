"""Fixtures for the notifications integration tests: a real PostgreSQL database of the
service's own, a real SMTP server (the aiosmtpd sink) on a free loopback port, the app
(its senders driven by the tests) and the consumer's apply-once path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from marquee_notifications.consumers import build_consumer
from marquee_notifications.main import SERVICE, create_app
from marquee_notifications.sender import Sender
from marquee_notifications.settings import NotificationsSettings
from marquee_notifications.sink import MemoryStore, SmtpSink
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.db import Database
from marquee_testing.events import People
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer

# The purchase saga's fixtures, imported rather than listed in pytest_plugins (pytest
# refuses pytest_plugins in a conftest below the rootdir).
from marquee_testing.saga import payments_overrides, saga  # noqa: F401


class MovableClock:
    """Real time plus an offset a test moves (reminders fall due without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def notifications_database_url(make_database: DatabaseFactory) -> str:
    return await make_database(SERVICE.migrations, prefix="notifications")


@pytest.fixture
async def database(notifications_database_url: str) -> AsyncIterator[Database]:
    database = Database(notifications_database_url, pool_size=8)
    yield database
    await database.dispose()


@pytest.fixture
def mailbox() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def sink(mailbox: MemoryStore) -> AsyncIterator[SmtpSink]:
    async with SmtpSink(mailbox) as running:
        yield running


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module changes (override this fixture in the module)."""
    return {}


@pytest.fixture
def settings(
    notifications_database_url: str,
    sink: SmtpSink,
    token_issuer: TokenIssuer,
    kafka_bootstrap: str,
    settings_overrides: dict[str, Any],
) -> NotificationsSettings:
    values: dict[str, Any] = {
        "database_url": notifications_database_url,
        "jwks_url": token_issuer.jwks_url,
        "kafka_bootstrap": kafka_bootstrap,
        "log_json": False,
        "database_pool_size": 8,
        "smtp_url": sink.url,
        "public_url": "http://marquee.test",
        # The tests send when they mean to (Sender.drain), not on the app's timer.
        "send_interval_seconds": 3600,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1.0,
        "bulk_per_second": 10_000,
        **settings_overrides,
    }
    return NotificationsSettings(**values)


@pytest.fixture
async def app(settings: NotificationsSettings, clock: MovableClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    app.state.clock = clock
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notifications.test"
    ) as client:
        yield client


@pytest.fixture
def senders(app: FastAPI) -> dict[str, Sender]:
    senders: dict[str, Sender] = app.state.senders
    return senders


@pytest.fixture
async def runner(
    settings: NotificationsSettings, database: Database, clock: MovableClock
) -> ConsumerRunner:
    return build_consumer(settings, database=database, clock=clock)


@pytest.fixture
def people(token_issuer: TokenIssuer) -> People:
    return People(token_issuer)
