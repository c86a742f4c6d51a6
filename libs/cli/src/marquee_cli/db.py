"""``marquee db``: create and migrate the services' databases, write new revisions.

Each service owns its database (``marquee_<service>``) and its Alembic history; these
commands find both through the service's ServiceSpec, so nobody keeps an alembic.ini.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from alembic import command

from marquee_cli.infra import service_database_url
from marquee_platform.migrations import alembic_config, ensure_database, upgrade_async
from marquee_platform.service import ServiceSpec


async def migrate(specs: list[ServiceSpec], postgres_url: str, say: Callable[[str], None]) -> None:
    """Create each service's database if missing and upgrade it to head, one at a time
    (Alembic's proxies are process-wide, so upgrades must not overlap)."""
    for spec in specs:
        assert spec.migrations is not None
        url = service_database_url(postgres_url, spec.name)
        created = await ensure_database(url)
        await upgrade_async(url, spec.migrations)
        say(f"{spec.name}: {'created and ' if created else ''}migrated to head")


def next_revision_id(versions: Path) -> str:
    """``0002`` after ``0001_platform_tables.py``: numbered revisions read in order, where
    Alembic's random ids do not."""
    numbers = [
        int(match.group(1))
        for path in versions.glob("*.py")
        if (match := re.match(r"(\d+)_", path.name))
    ]
    return f"{max(numbers, default=0) + 1:04d}"


async def revision(
    spec: ServiceSpec, postgres_url: str, *, message: str, autogenerate: bool
) -> Path:
    """Write a new revision in the service's migrations; its path.

    Autogenerate compares the models with a database, which must be at head first, so
    the service's database is created and migrated before.
    """
    assert spec.migrations is not None
    url = service_database_url(postgres_url, spec.name)
    if autogenerate:
        await ensure_database(url)
        await upgrade_async(url, spec.migrations)
    versions = spec.migrations / "versions"
    versions.mkdir(exist_ok=True)
    config = alembic_config(url, spec.migrations)
    rev_id = next_revision_id(versions)
    # In a thread: autogenerate runs the service's env.py, which runs its own event loop.
    script = await asyncio.to_thread(
        command.revision, config, message=message, autogenerate=autogenerate, rev_id=rev_id
    )
    scripts = script if isinstance(script, list) else [script]
    return Path(scripts[0].path) if scripts and scripts[0] is not None else versions
