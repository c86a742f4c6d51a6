"""The embedded pieces ``marquee dev`` starts on a bare machine really start and stop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncpg
import psutil
import redis.asyncio as redis_asyncio

from marquee_testing.localinfra import free_port, start_embedded_postgres, start_redis

StillRunning = Callable[..., list[psutil.Process]]  # the conftest fixture


def family(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


async def test_embedded_postgres_starts_with_logical_replication_and_stops(
    tmp_path: Path, still_running: StillRunning
) -> None:
    # A free port, not 5432: this must work beside the machine's own PostgreSQL.
    server = start_embedded_postgres(free_port(), tmp_path / "pg" / "data")
    try:
        processes = family(server.pid)
        connection = await asyncpg.connect(server.url, timeout=10)
        try:
            assert await connection.fetchval("SHOW wal_level") == "logical"
            assert await connection.fetchval("SHOW listen_addresses") == "127.0.0.1"
            assert await connection.fetchval("SELECT current_setting('server_version_num')::int")
            await connection.execute("CREATE TABLE probe (id int)")
        finally:
            await connection.close()
    finally:
        server.stop()
    assert len(processes) > 1  # the postmaster and its background workers
    assert not still_running(processes, timeout=10)


async def test_embedded_postgres_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "pg" / "data"
    for round_ in range(2):
        server = start_embedded_postgres(free_port(), data)
        try:
            connection = await asyncpg.connect(server.url, timeout=10)
            try:
                if round_ == 0:
                    await connection.execute("CREATE TABLE kept (id int)")
                else:
                    assert await connection.fetchval("SELECT to_regclass('kept')::text") == "kept"
            finally:
                await connection.close()
        finally:
            server.stop()


async def test_embedded_redis_answers_on_its_socket_and_stops(
    tmp_path: Path, still_running: StillRunning
) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        processes = family(server.pid)
        client = redis_asyncio.from_url(server.url)
        try:
            assert await client.set("probe", "1")
            assert await client.eval("return redis.call('GET', KEYS[1])", 1, "probe") == b"1"
        finally:
            await client.aclose()
    finally:
        server.stop()
    assert not still_running(processes, timeout=10)
    assert not server.socket_path.exists()
