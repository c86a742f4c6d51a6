"""Idempotency-Key against real PostgreSQL, through a service app's own transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI, Response
from pydantic import BaseModel
from sqlalchemy import text

from marquee_auth.main import SERVICE
from marquee_platform.app import create_service_app
from marquee_platform.db import Database
from marquee_platform.errors import Conflict, Unauthenticated
from marquee_platform.http import WriteSessionDep, router
from marquee_platform.idempotency import (
    IdempotencyKey,
    RequiredIdempotencyKey,
    delete_expired_idempotency_keys,
)
from marquee_platform.security import Principal, Role
from marquee_platform.settings import ServiceSettings
from marquee_testing.fixtures import DatabaseFactory


class WidgetsSettings(ServiceSettings):
    service_name: ClassVar[str] = "widgets"


class WidgetCreate(BaseModel):
    name: str


@dataclass
class Knobs:
    """What the test controls inside the endpoint."""

    refusals_left: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event | None = None


class FakeVerifier:
    """Stands in for the JWKS-backed verifier (tested on its own): token text → principal."""

    async def verify(self, token: str) -> Principal:
        if not token.startswith("user-"):
            raise Unauthenticated("unknown test token")
        return Principal(token, frozenset({Role.CUSTOMER}), "jti", datetime(2030, 1, 1, tzinfo=UTC))


def widgets_app(database_url: str, knobs: Knobs) -> FastAPI:
    widgets = router(prefix="/api/v1/widgets")

    async def insert_widget(session: WriteSessionDep, name: str) -> int:
        inserted = await session.execute(
            text("INSERT INTO widgets (name) VALUES (:name) RETURNING id"), {"name": name}
        )
        return int(inserted.scalar_one())

    @widgets.post("", status_code=201)
    async def create(
        body: WidgetCreate,
        session: WriteSessionDep,
        response: Response,
        _: RequiredIdempotencyKey,
    ) -> dict[str, Any]:
        widget_id = await insert_widget(session, body.name)
        if knobs.refusals_left > 0:
            knobs.refusals_left -= 1
            raise Conflict("the widget factory is busy; retry")
        if knobs.release is not None and not knobs.entered.is_set():
            knobs.entered.set()
            await knobs.release.wait()
        response.headers["Location"] = f"/api/v1/widgets/{widget_id}"
        # A fresh nonce per run: a replay shows the stored one, a re-run a new one.
        return {"id": widget_id, "name": body.name, "nonce": uuid.uuid4().hex}

    @widgets.post("/casual", status_code=201)
    async def create_casually(
        body: WidgetCreate, session: WriteSessionDep, key: IdempotencyKey
    ) -> dict[str, Any]:
        return {"id": await insert_widget(session, body.name), "key": key}

    async def use_fake_verifier(app: FastAPI, stack: object) -> None:
        app.state.token_verifier = FakeVerifier()

    return create_service_app(
        WidgetsSettings(database_url=database_url, log_json=False),
        title="widgets",
        description="test",
        routers=[widgets],
        uses_kafka=False,
        on_startup=[use_fake_verifier],
    )


@pytest.fixture
async def database_url(make_database: DatabaseFactory) -> str:
    url = await make_database(SERVICE.migrations)
    database = Database(url)
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE widgets (id bigserial PRIMARY KEY, name text)"))
    await database.dispose()
    return url


@pytest.fixture
def knobs() -> Knobs:
    return Knobs()


@pytest.fixture
async def app(database_url: str, knobs: Knobs) -> AsyncIterator[FastAPI]:
    app = widgets_app(database_url, knobs)
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, *, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://widgets")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


async def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    database = Database(url)
    try:
        async with database.reading() as session:
            return [tuple(row) for row in await session.execute(text(sql))]
    finally:
        await database.dispose()


async def widget_names(url: str) -> list[str]:
    return [str(name) for (name,) in await query(url, "SELECT name FROM widgets ORDER BY id")]


def keyed(key: str, token: str | None = None) -> dict[str, str]:
    headers = {"Idempotency-Key": key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_a_retry_with_the_same_key_replays_the_first_response(
    client: httpx.AsyncClient, database_url: str
) -> None:
    first = await client.post("/api/v1/widgets", json={"name": "a"}, headers=keyed("k-1"))
    again = await client.post("/api/v1/widgets", json={"name": "a"}, headers=keyed("k-1"))

    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["location"] == first.headers["location"]
    assert await widget_names(database_url) == ["a"]


async def test_the_same_key_with_a_different_request_is_refused(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await client.post("/api/v1/widgets", json={"name": "a"}, headers=keyed("k-1"))
    other_body = await client.post("/api/v1/widgets", json={"name": "b"}, headers=keyed("k-1"))
    other_path = await client.post(
        "/api/v1/widgets/casual", json={"name": "a"}, headers=keyed("k-1")
    )

    for response in (other_body, other_path):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"].endswith("/idempotency-key-reused")
        assert "already used with a different request" in problem["detail"]
        assert "use a new key" in problem["detail"]
    assert await widget_names(database_url) == ["a"]


async def test_a_concurrent_duplicate_waits_and_gets_the_first_response(
    app: FastAPI, client: httpx.AsyncClient, knobs: Knobs, database_url: str
) -> None:
    release = knobs.release = asyncio.Event()
    first = asyncio.create_task(
        client.post("/api/v1/widgets", json={"name": "c"}, headers=keyed("k-c"))
    )
    try:
        await asyncio.wait_for(knobs.entered.wait(), timeout=10)  # first is mid-transaction
        second = asyncio.create_task(
            client.post("/api/v1/widgets", json={"name": "c"}, headers=keyed("k-c"))
        )
        waiting = await advisory_lock_waiters(database_url)
    finally:
        release.set()
    responses = await asyncio.gather(first, second)

    assert waiting == 1, "the duplicate should have waited on the advisory lock"

    assert [response.status_code for response in responses] == [201, 201]
    assert responses[1].headers["idempotent-replayed"] == "true"
    assert responses[1].content == responses[0].content
    assert await widget_names(database_url) == ["c"]


async def advisory_lock_waiters(url: str, *, timeout: float = 10.0) -> int:
    """How many sessions wait on an advisory lock in this database, once any does."""
    database = Database(url)
    try:
        async with asyncio.timeout(timeout), database.reading() as session:
            while True:
                waiting = (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND NOT granted AND database = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database())"
                        )
                    )
                ).scalar_one()
                await session.rollback()  # a fresh snapshot of pg_locks next time round
                if waiting:
                    return int(waiting)
                await asyncio.sleep(0.01)
    finally:
        await database.dispose()


async def test_many_simultaneous_duplicates_have_exactly_one_effect(
    client: httpx.AsyncClient, database_url: str
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/widgets", json={"name": "d"}, headers=keyed("k-d"))
            for _ in range(8)
        )
    )
    assert {response.status_code for response in responses} == {201}
    assert len({response.content for response in responses}) == 1
    replayed = [response.headers.get("idempotent-replayed") for response in responses]
    assert replayed.count("true") == 7
    assert await widget_names(database_url) == ["d"]


async def test_a_failed_request_is_not_stored_so_a_retry_runs(
    client: httpx.AsyncClient, knobs: Knobs, database_url: str
) -> None:
    knobs.refusals_left = 1
    refused = await client.post("/api/v1/widgets", json={"name": "e"}, headers=keyed("k-e"))
    retried = await client.post("/api/v1/widgets", json={"name": "e"}, headers=keyed("k-e"))
    assert refused.status_code == 409
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert await widget_names(database_url) == ["e"], "the refused attempt rolled back"
    assert await query(database_url, "SELECT key, status_code FROM idempotency_keys") == [
        ("k-e", 201)
    ]


async def test_keys_belong_to_one_principal(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    body = {"name": "f"}
    ann = await client.post("/api/v1/widgets", json=body, headers=keyed("k-f", "user-ann"))
    bob = await client.post("/api/v1/widgets", json=body, headers=keyed("k-f", "user-bob"))
    ann_again = await client.post("/api/v1/widgets", json=body, headers=keyed("k-f", "user-ann"))
    async with client_for(app, ip="10.0.0.2") as elsewhere:
        anonymous_here = await client.post("/api/v1/widgets", json=body, headers=keyed("k-f"))
        anonymous_there = await elsewhere.post("/api/v1/widgets", json=body, headers=keyed("k-f"))

    assert "idempotent-replayed" not in bob.headers
    assert ann_again.headers["idempotent-replayed"] == "true"
    assert ann_again.content == ann.content
    assert "idempotent-replayed" not in anonymous_there.headers
    assert anonymous_here.status_code == anonymous_there.status_code == 201
    assert await widget_names(database_url) == ["f"] * 4
    principals = await query(database_url, "SELECT principal FROM idempotency_keys ORDER BY 1")
    assert principals == [
        ("anonymous:10.0.0.1",),
        ("anonymous:10.0.0.2",),
        ("user-ann",),
        ("user-bob",),
    ]


async def test_a_bad_token_is_refused_before_the_key_is_looked_at(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/api/v1/widgets", json={"name": "g"}, headers=keyed("k-g", "forged")
    )
    assert response.status_code == 401
    assert await widget_names(database_url) == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "Idempotency-Key"),
        ({"Idempotency-Key": ""}, "1 to 255 printable ASCII characters"),
        ({"Idempotency-Key": "k" * 256}, "1 to 255 printable ASCII characters"),
    ],
    ids=["missing", "empty", "too-long"],
)
async def test_a_route_requiring_a_key_says_which_header_is_wrong(
    client: httpx.AsyncClient, database_url: str, headers: dict[str, str], expected: str
) -> None:
    response = await client.post("/api/v1/widgets", json={"name": "h"}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert expected in response.json()["detail"]
    assert response.json()["errors"][0]["location"] == "header Idempotency-Key"
    assert await widget_names(database_url) == []


async def test_an_optional_key_may_be_left_out(
    client: httpx.AsyncClient, database_url: str
) -> None:
    unkeyed = [await client.post("/api/v1/widgets/casual", json={"name": "i"}) for _ in range(2)]
    keyed_twice = [
        await client.post("/api/v1/widgets/casual", json={"name": "j"}, headers=keyed("k-j"))
        for _ in range(2)
    ]
    assert [response.json()["key"] for response in unkeyed] == [None, None]
    assert keyed_twice[1].headers["idempotent-replayed"] == "true"
    assert await widget_names(database_url) == ["i", "i", "j"]


async def test_old_keys_are_deleted_and_can_then_be_used_again(
    client: httpx.AsyncClient, database_url: str
) -> None:
    for key in ("old", "new"):
        await client.post("/api/v1/widgets", json={"name": key}, headers=keyed(key))
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            await session.execute(
                text(
                    "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                    "WHERE key = 'old'"
                )
            )
        async with database.transaction() as session:
            deleted = await delete_expired_idempotency_keys(session, older_than_hours=24)
    finally:
        await database.dispose()

    assert deleted == 1
    assert await query(database_url, "SELECT key FROM idempotency_keys") == [("new",)]
    reused = await client.post("/api/v1/widgets", json={"name": "old"}, headers=keyed("old"))
    assert "idempotent-replayed" not in reused.headers
    assert await widget_names(database_url) == ["old", "new", "old"]
