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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
from marquee_testing.localinfra import port_open

WORKER_METRICS_PORT = 9100
"""The relay serves /metrics here; a service's consumers at 9100 + its port's last digits."""


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    port_offset: int = 0
    live: bool = True
    postgres_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap: str | None = None


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
        if self.options.live:
            await self._supervise_live()
        else:
            await self.supervisor.run(self.stop)

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
            f"{spec.name} {self._port(spec)}"
            for spec in specs.values()
            if port_open("127.0.0.1", self._port(spec))
        ]
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

    def _process_specs(
        self, specs: dict[str, ServiceSpec], urls: dict[Piece, str]
    ) -> list[ProcessSpec]:
        env = self._child_environment(specs, urls)
        python = sys.executable
        processes = [
            ProcessSpec(
                name=spec.name,
                argv=[
                    *(python, "-m", "uvicorn", "--factory", spec.app_factory),
                    *("--host", "127.0.0.1", "--port", str(self._port(spec))),
                    # X-Forwarded-For is the services' to judge (marquee_platform.forwarding):
                    # uvicorn would believe any from 127.0.0.1, which every client here is.
                    "--no-proxy-headers",
                    # Open event streams never finish by themselves: bound the wait on Ctrl-C.
                    *("--timeout-graceful-shutdown", "5"),
                ],
                env=env,
                log_path=self.logs / f"{spec.name}.log",
                port=self._port(spec),
            )
            for spec in specs.values()
        ]
        with_database = [spec for spec in specs.values() if spec.has_database]
        if with_database:
            relay_argv = [python, "-m", "marquee_platform.relay"]
            for spec in with_database:
                relay_url = relay_database_url(urls[Piece.POSTGRES], spec.name)
                relay_argv += ["--database-url", relay_url, "--name", relay_name(spec.name)]
            relay_argv += ["--kafka-bootstrap", urls[Piece.KAFKA]]
            relay_argv += ["--log-format", "json" if logs_as_json(env) else "text"]
            relay_argv += ["--metrics-port", str(WORKER_METRICS_PORT + self.options.port_offset)]
            processes.append(ProcessSpec("relay", relay_argv, env, self.logs / "relay.log"))
        for spec in specs.values():
            if spec.consumer_factory is not None:
                name = f"{spec.name}-consumer"
                argv = [python, "-m", "marquee_cli", "consume", "--service", spec.name]
                argv += [
                    "--metrics-port",
                    str(WORKER_METRICS_PORT + spec.dev_port % 100 + self.options.port_offset),
                ]
                processes.append(ProcessSpec(name, argv, env, self.logs / f"{name}.log"))
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
        if "payments" in specs:
            env.setdefault("PAYMENTS_SIMULATOR_ENABLED", "true")
            env["PAYMENTS_SIMULATOR_WEBHOOK_URL"] = (
                f"http://127.0.0.1:{self._port(specs['payments'])}"
                "/api/v1/payments/webhooks/simulated"
            )
        env["GATEWAY_SERVICE_URLS"] = json.dumps(
            {
                spec.name: f"http://127.0.0.1:{self._port(spec)}"
                for spec in specs.values()
                if spec.name != "gateway"
            }
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
        for column in ("name", "pid", "port", "health", "restarts", "uptime", "last exit"):
            table.add_column(column, justify="left" if column in ("name", "health") else "right")
        for state in self.supervisor.states.values():
            health = Text(str(state.health), style=_HEALTH_STYLES.get(state.health, ""))
            if state.health is Health.BACKOFF and state.restart_at is not None:
                health.append(f" ({max(0.0, state.restart_at - now):.0f}s)")
            table.add_row(
                state.name,
                str(state.pid or "-"),
                str(state.spec.port or "-"),
                health,
                str(state.restarts),
                format_duration(state.uptime(now)),
                "-" if state.last_exit is None else str(state.last_exit),
            )
        lines: list[Table | Text] = [table, Text(f"logs: {self.logs}/<name>.log", style="dim")]
        gateway = self.supervisor.states.get("gateway")
        if gateway is not None and gateway.health is Health.HEALTHY:
            lines.append(Text(f"gateway: http://127.0.0.1:{gateway.spec.port}", style="bold"))
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
