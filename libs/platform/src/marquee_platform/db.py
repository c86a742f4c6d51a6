"""Async SQLAlchemy 2 engines and sessions.

One transaction per HTTP request or consumed message, opened and committed at the edge
(:class:`marquee_platform.http.TransactionalRoute`, the consumer runner). Handlers and
repositories receive a session and never commit. Read-only work gets a
:class:`ReadSession` bound to the replica (or the primary) that refuses to flush.

Work that must happen only once the transaction is durable (a real-time nudge to
browsers, waking a local worker) is registered with :func:`after_commit` on the session:
it runs after ``COMMIT`` succeeded and never when the transaction rolled back. Anything
another service must learn goes to the outbox instead, in the transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

AfterCommitAction = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "marquee.after_commit"


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


def after_commit(session: AsyncSession, action: AfterCommitAction) -> None:
    """Run ``action`` once this session's transaction has committed.

    The request's unit of work and :meth:`Database.transaction` (which the consumer
    runner uses) run the actions in the order added, after ``COMMIT`` returned; a rollback
    discards them. An action that fails is logged and does not undo the commit or fail
    the request, so use it only for what is safe to lose (a nudge, a cache refresh).
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def discard_after_commit(session: AsyncSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)


async def run_after_commit(session: AsyncSession) -> None:
    """Run and forget the session's after-commit actions (call right after COMMIT)."""
    actions: list[AfterCommitAction] = session.info.pop(_AFTER_COMMIT, [])
    for action in actions:
        try:
            await action()
        except Exception:
            logger.exception("an after-commit action failed (the transaction stays committed)")


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
        """Open a session and one transaction; commit on success, roll back on error.

        After the commit, the session's :func:`after_commit` actions run.
        """
        async with self.write_sessions() as session:
            try:
                async with session.begin():
                    yield session
            except BaseException:
                discard_after_commit(session)
                raise
            await run_after_commit(session)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[ReadSession]:
        async with self.read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()

    async def check_reachable(self, *, timeout_seconds: float = 10.0) -> None:
        """Connect once; :class:`DatabaseUnreachable` says in one line where and why not
        (for commands, which should say that rather than print a driver's traceback)."""
        try:
            async with asyncio.timeout(timeout_seconds), self.write_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            raise DatabaseUnreachable(
                self.write_engine.url.render_as_string(hide_password=True), error
            ) from error


class DatabaseUnreachable(Exception):
    """A database did not answer: ``str()`` is one line naming it (password hidden) and
    the reason."""

    def __init__(self, url: str, error: BaseException) -> None:
        cause = getattr(error, "orig", None) or error  # the driver's words, not SQLAlchemy's
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        super().__init__(f"{url}: {reason or type(cause).__name__}")
        self.url = url
