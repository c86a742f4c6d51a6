"""Alembic helpers: each service has its own database and its own migration history.

A service's ``migrations/env.py`` is two lines (:func:`run_env`); ``marquee dev`` and the
test fixtures call :func:`ensure_database` and :func:`upgrade` to create and migrate it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from marquee_platform.db import to_async_url
from marquee_platform.outbox import OUTBOX_PUBLICATION


def _connect_kwargs(url: str, database: str) -> dict[str, object]:
    parsed = make_url(url)
    kwargs: dict[str, object] = {"database": database, "user": parsed.username or "postgres"}
    if parsed.password:
        kwargs["password"] = parsed.password
    host = parsed.host or parsed.query.get("host")
    if host:
        kwargs["host"] = host
    if parsed.port:
        kwargs["port"] = parsed.port
    return kwargs


async def ensure_database(url: str, *, template: str | None = None) -> bool:
    """Create the database named in ``url`` if it is missing. True if it was created.

    With ``template``, the new database is a copy of that one (``CREATE DATABASE …
    TEMPLATE``: a file copy, far faster than running the migrations again); nobody may be
    connected to the template meanwhile.
    """
    name = make_url(url).database
    if not name:
        raise ValueError(f"the database URL names no database: {make_url(url)!r}")
    connection = await asyncpg.connect(**_connect_kwargs(url, "postgres"))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        statement = f"CREATE DATABASE {_quoted(name)}"
        if template is not None:
            statement += f" TEMPLATE {_quoted(template)}"
        try:
            await connection.execute(statement)
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await connection.close()


async def drop_database(url: str) -> None:
    name = make_url(url).database
    assert name
    connection = await asyncpg.connect(**_connect_kwargs(url, "postgres"))
    try:
        await connection.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = $1 AND NOT active",
            name,
        )
        await connection.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        await connection.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def alembic_config(url: str, script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", to_async_url(url).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def upgrade(url: str, script_location: Path, revision: str = "head") -> None:
    """Run the service's migrations up to ``revision`` (blocking; call from a thread)."""
    command.upgrade(alembic_config(url, script_location), revision)


async def upgrade_async(url: str, script_location: Path, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, script_location, revision)


def run_env(target_metadata: MetaData) -> None:
    """The whole body of a service's ``migrations/env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set; run migrations through marquee or alembic_config()"
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())


def create_platform_tables_v1() -> None:
    """The first migration of every service: outbox, inbox, idempotency keys, publication.

    Frozen: a later change to these tables is a new helper and a new migration.
    """
    op.create_table(
        "outbox",
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.dialects.postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("message_key", sa.String(200), nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB, nullable=False),
        sa.Column("headers", sa.dialects.postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id", name="outbox_event_id_key"),
    )
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["position"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("consumer_group", sa.String(100), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.BigInteger, nullable=False),
        sa.Column("response_headers", sa.dialects.postgresql.JSONB, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    # The CDC relay reads only inserts into the outbox; cleanup deletes are not published.
    op.execute(
        f"CREATE PUBLICATION {OUTBOX_PUBLICATION} FOR TABLE outbox WITH (publish = 'insert')"
    )


def drop_platform_tables_v1() -> None:
    op.execute(f"DROP PUBLICATION IF EXISTS {OUTBOX_PUBLICATION}")
    op.drop_table("idempotency_keys")
    op.drop_table("inbox")
    op.drop_table("outbox")
