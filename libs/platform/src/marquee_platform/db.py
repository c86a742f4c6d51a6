"""Async SQLAlchemy 2 engines and sessions.

One transaction per HTTP request or consumed message, opened and committed at the edge
(:class:`marquee_platform.http.TransactionalRoute`, the consumer runner). Handlers and
repositories receive a session and never commit. Read-only work gets a
:class:`ReadSession` bound to the replica (or the primary) that refuses to flush.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session


class WriteSession(AsyncSession):
    """A session inside the request's or message's one read-write transaction."""


class _ReadOnlySession(Session):
    """The sync session behind :class:`ReadSession`: its own class, so the flush guard
    below applies to read sessions only (``AsyncSession`` subclasses otherwise share
    SQLAlchemy's ``Session`` class, and a listener on it would refuse every flush)."""


class ReadSession(AsyncSession):
    """A session for queries only; a flush raises so a write can't slip through."""

    sync_session_class = _ReadOnlySession


@event.listens_for(_ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, flush_context: Any, instances: Any) -> None:
    raise RuntimeError("a ReadSession cannot write; ask for a WriteSession")


def to_async_url(url: str) -> str:
    """Accept ``postgresql://`` URLs too and use asyncpg for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def to_sync_url(url: str) -> str:
    """The same database for sync tools (Alembic offline, psycopg2 replication)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def to_libpq_dsn(url: str) -> str:
    """A plain libpq URL (``postgresql://…``), as psycopg2 and psql take it."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


class Database:
    """The engines and session factories of one service database."""

    def __init__(
        self,
        url: str,
        *,
        read_url: str | None = None,
        pool_size: int = 10,
        application_name: str = "marquee",
    ) -> None:
        connect_args = {"server_settings": {"application_name": application_name}}
        self.write_engine: AsyncEngine = create_async_engine(
            to_async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
        self.read_engine: AsyncEngine = (
            create_async_engine(
                to_async_url(read_url),
                pool_size=pool_size,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
            if read_url
            else self.write_engine
        )
        self.write_sessions = async_sessionmaker(
            self.write_engine, class_=WriteSession, expire_on_commit=False, autoflush=False
        )
        self.read_sessions = async_sessionmaker(
            self.read_engine, class_=ReadSession, expire_on_commit=False, autoflush=False
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[WriteSession]:
        """Open a session and one transaction; commit on success, roll back on error."""
        async with self.write_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[ReadSession]:
        async with self.read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
