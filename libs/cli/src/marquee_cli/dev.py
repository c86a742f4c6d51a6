"""``marquee dev``: the whole platform on 127.0.0.1, supervised, stopped cleanly.

Order of work: claim the state directory (stopping what a killed predecessor left),
check the ports, pick or start each infrastructure piece, create and migrate every
service's database, then supervise the services, the outbox relay and the consumers
until Ctrl-C / SIGTERM. Shutdown runs in reverse: children first (they hold connections),
then only the embedded servers this run started.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from marquee_cli.infra import (
    DevState,
    Embedded,
    Piece,
    ProcessRecord,
    choose,
    load_dev_state,
    relay_database_url,
    relay_name,
    service_database_url,
    stop_leftovers,
    wal_level,
)
from marquee_cli.runners import logs_as_json
from marquee_cli.supervisor import (
    Health,
    ProcessSpec,
    ProcessState,
    Supervisor,
    format_duration,
)
from marquee_platform.migrations import ensure_database, upgrade_async
from marquee_platform.service import ServiceSpec, discover_services
from marquee_platform.workers import WorkerStatus, read_workers
from marquee_testing.localinfra import port_open

WORKER_METRICS_PORT = 9100
"""The relay serves /metrics here; a service's consumers at 9100 + its port's last digits."""

REPLICA_PORT_STRIDE = 10
"""Replica n (from 0) of a service listens at its port + n * this (search: 8003, 8013, …);
its consumers' metrics likewise. The gateway's replicas share one port instead."""
MAX_REPLICAS = 9
REPLICAS_ENV = "MARQUEE_DEV_REPLICAS"

SMTP_SINK = "smtp-sink"
SMTP_SINK_PORT = 1025
"""Where the development SMTP sink (``marquee_notifications.sink``) listens, plus the port
offset: notifications sends its mail there and ``/api/v1/notifications/dev/mail`` shows it."""
SMTP_URL_ENV = "NOTIFICATIONS_SMTP_URL"


def parse_replicas(text: str, known: Iterable[str]) -> dict[str, int]:
    """``"search=2,gateway=2"`` as ``{"search": 2, "gateway": 2}``; a clear error else.

    A service's count applies to its HTTP processes and to its consumers; ``relay`` is
    the outbox relay (one active, the others standing by)."""
    known = set(known) | {"relay"}
    replicas: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, count = item.partition("=")
        name = name.strip()
        if not equals or not count.strip().isdigit():
            raise ValueError(f"{item!r}: write NAME=COUNT, e.g. search=2")
        if name not in known:
            raise ValueError(f"{name!r} is not a service; known: {', '.join(sorted(known))}")
        number = int(count)
        if not 1 <= number <= MAX_REPLICAS:
            raise ValueError(f"{name}: between 1 and {MAX_REPLICAS} replicas, not {number}")
        replicas[name] = number
    return replicas


def replica_name(name: str, index: int, count: int) -> str:
    """``search`` alone; ``search-1``, ``search-2`` when there are several."""
    return name if count == 1 else f"{name}-{index + 1}"


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    port_offset: int = 0
    live: bool = True
    postgres_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap: str | None = None
    replicas: Mapping[str, int] = field(default_factory=dict)
    """Processes per service (and ``relay``); 1 for any not named."""


class DevError(Exception):
    """Something that stops ``marquee dev`` from starting, with what to do about it."""


def run_dev(options: DevOptions, console: Console) -> int:
    return asyncio.run(_Dev(options, console).run())


class _Dev:
    def __init__(self, options: DevOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.state_dir = options.state_dir.resolve()
        self.logs = self.state_dir / "logs"
        self.stop = asyncio.Event()
        self.embedded = Embedded(self.state_dir)
        self.supervisor: Supervisor | None = None
        self.state: DevState | None = None
        self.started = time.monotonic()
        self.all_healthy_after: float | None = None
        self.first_signal_at: float | None = None
        self.shared_sockets: list[socket.socket] = []
        self.workers: dict[int, WorkerStatus] = {}
        self.dev_mail_url: str | None = None
        """The page listing what the SMTP sink received, when one runs."""

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> int:
        self._install_signal_handlers()
        # finally covers exceptions; atexit covers an exit that skips finally (sys.exit
        # from a thread, an interpreter shutdown); die_with_parent covers SIGKILL.
        atexit.register(self._emergency_stop)
        try:
            await self._start_and_supervise()
        except DevError as exc:
            self.console.print(f"[red]marquee dev: {exc}[/red]")
            return 1
        finally:
            self._shutdown_infrastructure()
            atexit.unregister(self._emergency_stop)
        return 0

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        now = time.monotonic()
        if self.first_signal_at is None:
            self.first_signal_at = now
            self._say(f"{signal.Signals(signum).name}: stopping everything (again to force)")
            self.stop.set()
        elif now - self.first_signal_at > _SAME_SIGNAL_WINDOW and self.supervisor is not None:
            self._say("stopping now: SIGKILL to what is still running")
            self.supervisor.force()

    def _emergency_stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.kill_now()
        self.embedded.stop()

    def _shutdown_infrastructure(self) -> None:
        for listener in self.shared_sockets:
            listener.close()
        self.shared_sockets.clear()
        if self.embedded.pids:
            self._say("stopping the embedded servers: " + ", ".join(self.embedded.pids))
        self.embedded.stop()
        if self.state is not None:  # ours to remove only if we claimed the directory
            with contextlib.suppress(OSError):
                (self.state_dir / "dev.json").unlink()

    async def _start_and_supervise(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        specs = discover_services()
        if not specs:
            raise DevError("no services are installed; run: uv sync --all-packages")
        self._check_ports(specs)
        urls = self._resolve_infrastructure()
        if self.stop.is_set():
            return
        await self._warn_without_logical_replication(urls[Piece.POSTGRES])
        await self._migrate(specs, urls[Piece.POSTGRES])
        if self.stop.is_set():
            return
        processes = self._process_specs(specs, urls)
        self.supervisor = Supervisor(processes, on_event=self._on_process_event)
        self._say(f"logs: {self.logs}/<name>.log")
        if self.dev_mail_url is not None:
            self._say(f"mail sent in dev: {self.dev_mail_url}")
        watcher = asyncio.create_task(self._watch_workers(urls[Piece.REDIS], urls[Piece.KAFKA]))
        try:
            if self.options.live:
                await self._supervise_live()
            else:
                await self.supervisor.run(self.stop)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    # --- before the children --------------------------------------------------------------

    def _claim_state_dir(self) -> None:
        previous = load_dev_state(self.state_dir)
        if previous is not None:
            if previous.owner.alive() is not None and previous.owner.pid != os.getpid():
                raise DevError(
                    f"another marquee dev (pid {previous.owner.pid}) uses {self.state_dir}; "
                    "stop it first, or give this one --state-dir and --port-offset"
                )
            stopped = stop_leftovers(previous)
            if stopped:
                self._say("stopped what a previous marquee dev left running: " + ", ".join(stopped))
        owner = ProcessRecord.of("marquee dev", os.getpid())
        assert owner is not None
        self.state = DevState(owner=owner)
        self.state.save(self.state_dir)

    def _check_ports(self, specs: dict[str, ServiceSpec]) -> None:
        taken = [
            f"{spec.name} {port}"
            for spec in specs.values()
            for port in sorted(set(self._ports(spec)))
            if port_open("127.0.0.1", port)
        ]
        if self._runs_smtp_sink(specs) and port_open("127.0.0.1", self._smtp_sink_port()):
            taken.append(f"{SMTP_SINK} {self._smtp_sink_port()}")
        if taken:
            raise DevError(
                f"ports in use: {', '.join(taken)}. Stop what listens there, or run "
                f"`marquee dev --port-offset {self.options.port_offset + 100}`"
            )

    def _resolve_infrastructure(self) -> dict[Piece, str]:
        given = {
            Piece.POSTGRES: self.options.postgres_url,
            Piece.REDIS: self.options.redis_url,
            Piece.KAFKA: self.options.kafka_bootstrap,
        }
        urls: dict[Piece, str] = {}
        for piece, url in given.items():
            choice = choose(piece, url)
            if choice.url is not None:
                urls[piece] = choice.url
                self._say(f"{piece}: {choice.describe()}")
                continue
            began = time.monotonic()
            try:
                urls[piece] = self.embedded.start(piece, self.options.port_offset)
            except Exception as exc:
                raise DevError(f"could not start the embedded {piece}: {exc}") from exc
            self._say(
                f"{piece}: {urls[piece]} "
                f"(embedded, pid {self.embedded.pids[str(piece)]}, "
                f"started in {time.monotonic() - began:.1f}s)"
            )
            self._record_process(str(piece), self.embedded.pids[str(piece)])
        assert self.state is not None
        self.state.urls = urls
        self.state.save(self.state_dir)
        return urls

    async def _warn_without_logical_replication(self, postgres_url: str) -> None:
        try:
            level = await wal_level(postgres_url)
        except Exception as exc:
            raise DevError(f"PostgreSQL at {postgres_url} does not answer: {exc}") from exc
        if level != "logical":
            self._say(
                f"[yellow]PostgreSQL runs with wal_level={level}, not logical: the outbox "
                "relay falls back to polling. To stream changes instead: ALTER SYSTEM SET "
                "wal_level = logical; then restart PostgreSQL.[/yellow]"
            )

    async def _migrate(self, specs: dict[str, ServiceSpec], postgres_url: str) -> None:
        # One after another: Alembic's `context` and `op` are process-wide proxies, so two
        # upgrades in two threads would step on each other.
        began = time.monotonic()
        for spec in specs.values():
            if spec.migrations is None:
                continue
            if self.stop.is_set():
                return
            url = service_database_url(postgres_url, spec.name)
            try:
                created = await ensure_database(url)
                await upgrade_async(url, spec.migrations)
            except Exception as exc:
                raise DevError(f"migrating {spec.name} failed: {exc}") from exc
            if created:
                self._say(f"{spec.name}: created database {url.rsplit('/', 1)[-1]}")
        self._say(f"databases migrated in {time.monotonic() - began:.1f}s")

    def _port(self, spec: ServiceSpec) -> int:
        return spec.dev_port + self.options.port_offset

    def _runs_smtp_sink(self, specs: Mapping[str, ServiceSpec]) -> bool:
        """Notifications sends to the sink unless the operator named an SMTP server of
        their own (``NOTIFICATIONS_SMTP_URL``, a real provider or a Mailpit): then there is
        nothing for a sink to receive, and its port must not stand in their way."""
        notifications = specs.get("notifications")
        return (
            notifications is not None
            and notifications.has_database  # the sink stores into its database
            and SMTP_URL_ENV not in os.environ
        )

    def _smtp_sink_port(self) -> int:
        return SMTP_SINK_PORT + self.options.port_offset

    def _replicas(self, name: str) -> int:
        return self.options.replicas.get(name, 1)

    def _ports(self, spec: ServiceSpec) -> list[int]:
        """Where each replica of ``spec`` listens: one shared port for the gateway."""
        if spec.name == "gateway":
            return [self._port(spec)] * self._replicas(spec.name)
        return [
            self._port(spec) + index * REPLICA_PORT_STRIDE
            for index in range(self._replicas(spec.name))
        ]

    def _shared_listener(self, port: int) -> int:
        """A listening socket on 127.0.0.1:``port`` that several processes accept from
        (uvicorn ``--fd``): the kernel hands each connection to one of them, and one
        replica dying leaves the port and the others' connections open."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(2048)
        listener.set_inheritable(True)
        self.shared_sockets.append(listener)
        return listener.fileno()

    def _process_specs(
        self, specs: dict[str, ServiceSpec], urls: dict[Piece, str]
    ) -> list[ProcessSpec]:
        env = self._child_environment(specs, urls)
        python = sys.executable
        processes: list[ProcessSpec] = []
        for spec in specs.values():
            ports = self._ports(spec)
            shared_fd = self._shared_listener(ports[0]) if len(set(ports)) < len(ports) else None
            for index, port in enumerate(ports):
                name = replica_name(spec.name, index, len(ports))
                where: tuple[str, ...] = ("--host", "127.0.0.1", "--port", str(port))
                if shared_fd is not None:
                    where = ("--fd", str(shared_fd))
                processes.append(
                    ProcessSpec(
                        name=name,
                        argv=[
                            *(python, "-m", "uvicorn", "--factory", spec.app_factory, *where),
                            # X-Forwarded-For is the services' to judge
                            # (marquee_platform.forwarding): uvicorn would believe any from
                            # 127.0.0.1, which every client here is.
                            "--no-proxy-headers",
                            # Open event streams never end by themselves: bound the wait on
                            # Ctrl-C.
                            *("--timeout-graceful-shutdown", "5"),
                        ],
                        env=env,
                        log_path=self.logs / f"{name}.log",
                        port=port,
                        pass_fds=() if shared_fd is None else (shared_fd,),
                    )
                )
        with_database = [spec for spec in specs.values() if spec.has_database]
        if with_database:
            relay_argv = [python, "-m", "marquee_platform.relay"]
            for spec in with_database:
                relay_url = relay_database_url(urls[Piece.POSTGRES], spec.name)
                relay_argv += ["--database-url", relay_url, "--name", relay_name(spec.name)]
            relay_argv += ["--kafka-bootstrap", urls[Piece.KAFKA]]
            relay_argv += ["--log-format", "json" if logs_as_json(env) else "text"]
            relays = self._replicas("relay")
            for index in range(relays):
                name = replica_name("relay", index, relays)
                metrics_port = WORKER_METRICS_PORT + self.options.port_offset
                metrics_port += index * REPLICA_PORT_STRIDE
                argv = [*relay_argv, "--metrics-port", str(metrics_port)]
                processes.append(ProcessSpec(name, argv, env, self.logs / f"{name}.log"))
        for spec in specs.values():
            if spec.consumer_factory is None:
                continue
            consumers = self._replicas(spec.name)
            for index in range(consumers):
                name = replica_name(f"{spec.name}-consumer", index, consumers)
                metrics_port = WORKER_METRICS_PORT + spec.dev_port % 100 + self.options.port_offset
                metrics_port += index * REPLICA_PORT_STRIDE
                argv = [python, "-m", "marquee_cli", "consume", "--service", spec.name]
                argv += ["--metrics-port", str(metrics_port)]
                processes.append(ProcessSpec(name, argv, env, self.logs / f"{name}.log"))
        if self._runs_smtp_sink(specs):
            # Stored into notifications' own database (its dev_outbox table), which the
            # service reads back for /api/v1/notifications/dev/mail. No health port: the
            # supervisor's probe speaks HTTP; the table shows the sink as running.
            argv = [python, "-m", "marquee_notifications.sink"]
            argv += ["--host", "127.0.0.1", "--port", str(self._smtp_sink_port())]
            argv += ["--database-url", env["NOTIFICATIONS_DATABASE_URL"]]
            argv += ["--log-format", "json" if logs_as_json(env) else "text"]
            processes.append(ProcessSpec(SMTP_SINK, argv, env, self.logs / f"{SMTP_SINK}.log"))
            notifications_port = self._ports(specs["notifications"])[0]
            self.dev_mail_url = (
                f"http://127.0.0.1:{notifications_port}/api/v1/notifications/dev/mail"
            )
        return processes

    def _child_environment(
        self, specs: dict[str, ServiceSpec], urls: dict[Piece, str]
    ) -> dict[str, str]:
        """One environment for every child: each setting has its service's prefix."""
        env = dict(os.environ)
        env.setdefault("MARQUEE_LOG_JSON", "false")  # people read these logs in files
        env["PYTHONUNBUFFERED"] = "1"  # so a log shows a crash's last lines
        env["MARQUEE_REDIS_URL"] = urls[Piece.REDIS]
        env["MARQUEE_KAFKA_BOOTSTRAP"] = urls[Piece.KAFKA]
        if "auth" in specs:
            auth_port = self._port(specs["auth"])
            env["MARQUEE_JWKS_URL"] = f"http://127.0.0.1:{auth_port}/.well-known/jwks.json"
        for spec in specs.values():
            if spec.has_database:
                database_url = service_database_url(urls[Piece.POSTGRES], spec.name)
                env[f"{spec.name.upper()}_DATABASE_URL"] = database_url
        # Services that call another while a person waits (booking reads a hold from
        # inventory, payments an order from booking) find it here; the simulated payment
        # provider posts its webhooks to payments' own port.
        # (Only these two: MARQUEE_SEARCH_URL, say, names the search *engine*.)
        for name in ("inventory", "booking"):
            if name in specs:
                env[f"MARQUEE_{name.upper()}_URL"] = f"http://127.0.0.1:{self._port(specs[name])}"
        if "notifications" in specs:
            # The operator's own NOTIFICATIONS_SMTP_URL wins, and then no sink runs (see
            # _runs_smtp_sink); /api/v1/notifications/dev/mail shows what a sink received.
            env.setdefault(SMTP_URL_ENV, f"smtp://127.0.0.1:{self._smtp_sink_port()}")
            env["NOTIFICATIONS_DEV_OUTBOX"] = "true"
        if "payments" in specs:
            env.setdefault("PAYMENTS_SIMULATOR_ENABLED", "true")
            env["PAYMENTS_SIMULATOR_WEBHOOK_URL"] = (
                f"http://127.0.0.1:{self._port(specs['payments'])}"
                "/api/v1/payments/webhooks/simulated"
            )
        service_urls: dict[str, str | list[str]] = {}
        for spec in specs.values():
            if spec.name == "gateway":
                continue
            replica_urls = [f"http://127.0.0.1:{port}" for port in self._ports(spec)]
            service_urls[spec.name] = replica_urls[0] if len(replica_urls) == 1 else replica_urls
        # The gateway balances over every replica's URL (marquee_gateway.balancer).
        env["GATEWAY_SERVICE_URLS"] = json.dumps(service_urls)
        # ... and its /readyz reports the relays by the names they run under here.
        env["GATEWAY_EXPECTED_RELAYS"] = json.dumps(
            [relay_name(spec.name) for spec in specs.values() if spec.has_database]
        )
        return env

    # --- while supervising ----------------------------------------------------------------

    def _record_process(self, name: str, pid: int) -> None:
        if self.state is None:
            return
        record = ProcessRecord.of(name, pid)
        if record is not None:
            self.state.processes[name] = record
            self.state.save(self.state_dir)

    def _on_process_event(self, state: ProcessState, message: str) -> None:
        if state.pid is not None and message.startswith("started"):
            self._record_process(state.name, state.pid)
        if not self.options.live:
            self._say(f"{state.name}: {escape(message)}")
        self._note_all_healthy()

    def _note_all_healthy(self) -> None:
        if self.all_healthy_after is not None or self.supervisor is None:
            return
        services = [s for s in self.supervisor.states.values() if s.spec.port is not None]
        if all(s.health is Health.HEALTHY for s in services):
            self.all_healthy_after = time.monotonic() - self.started
            gateway = next((s for s in services if s.name == "gateway"), None)
            where = f"; the gateway: http://127.0.0.1:{gateway.spec.port}" if gateway else ""
            message = f"all {len(services)} services healthy after {self.all_healthy_after:.1f}s"
            if not self.options.live:
                self._say(message + where)

    async def _watch_workers(self, redis_url: str, bootstrap: str) -> None:
        """Keep :attr:`workers` (what each relay and consumer reports of itself, by pid)
        fresh for the table."""
        client = redis_asyncio.Redis.from_url(redis_url, socket_timeout=1.0)
        try:
            while True:
                with contextlib.suppress(RedisError, OSError):
                    self.workers = {
                        status.pid: status
                        for status in await read_workers(client, bootstrap=bootstrap)
                    }
                await asyncio.sleep(1.0)
        finally:
            await client.aclose()

    def _smtp_sink_url(self) -> str:
        """What the sink's row shows in the table's work column: where it listens."""
        return f"smtp://127.0.0.1:{self._smtp_sink_port()}"

    def _work(self, pid: int | None) -> str:
        """What a worker process holds: a consumer's partitions and lag, a relay's role."""
        status = self.workers.get(pid) if pid is not None else None
        if status is None:
            return "-"
        if status.kind == "relay":
            return status.role
        return f"{len(status.partitions)} partitions, lag {status.lag or 0}"

    async def _supervise_live(self) -> None:
        assert self.supervisor is not None
        with Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=2,
            redirect_stdout=False,
            redirect_stderr=False,
        ):
            await self.supervisor.run(self.stop)

    def _render(self) -> Group:
        assert self.supervisor is not None
        now = time.monotonic()
        table = Table(title="marquee dev", title_justify="left", expand=False)
        columns = ("name", "pid", "port", "health", "work", "restarts", "uptime", "last exit")
        for column in columns:
            left = column in ("name", "health", "work")
            table.add_column(column, justify="left" if left else "right")
        for state in self.supervisor.states.values():
            health = Text(str(state.health), style=_HEALTH_STYLES.get(state.health, ""))
            if state.health is Health.BACKOFF and state.restart_at is not None:
                health.append(f" ({max(0.0, state.restart_at - now):.0f}s)")
            table.add_row(
                state.name,
                str(state.pid or "-"),
                str(state.spec.port or "-"),
                health,
                self._smtp_sink_url() if state.name == SMTP_SINK else self._work(state.pid),
                str(state.restarts),
                format_duration(state.uptime(now)),
                "-" if state.last_exit is None else str(state.last_exit),
            )
        lines: list[Table | Text] = [table, Text(f"logs: {self.logs}/<name>.log", style="dim")]
        gateway = self.supervisor.states.get("gateway")
        if gateway is not None and gateway.health is Health.HEALTHY:
            lines.append(Text(f"gateway: http://127.0.0.1:{gateway.spec.port}", style="bold"))
        if self.dev_mail_url is not None:
            lines.append(Text(f"mail sent in dev: {self.dev_mail_url}", style="dim"))
        if self.all_healthy_after is not None:
            lines.append(Text(f"all healthy after {self.all_healthy_after:.1f}s", style="dim"))
        lines.append(Text("Ctrl-C stops everything", style="dim"))
        return Group(*lines)

    def _say(self, message: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)


_SAME_SIGNAL_WINDOW = 1.0
"""A second signal this soon is the same request delivered twice (``uv run`` forwards
SIGTERM that a process manager also sends to the whole group), not "force it"."""

_HEALTH_STYLES = {
    Health.HEALTHY: "green",
    Health.RUNNING: "green",
    Health.STARTING: "yellow",
    Health.UNHEALTHY: "red",
    Health.BACKOFF: "red",
    Health.STOPPING: "yellow",
    Health.STOPPED: "dim",
}
