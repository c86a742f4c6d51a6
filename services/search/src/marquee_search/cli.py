"""``marquee search …``: the search service's commands (entry point ``marquee.commands``).

They read their settings like the service (``SEARCH_…``, else ``MARQUEE_…``). Run through
``marquee`` with no database named, they use the ``marquee_search`` database of the
PostgreSQL that ``marquee dev`` uses (the ``marquee`` tool sets ``SEARCH_DATABASE_URL``
for them). A database that does not answer is one line and exit code 1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from marquee_platform.db import DatabaseUnreachable
from marquee_search.domain import IndexEntry
from marquee_search.engines import PostgresSearchEngine, RebuildReport, create_engine
from marquee_search.settings import SearchSettings
from marquee_search.sources import page_events_service, replay_topic

app = typer.Typer(help="The search index: rebuild it.", no_args_is_help=True)
console = Console()


class Source(StrEnum):
    KAFKA = "kafka"
    HTTP = "http"


def _source(
    source: Source, settings: SearchSettings, kafka_bootstrap: str | None, events_url: str | None
) -> AsyncIterator[Sequence[IndexEntry]]:
    if source is Source.KAFKA:
        return replay_topic(kafka_bootstrap or settings.kafka_bootstrap)
    token = settings.internal_token.get_secret_value() if settings.internal_token else None
    return page_events_service(events_url or settings.events_url, token=token)


async def reindex_async(
    settings: SearchSettings,
    *,
    source: Source,
    kafka_bootstrap: str | None = None,
    events_url: str | None = None,
) -> RebuildReport:
    engine = create_engine(settings)
    try:
        if isinstance(engine, PostgresSearchEngine):
            await engine.database.check_reachable()  # one clear line, not a traceback
        with Progress(
            TextColumn("[bold]reindex[/bold] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} entries"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task(f"from {source.value}", total=None)
            return await engine.rebuild(
                _source(source, settings, kafka_bootstrap, events_url),
                progress=lambda count: progress.advance(task, count),
            )
    finally:
        await engine.close()


@app.command()
def reindex(
    source: Annotated[
        Source,
        typer.Option(
            help="kafka: replay events.event-changed.v1 from the beginning; "
            "http: page through the events service"
        ),
    ] = Source.KAFKA,
    kafka_bootstrap: Annotated[
        str | None, typer.Option(help="Default: SEARCH_KAFKA_BOOTSTRAP / MARQUEE_KAFKA_BOOTSTRAP")
    ] = None,
    events_url: Annotated[
        str | None, typer.Option(help="Default: SEARCH_EVENTS_URL (http://127.0.0.1:8002)")
    ] = None,
) -> None:
    """Rebuild the search index into a fresh one and swap it in; searches keep working.

    The engine is the one SEARCH_SEARCH_URL names (the service's PostgreSQL by default).
    """
    started = time.perf_counter()
    try:
        report = asyncio.run(
            reindex_async(
                SearchSettings(),
                source=source,
                kafka_bootstrap=kafka_bootstrap,
                events_url=events_url,
            )
        )
    except DatabaseUnreachable as error:
        typer.secho(
            f"cannot reach the search database at {error}; start `make dev`, "
            "or set SEARCH_DATABASE_URL",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from None
    console.print(
        f"rebuilt {report.index}: {report.loaded:,} entries from {source.value}, "
        f"{report.carried_over:,} carried over from the live index, "
        f"in {time.perf_counter() - started:.1f} s"
    )
