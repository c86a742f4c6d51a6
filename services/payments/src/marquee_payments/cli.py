"""``marquee payments …``: the payments service's commands (entry point
``marquee.commands``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from marquee_payments.providers_factory import build_provider, close_provider
from marquee_payments.reconcile import Report, reconcile
from marquee_payments.settings import PaymentsSettings
from marquee_platform.clock import utc_now
from marquee_platform.db import Database

app = typer.Typer(help="Payments: reconcile with the provider.", no_args_is_help=True)
console = Console()


async def reconcile_async(
    settings: PaymentsSettings, *, since: datetime, grace: timedelta
) -> Report:
    database = Database(settings.database_url, pool_size=2, application_name="marquee-payments-cli")
    provider = build_provider(settings, database)
    try:
        async with database.reading() as session:
            return await reconcile(
                session=session, provider=provider, since=since, now=utc_now(), grace=grace
            )
    finally:
        await close_provider(provider)
        await database.dispose()


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date or time: give one like 2026-12-01 or 2026-12-01T18:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("reconcile")
def reconcile_command(
    since: Annotated[
        str, typer.Option("--since", help="From when (ISO 8601; UTC unless a zone is given)")
    ],
    grace_seconds: Annotated[
        int,
        typer.Option("--grace-seconds", help="Younger charges and refunds are still settling"),
    ] = 120,
) -> None:
    """List the provider's payments and refunds since a time and compare them with the
    ledger and the orders; every difference is named. Exit status 1 when there is one."""
    report = asyncio.run(
        reconcile_async(
            PaymentsSettings(), since=_since(since), grace=timedelta(seconds=grace_seconds)
        )
    )
    console.print(
        f"provider: {report.provider_payments} payments, {report.provider_refunds} refunds; "
        f"ours: {report.payments} payments since {report.since.isoformat()}"
    )
    if report.clean:
        console.print("[green]no differences[/green]")
        return
    table = Table("difference", "order", "provider id", "detail")
    for difference in report.differences:
        table.add_row(
            difference.kind,
            str(difference.order_id or "—"),
            difference.provider_id or "—",
            difference.detail,
        )
    console.print(table)
    console.print(f"[red]{len(report.differences)} difference(s)[/red]")
    raise typer.Exit(1)
