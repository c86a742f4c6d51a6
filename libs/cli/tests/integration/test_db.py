"""``marquee db``: migrate creates and upgrades a service's database; revision numbers files.

The service here is auth's migrations copied to a temporary directory under a unique
name, so the test writes nothing into the repository and touches no real dev database.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from marquee_cli.db import migrate, revision
from marquee_cli.infra import service_database_url
from marquee_platform.db import to_libpq_dsn
from marquee_platform.migrations import drop_database
from marquee_platform.service import ServiceSpec, discover_services


@pytest.fixture
async def scratch_service(tmp_path: Path, postgres_url: str) -> AsyncIterator[ServiceSpec]:
    auth = discover_services()["auth"]
    assert auth.migrations is not None
    migrations = tmp_path / "migrations"
    shutil.copytree(auth.migrations, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    spec = replace(auth, name=f"clitest_{uuid.uuid4().hex[:10]}", migrations=migrations)
    yield spec
    await drop_database(service_database_url(postgres_url, spec.name))


async def test_migrate_creates_the_database_and_upgrades_it(
    scratch_service: ServiceSpec, postgres_url: str
) -> None:
    said: list[str] = []
    await migrate([scratch_service], postgres_url, said.append)
    await migrate([scratch_service], postgres_url, said.append)  # idempotent
    assert said[0].endswith("created and migrated to head")
    assert said[1].endswith(": migrated to head")
    url = service_database_url(postgres_url, scratch_service.name)
    connection = await asyncpg.connect(to_libpq_dsn(url), timeout=10)
    try:
        assert await connection.fetchval("SELECT to_regclass('outbox')::text") == "outbox"
    finally:
        await connection.close()


async def test_revision_writes_the_next_numbered_file(
    scratch_service: ServiceSpec, postgres_url: str
) -> None:
    assert scratch_service.migrations is not None
    versions = scratch_service.migrations / "versions"
    head = max(int(existing.name[:4]) for existing in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    path = await revision(scratch_service, postgres_url, message="add seat maps", autogenerate=True)
    assert path.name == f"{head + 1:04d}_add_seat_maps.py"
    text = path.read_text()
    assert f"revision: str = '{head + 1:04d}'" in text
    assert f"down_revision: str | None = '{head:04d}'" in text
