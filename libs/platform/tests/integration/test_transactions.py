"""One transaction per request: committed before the response, rolled back on error;
after-commit actions run only once the transaction committed (on the request's unit of
work and on Database.transaction, which the consumer runner uses)."""

from __future__ import annotations

from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from marquee_auth.main import SERVICE
from marquee_contracts import Topic, TopicRegistry
from marquee_platform.app import create_service_app
from marquee_platform.db import Database, after_commit
from marquee_platform.errors import Conflict
from marquee_platform.http import ReadSessionDep, WriteSessionDep, router
from marquee_platform.outbox import Outbox
from marquee_platform.settings import ServiceSettings
from marquee_testing.fixtures import DatabaseFactory


class NoteWritten(BaseModel):
    note: str


REGISTRY = TopicRegistry()
REGISTRY.register(Topic("notes.note-written.v1", NoteWritten, "notes", "a note was written"))


class NotesSettings(ServiceSettings):
    service_name: ClassVar[str] = "notes"


def notes_app(database_url: str) -> FastAPI:
    notes = router(prefix="/api/v1/notes")

    @notes.post("", status_code=201)
    async def write(body: NoteWritten, session: WriteSessionDep) -> dict[str, str]:
        await session.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": body.note})
        await Outbox(session, source="/marquee/notes", registry=REGISTRY).add(
            "notes.note-written.v1", body, key=body.note
        )
        if body.note == "refuse":
            raise Conflict("this note is refused after writing it")
        return {"note": body.note}

    @notes.get("/count")
    async def count(session: ReadSessionDep) -> dict[str, int]:
        return {"count": (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one()}

    return create_service_app(
        NotesSettings(database_url=database_url, log_json=False),
        title="notes",
        description="test",
        routers=[notes],
        uses_kafka=False,
    )


@pytest.fixture
async def database_url(make_database: DatabaseFactory) -> str:
    url = await make_database(SERVICE.migrations)
    database = Database(url)
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE notes (body text NOT NULL)"))
    await database.dispose()
    return url


async def rows(url: str, query: str) -> list[tuple[object, ...]]:
    database = Database(url)
    try:
        async with database.reading() as session:
            return [tuple(row) for row in await session.execute(text(query))]
    finally:
        await database.dispose()


async def test_change_and_its_event_commit_together_before_the_response(database_url: str) -> None:
    app = notes_app(database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notes") as client:
            created = await client.post("/api/v1/notes", json={"note": "hello"})
            # Seen by a new connection as soon as the response arrived: committed first.
            assert await rows(database_url, "SELECT body FROM notes") == [("hello",)]
            refused = await client.post("/api/v1/notes", json={"note": "refuse"})
            counted = await client.get("/api/v1/notes/count")
    assert created.status_code == 201
    assert refused.status_code == 409
    assert counted.json() == {"count": 1}
    outbox = await rows(database_url, "SELECT topic, message_key, payload->>'type' FROM outbox")
    assert outbox == [("notes.note-written.v1", "hello", "notes.note-written.v1")]


async def test_a_read_session_refuses_to_write(database_url: str) -> None:
    from sqlalchemy import Column, MetaData, Table, Text
    from sqlalchemy.orm import registry

    metadata = MetaData()
    notes = Table("notes", metadata, Column("body", Text, primary_key=True))

    class Note:
        def __init__(self, body: str) -> None:
            self.body = body

    registry().map_imperatively(Note, notes)
    database = Database(database_url)
    try:
        async with database.reading() as session:
            session.add(Note("sneaky"))
            with pytest.raises(RuntimeError, match="ReadSession cannot write"):
                await session.flush()
    finally:
        await database.dispose()
    assert await rows(database_url, "SELECT body FROM notes") == []


async def committed_notes(url: str) -> list[str]:
    """What a new connection sees: only what was committed."""
    database = Database(url)
    try:
        async with database.reading() as session:
            return list((await session.execute(text("SELECT body FROM notes"))).scalars())
    finally:
        await database.dispose()


async def test_a_request_nudges_only_after_its_commit(database_url: str) -> None:
    seen_by_nudge: list[list[str]] = []
    notes = router(prefix="/api/v1/notes")

    @notes.post("", status_code=201)
    async def write(body: NoteWritten, session: WriteSessionDep) -> NoteWritten:
        await session.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": body.note})

        async def nudge() -> None:
            seen_by_nudge.append(await committed_notes(database_url))

        after_commit(session, nudge)
        if body.note == "refuse":
            raise Conflict("refused after writing")
        return body

    app: FastAPI = create_service_app(
        NotesSettings(database_url=database_url, log_json=False),
        title="notes",
        description="test",
        routers=[notes],
        uses_kafka=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notes") as client:
            accepted = await client.post("/api/v1/notes", json={"note": "hello"})
            refused = await client.post("/api/v1/notes", json={"note": "refuse"})
    assert (accepted.status_code, refused.status_code) == (201, 409)
    # One nudge, for the committed request, and it already saw its own row committed.
    assert seen_by_nudge == [["hello"]]


async def test_database_transaction_runs_actions_after_commit_only(database_url: str) -> None:
    database = Database(database_url)
    ran: list[tuple[str, list[str]]] = []
    try:
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('kept')"))

            async def committed() -> None:
                ran.append(("committed", await committed_notes(database_url)))

            after_commit(session, committed)
            assert ran == []  # never inside the transaction

        async def rolled_back() -> None:
            ran.append(("rolled back", []))

        async def write_and_fail() -> None:
            async with database.transaction() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES ('lost')"))
                after_commit(session, rolled_back)
                raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError, match="handler failed"):
            await write_and_fail()

        async def failing() -> None:
            raise ValueError("the nudge broke")

        async def later() -> None:
            ran.append(("after a failing action", []))

        async with database.transaction() as session:
            after_commit(session, failing)
            after_commit(session, later)
    finally:
        await database.dispose()
    assert ran == [("committed", ["kept"]), ("after a failing action", [])]
