"""``marquee waitroom …``: the waitroom's commands (entry point ``marquee.commands``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from marquee_waitroom.verify import verify as verify_order

app = typer.Typer(help="The waiting room: check a queue's fairness.", no_args_is_help=True)
console = Console()


@app.command()
def verify(
    source: Annotated[
        str,
        typer.Argument(
            help="A fairness document: a file, '-' for stdin, or the URL of "
            "GET /api/v1/waitroom/events/{id}/queue/fairness"
        ),
    ],
    ticket: Annotated[str | None, typer.Option(help="Your queue ticket")] = None,
    number: Annotated[int | None, typer.Option(help="The number you were given")] = None,
) -> None:
    """Recompute a pre-queue's order from its revealed seed and check the commitment."""
    try:
        if source.startswith(("http://", "https://")):
            document = httpx.get(source, timeout=10).raise_for_status().json()
        elif source == "-":
            document = json.load(sys.stdin)
        else:
            document = json.loads(Path(source).read_text())
    except (OSError, ValueError, httpx.HTTPError) as error:
        console.print(f"[red]cannot read the fairness document: {error}[/red]")
        raise typer.Exit(2) from None
    if not document.get("revealed"):
        console.print("the seed is not revealed yet: the sale has not started")
        console.print(f"commitment: {document.get('seed_commitment')}")
        raise typer.Exit(1)
    verdict = verify_order(
        seed_hex=document["seed"],
        commitment=document["seed_commitment"],
        pre_queue=document["pre_queue"],
        order=document.get("order"),
        ticket=ticket,
        number=number,
    )
    console.print(f"seed matches its commitment: {verdict.seed_matches}")
    console.print(f"published order recomputed:  {verdict.order_matches}")
    if ticket is not None and ticket in verdict.recomputed:
        console.print(f"your ticket is number {verdict.recomputed.index(ticket) + 1}")
    for problem in verdict.problems:
        console.print(f"[red]{problem}[/red]")
    if not verdict.fair:
        raise typer.Exit(1)
    console.print(f"[green]fair: {len(verdict.recomputed)} pre-queue tickets in order[/green]")
