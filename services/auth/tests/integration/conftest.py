"""Auth against real PostgreSQL and Redis: one fresh database per test, the app called
in-process through its lifespan."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from marquee_auth.main import SERVICE, create_app
from marquee_auth.settings import AuthSettings
from marquee_platform.db import Database
from marquee_testing.fixtures import DatabaseFactory

PASSWORD = "correct horse battery staple"


def new_email(prefix: str = "fan") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def random_address() -> str:
    """A client address of this test's own, so per-address counters in the shared Redis
    database never mix between tests."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@dataclass
class AuthHarness:
    app: FastAPI
    client: httpx.AsyncClient
    settings: AuthSettings
    database: Database
    redis: Any
    address: str
    password: str = PASSWORD

    @staticmethod
    def new_email(prefix: str = "fan") -> str:
        return new_email(prefix)

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return bearer(token)

    async def register(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        email = email or new_email()
        response = await self.client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def signed_up(self, email: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A registered user and a fresh session: (user, tokens)."""
        user = await self.register(email)
        return user, await self.login(user["email"])

    async def me(self, access_token: str) -> httpx.Response:
        return await self.client.get("/api/v1/auth/me", headers=bearer(access_token))

    async def events(self, user_id: str, topic: str | None = None) -> list[dict[str, Any]]:
        """The outbox envelopes about ``user_id`` (optionally of one topic), oldest first."""
        query = "SELECT topic, payload FROM outbox WHERE message_key = :key"
        params: dict[str, Any] = {"key": user_id}
        if topic:
            query += " AND topic = :topic"
            params["topic"] = topic
        async with self.database.reading() as session:
            rows = (await session.execute(text(query + " ORDER BY position"), params)).all()
        return [{"topic": row.topic, **row.payload} for row in rows]

    async def latest_token(self, user_id: str, topic: str) -> str:
        events = await self.events(user_id, topic)
        assert events, f"no {topic} event for {user_id}"
        token: str = events[-1]["data"]["token"]
        return token

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.database.transaction() as session:
            result = await session.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []


AuthFactory = Callable[..., AbstractAsyncContextManager[AuthHarness]]


@pytest.fixture
async def start_auth(make_database: DatabaseFactory, redis_url: str) -> AuthFactory:
    """``async with start_auth(**settings) as auth:`` runs the service on a fresh database."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[AuthHarness]:
        url = overrides.pop("database_url", None) or await make_database(
            SERVICE.migrations, prefix="auth"
        )
        settings = AuthSettings(database_url=url, redis_url=redis_url, log_json=False, **overrides)
        app = create_app(settings)
        address = random_address()
        database = Database(url)
        redis = redis_asyncio.from_url(redis_url)
        try:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://auth",
                    headers={"X-Forwarded-For": address},
                ) as client,
            ):
                yield AuthHarness(app, client, settings, database, redis, address)
        finally:
            await redis.aclose()
            await database.dispose()

    return start


@pytest.fixture
async def auth(start_auth: AuthFactory) -> AsyncIterator[AuthHarness]:
    async with start_auth() as harness:
        yield harness
