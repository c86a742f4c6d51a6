"""``marquee inventory …``: the inventory service's commands (entry point
``marquee.commands``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated

import redis.asyncio as redis_asyncio
import typer
from rich.console import Console

from marquee_inventory import handlers
from marquee_inventory.repository import EventRepository
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_platform.errors import NotFound

app = typer.Typer(help="Seat inventory: rebuild Redis from PostgreSQL.", no_args_is_help=True)
console = Console()


async def rebuild_async(
    settings: InventorySettings, *, event_id: uuid.UUID | None
) -> list[tuple[uuid.UUID, float]]:
    """Reload one event (or every event on sale here) from PostgreSQL into Redis, keeping
    live holds whose places are not sold; returns (event, seconds) per event."""
    database = Database(
        settings.database_url, pool_size=2, application_name="marquee-inventory-cli"
    )
    client = redis_asyncio.Redis.from_url(settings.redis_url)
    store = HoldStore(client, index_prefix=settings.redis_index_prefix)
    try:
        if event_id is None:
            async with database.reading() as session:
                events = [
                    event.event_id for event in await EventRepository(session).loaded_events()
                ]
        else:
            events = [event_id]
        timings = []
        for one in events:
            started = time.perf_counter()
            await handlers.rebuild_event(one, database=database, store=store, force=True)
            timings.append((one, time.perf_counter() - started))
        return timings
    finally:
        await client.aclose()
        await database.dispose()


@app.command()
def rebuild(
    event: Annotated[
        str | None, typer.Option("--event", help="Only this event id (default: all)")
    ] = None,
) -> None:
    """Reload seat state into Redis from PostgreSQL: sold places stay sold, live holds are
    kept where their places are not sold. Safe while the service runs."""
    try:
        event_id = uuid.UUID(event) if event else None
    except ValueError:
        console.print(f"[red]--event must be an event id (a UUID), not {event!r}[/red]")
        raise typer.Exit(2) from None
    try:
        timings = asyncio.run(rebuild_async(InventorySettings(), event_id=event_id))
    except NotFound as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(1) from None
    for one, seconds in timings:
        console.print(f"rebuilt {one} in {seconds * 1000:.0f} ms")
    console.print(f"[green]{len(timings)} event(s) rebuilt[/green]")
