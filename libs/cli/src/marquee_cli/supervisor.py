"""Keep a set of child processes running: restart with backoff, probe health, stop cleanly.

Each child runs in its own process group (its own session), so a Ctrl-C in the terminal
reaches only ``marquee dev``, which then stops the children in order, and so stopping a
child also stops whatever it forked. Children are stopped by PID, never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx

from marquee_testing.localinfra import die_with_parent


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    port: int | None = None
    """An HTTP port answering ``health_path`` when the process is healthy."""
    health_path: str = "/healthz"
    cwd: Path | None = None
    pass_fds: tuple[int, ...] = ()
    """File descriptors the child inherits (a listening socket several replicas share)."""

    @property
    def health_url(self) -> str | None:
        return None if self.port is None else f"http://127.0.0.1:{self.port}{self.health_path}"


@dataclass(frozen=True)
class Backoff:
    """Delay before restarting a crashed process: doubles per crash in a row, capped.

    A process that ran ``reset_after`` seconds before crashing starts again from
    ``initial``: it was working, so restarting it quickly is the right guess.
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 10.0
    reset_after: float = 30.0

    def delay(self, crashes_in_a_row: int) -> float:
        return min(self.cap, self.initial * self.factor ** max(0, crashes_in_a_row - 1))


class Health(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    RUNNING = "running"
    """Alive, with no health endpoint to ask."""
    BACKOFF = "waiting to restart"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ProcessState:
    spec: ProcessSpec
    pid: int | None = None
    started_at: float | None = None
    """``time.monotonic()`` of the current run's start."""
    restarts: int = 0
    last_exit: int | None = None
    """The last exit code; negative for a signal, as ``subprocess`` reports it."""
    health: Health = Health.STARTING
    crashes_in_a_row: int = 0
    restart_at: float | None = None
    ever_healthy_since_start: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    def uptime(self, now: float | None = None) -> float | None:
        if self.pid is None or self.started_at is None:
            return None
        return (now if now is not None else time.monotonic()) - self.started_at


EventHandler = Callable[[ProcessState, str], None]


@dataclass
class Supervisor:
    """Runs every spec until :meth:`run`'s ``stop`` is set, then stops them all.

    ``on_event(state, message)`` hears about starts, exits, restarts and health changes
    (``marquee dev --no-live`` prints them; the live table reads :attr:`states`).
    """

    specs: Sequence[ProcessSpec]
    backoff: Backoff = field(default_factory=Backoff)
    stop_timeout: float = 10.0
    health_interval: float = 1.0
    on_event: EventHandler | None = None
    states: dict[str, ProcessState] = field(init=False)
    _processes: dict[str, asyncio.subprocess.Process] = field(init=False, default_factory=dict)
    _stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _force: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.states = {spec.name: ProcessState(spec) for spec in self.specs}

    async def run(self, stop: asyncio.Event) -> None:
        keepers = [asyncio.create_task(self._keep_running(state)) for state in self.states.values()]
        prober = asyncio.create_task(self._probe_health())
        try:
            await stop.wait()
        finally:
            self._stopping.set()
            prober.cancel()
            # Every keeper stops its own child (SIGTERM, then SIGKILL after stop_timeout).
            await asyncio.gather(*keepers, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await prober

    def force(self) -> None:
        """Skip the rest of the grace period: SIGKILL whatever is still stopping."""
        self._force.set()

    def kill_now(self) -> None:
        """Synchronous last resort (atexit): SIGKILL every child group still running."""
        for process in list(self._processes.values()):
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGKILL)

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self._processes.items()}

    # --- one child ------------------------------------------------------------------------

    async def _keep_running(self, state: ProcessState) -> None:
        while not self._stopping.is_set():
            process = await self._spawn(state)
            started = time.monotonic()
            if process is None:
                code: int | None = 127
            else:
                code = await self._wait_or_stop(state, process)
                # Anything the child forked dies with it (same process group).
                _signal_group(process.pid, signal.SIGKILL)
                self._processes.pop(state.name, None)
            state.pid = None
            state.started_at = None
            state.last_exit = code
            if self._stopping.is_set():
                state.health = Health.STOPPED
                self._emit(state, f"stopped (exit code {code})")
                return
            ran = time.monotonic() - started
            state.crashes_in_a_row = (
                1 if ran >= self.backoff.reset_after else state.crashes_in_a_row + 1
            )
            delay = self.backoff.delay(state.crashes_in_a_row)
            state.health = Health.BACKOFF
            state.restart_at = time.monotonic() + delay
            self._emit(
                state,
                f"exited with code {code} after {ran:.1f}s; restarting in {delay:.2f}s "
                f"(log: {state.spec.log_path})",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            state.restart_at = None
            if self._stopping.is_set():
                state.health = Health.STOPPED
                return
            state.restarts += 1

    async def _spawn(self, state: ProcessState) -> asyncio.subprocess.Process | None:
        spec = state.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n--- {stamp} marquee: starting {shlex.join(spec.argv)}\n".encode())
            log.flush()
            try:
                process = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(spec.env),
                    cwd=spec.cwd,
                    start_new_session=True,
                    pass_fds=spec.pass_fds,
                    # The event loop runs on the main thread, so the child dies with
                    # marquee itself even if it is SIGKILLed (see die_with_parent).
                    preexec_fn=die_with_parent(signal.SIGTERM),
                )
            except OSError as exc:
                log.write(f"--- marquee: could not start: {exc}\n".encode())
                self._emit(state, f"could not start: {exc}")
                return None
        self._processes[state.name] = process
        state.pid = process.pid
        state.started_at = time.monotonic()
        state.ever_healthy_since_start = False
        state.health = Health.STARTING if spec.port is not None else Health.RUNNING
        self._emit(state, f"started (pid {process.pid})")
        return process

    async def _wait_or_stop(self, state: ProcessState, process: asyncio.subprocess.Process) -> int:
        """The child's exit code: when it exits by itself, or after we stopped it."""
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done():
            return exited.result()
        state.health = Health.STOPPING
        _signal_group(process.pid, signal.SIGTERM)
        forced = asyncio.create_task(self._force.wait())
        await asyncio.wait(
            {exited, forced}, timeout=self.stop_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        forced.cancel()
        if not exited.done():
            self._emit(state, f"did not stop within {self.stop_timeout:.0f}s; killing it")
            _signal_group(process.pid, signal.SIGKILL)
        return await exited

    # --- health -----------------------------------------------------------------------------

    async def _probe_health(self) -> None:
        # trust_env=False: an HTTP(S)_PROXY in the environment must not see 127.0.0.1 probes.
        async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
            while True:
                probes = [
                    self._probe(client, state)
                    for state in self.states.values()
                    if state.spec.health_url is not None and state.pid is not None
                ]
                await asyncio.gather(*probes)
                await asyncio.sleep(self.health_interval)

    async def _probe(self, client: httpx.AsyncClient, state: ProcessState) -> None:
        pid, url = state.pid, state.spec.health_url
        assert url is not None
        try:
            healthy = (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if state.pid != pid or state.health in (Health.STOPPING, Health.STOPPED):
            return  # the answer is about a run that has ended since
        if healthy:
            new = Health.HEALTHY
            state.ever_healthy_since_start = True
        else:
            new = Health.UNHEALTHY if state.ever_healthy_since_start else Health.STARTING
        if new != state.health:
            state.health = new
            if new is not Health.STARTING:
                self._emit(state, f"{new} ({url})")

    def _emit(self, state: ProcessState, message: str) -> None:
        if self.on_event is None:
            return
        # A listener that fails (stdout piped into a closed `head`) must not stop the
        # supervision of a child, least of all its shutdown.
        with contextlib.suppress(Exception):
            self.on_event(state, message)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
