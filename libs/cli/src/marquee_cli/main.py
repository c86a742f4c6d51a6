"""The ``marquee`` command: run the platform locally, its databases, relays and consumers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from marquee_cli.infra import (
    KAFKA_ENV,
    POSTGRES_ENV,
    REDIS_ENV,
    STATE_DIR_ENV,
    Piece,
    default_state_dir,
    relay_database_url,
    require,
    services_with_database,
)
from marquee_platform.service import ServiceSpec, discover_services

app = typer.Typer(
    name="marquee",
    help="Marquee: run the whole platform locally, migrate its databases, run its workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The services' databases: migrate them, write new revisions.")
app.add_typer(db_app, name="db")


def _add_service_commands() -> None:
    """Services contribute command groups (``marquee auth create-admin``) through the
    ``marquee.commands`` entry point group: a name and a ``typer.Typer``. Before one runs,
    the service's database is found as ``marquee dev`` gives it to the service."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="marquee.commands"):
        app.add_typer(entry.load(), name=entry.name, callback=_use_dev_database_of(entry.name))


def _use_dev_database_of(service: str) -> Callable[[], None]:
    def use_dev_database() -> None:
        from importlib.metadata import entry_points

        from marquee_cli.infra import service_command_environment

        for entry in entry_points(group="marquee.services", name=service):
            spec = entry.load()
            if isinstance(spec, ServiceSpec):
                environ = service_command_environment(spec, os.environ, default_state_dir())
                os.environ.update(environ)

    return use_dev_database


_add_service_commands()

console = Console()

PostgresUrl = Annotated[
    str | None,
    typer.Option(
        "--postgres-url",
        envvar=POSTGRES_ENV,
        help="A PostgreSQL server's URL (any database on it); default: the local one. "
        "'embedded' (dev): start the embedded one even where a local one answers.",
        show_default=False,
    ),
]
RedisUrl = Annotated[
    str | None,
    typer.Option("--redis-url", envvar=REDIS_ENV, help="Redis URL", show_default=False),
]
KafkaBootstrap = Annotated[
    str | None,
    typer.Option(
        "--kafka-bootstrap", envvar=KAFKA_ENV, help="Kafka bootstrap servers", show_default=False
    ),
]
PortOffset = Annotated[
    int,
    typer.Option(
        "--port-offset", help="Added to every dev port (gateway 8000, auth 8001, ...)", min=0
    ),
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar=STATE_DIR_ENV,
        help="Where dev keeps data and logs; default: .marquee/dev/ in the project root.",
        show_default=False,
    ),
]
Services = Annotated[
    list[str] | None,
    typer.Option("--service", "-s", help="A service (repeat for more); default: all."),
]


class RelayModeChoice(StrEnum):
    """marquee_platform.relay.RelayMode, as choices typer can offer."""

    AUTO = "auto"
    CDC = "cdc"
    POLLING = "polling"


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def _service(name: str) -> ServiceSpec:
    specs = discover_services()
    if name not in specs:
        raise _fail(f"unknown service {name!r}; known: {', '.join(specs)}", 2)
    return specs[name]


@app.command()
def dev(
    port_offset: PortOffset = 0,
    no_live: Annotated[
        bool, typer.Option("--no-live", help="Plain log lines instead of the live table (CI).")
    ] = False,
    postgres_url: PostgresUrl = None,
    redis_url: RedisUrl = None,
    kafka_bootstrap: KafkaBootstrap = None,
    state_dir: StateDir = None,
    replicas: Annotated[
        str,
        typer.Option(
            "--replicas",
            envvar="MARQUEE_DEV_REPLICAS",
            help="Processes per service, e.g. search=2,events=2,gateway=2 (its consumers "
            "too; relay=2 adds a standby relay). Replica n listens at the service's port "
            "+ 10n; the gateway's share its port.",
        ),
    ] = "",
) -> None:
    """Run every service, the outbox relay and the consumers on 127.0.0.1 until Ctrl-C.

    Each piece: the URL given, else a server on its usual port, else an embedded one.
    """
    from marquee_cli.dev import DevOptions, parse_replicas, run_dev

    try:
        replica_counts = parse_replicas(replicas, discover_services())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--replicas") from exc
    options = DevOptions(
        state_dir=state_dir or default_state_dir(),
        port_offset=port_offset,
        # Rich's live table only makes sense on a terminal; elsewhere print lines.
        live=not no_live and console.is_terminal,
        postgres_url=postgres_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        replicas=replica_counts,
    )
    raise typer.Exit(run_dev(options, console))


@app.command()
def doctor(
    port_offset: PortOffset = 0,
    postgres_url: PostgresUrl = None,
    redis_url: RedisUrl = None,
    kafka_bootstrap: KafkaBootstrap = None,
) -> None:
    """Check what `make dev` needs; print what is missing and the command that fixes it.

    Exits 1 if something blocks `make dev`.
    """
    from marquee_cli.doctor import diagnose, report

    findings = asyncio.run(
        diagnose(
            postgres_url=postgres_url,
            redis_url=redis_url,
            kafka_bootstrap=kafka_bootstrap,
            port_offset=port_offset,
        )
    )
    raise typer.Exit(report(findings, console))


def _postgres(postgres_url: str | None, state_dir: Path | None) -> str:
    try:
        return require(Piece.POSTGRES, postgres_url, state_dir or default_state_dir())
    except LookupError as exc:
        raise _fail(str(exc)) from exc


@db_app.command("migrate")
def db_migrate(
    service: Services = None, postgres_url: PostgresUrl = None, state_dir: StateDir = None
) -> None:
    """Create each service's database (marquee_<service>) if missing and migrate it to head."""
    from marquee_cli.db import migrate

    try:
        specs = services_with_database(discover_services(), service)
    except LookupError as exc:
        raise _fail(str(exc), 2) from exc
    url = _postgres(postgres_url, state_dir)
    asyncio.run(migrate(specs, url, console.print))


@db_app.command("revision")
def db_revision(
    service: Annotated[str, typer.Option("--service", "-s", help="The service")],
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision does")],
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Diff the models against the database")
    ] = False,
    postgres_url: PostgresUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Write a new Alembic revision in the service's migrations directory."""
    from marquee_cli.db import revision
    from marquee_cli.infra import LOCAL_DEFAULTS

    spec = _service(service)
    if spec.migrations is None:
        raise _fail(f"{service} has no database", 2)
    # Only autogenerate talks to the database; a blank revision needs no server.
    if autogenerate:
        url = _postgres(postgres_url, state_dir)
    else:
        url = postgres_url or LOCAL_DEFAULTS[Piece.POSTGRES].url
    path = asyncio.run(revision(spec, url, message=message, autogenerate=autogenerate))
    console.print(f"wrote {path}")


@app.command()
def relay(
    service: Services = None,
    postgres_url: PostgresUrl = None,
    kafka_bootstrap: KafkaBootstrap = None,
    mode: Annotated[
        RelayModeChoice,
        typer.Option(help="auto: stream (cdc) where wal_level=logical, else poll"),
    ] = RelayModeChoice.AUTO,
    state_dir: StateDir = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on 127.0.0.1 at this port")
    ] = None,
) -> None:
    """Relay the services' outbox rows to Kafka (all services with a database by default)."""
    from marquee_cli.runners import run_relays
    from marquee_platform.metrics import serve_metrics

    try:
        specs = services_with_database(discover_services(), service)
    except LookupError as exc:
        raise _fail(str(exc), 2) from exc
    url = _postgres(postgres_url, state_dir)
    try:
        bootstrap = require(Piece.KAFKA, kafka_bootstrap, state_dir or default_state_dir())
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    targets = {spec.name: relay_database_url(url, spec.name) for spec in specs}
    serve_metrics(metrics_port)
    code = asyncio.run(run_relays(targets, bootstrap, mode=mode.value))
    if code:
        raise typer.Exit(code)


@app.command()
def consume(
    service: Annotated[str, typer.Option("--service", "-s", help="The service")],
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on 127.0.0.1 at this port")
    ] = None,
) -> None:
    """Run the service's Kafka consumers until SIGTERM/SIGINT."""
    from marquee_cli.runners import run_consumer
    from marquee_platform.metrics import serve_metrics

    serve_metrics(metrics_port)

    spec = _service(service)
    if spec.consumer_factory is None:
        raise _fail(f"{service} has no consumers (its ServiceSpec sets no consumer_factory)", 2)
    asyncio.run(run_consumer(spec))


# ---- marquee simulate: models of the platform under load (docs/scaling.md) ---------------

simulate_app = typer.Typer(help="Models of the platform under load (docs/scaling.md).")
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("onsale")
def simulate_onsale(
    fans: Annotated[int, typer.Option(help="Fans arriving for the on-sale", min=0)] = 10_000_000,
    places: Annotated[int, typer.Option(help="Places on sale", min=0)] = 80_000,
    arrival_minutes: Annotated[
        float, typer.Option(help="Minutes over which the fans arrive", min=0)
    ] = 10.0,
    places_per_fan: Annotated[int, typer.Option(help="Places in one fan's order", min=1)] = 2,
    gateway_processes: Annotated[
        int | None, typer.Option(min=0, help="Gateway processes [default: the plan's]")
    ] = None,
    redis_shards: Annotated[
        int | None, typer.Option(min=1, help="Redis Cluster shards [default: the plan's]")
    ] = None,
    payments_workers: Annotated[
        int | None, typer.Option(min=0, help="Payments processes [default: the plan's]")
    ] = None,
    admit_per_minute: Annotated[
        int | None, typer.Option(min=0, help="Waiting-room admissions [default: the plan's]")
    ] = None,
    sections: Annotated[
        int | None,
        typer.Option(min=1, help="Hash tags / Kafka keys per event (1: as built)"),
    ] = None,
    replicas: Annotated[
        list[str] | None,
        typer.Option("--replicas", help="NAME=N for any pool (repeat), e.g. booking=16"),
    ] = None,
    costs: Annotated[
        Path | None, typer.Option(help="JSON object overriding per-step costs (--show-costs)")
    ] = None,
    svg: Annotated[Path | None, typer.Option(help="Write the sell-out curve here")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the arrivals' noise")] = 0,
    table_every: Annotated[
        int | None, typer.Option(min=1, help="Seconds between rows of the curve")
    ] = None,
    show_costs: Annotated[
        bool, typer.Option(help="Print every cost figure and its source first")
    ] = False,
) -> None:
    """Ten million fans, one on-sale: where each step's limit is, and how long the sale takes.

    Defaults are docs/scaling.md's deployment; the last line is RESULT sold_out_s=… .
    """
    from marquee_cli import simulate

    named = {
        "gateway": gateway_processes,
        "redis": redis_shards,
        "payments": payments_workers,
        "admission": admit_per_minute,
        "sections": sections,
    }
    try:
        counts = simulate.parse_replicas(replicas or [])
        counts.update({name: count for name, count in named.items() if count is not None})
        scenario = simulate.Scenario(
            fans=fans,
            places=places,
            places_per_fan=places_per_fan,
            arrival_minutes=arrival_minutes,
            seed=seed,
        )
        simulate.onsale_command(
            scenario=scenario,
            replicas=counts,
            costs_file=costs,
            svg=svg,
            every=table_every,
            show_costs=show_costs,
            out=typer.echo,
        )
    except ValueError as error:
        raise _fail(str(error), 2) from error
