"""The supervisor with real, tiny child processes: restarts, backoff, health, clean stops."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import psutil

from marquee_cli.supervisor import Backoff, Health, ProcessSpec, ProcessState, Supervisor
from marquee_testing.localinfra import free_port

StillRunning = Callable[..., list[psutil.Process]]  # the conftest fixture
FAST = Backoff(initial=0.05, factor=2.0, cap=0.4, reset_after=30.0)


def python(code: str, log: Path, *, name: str = "child", port: int | None = None) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-c", textwrap.dedent(code)],
        env=dict(os.environ),
        log_path=log,
        port=port,
    )


@asynccontextmanager
async def supervising(supervisor: Supervisor) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def until(condition: Callable[[], bool], *, timeout: float, message: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        await asyncio.sleep(0.02)


def test_backoff_doubles_per_crash_in_a_row_and_is_capped() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, cap=10.0)
    delays = [backoff.delay(crashes) for crashes in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


async def test_a_crashing_child_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []

    def record(state: ProcessState, message: str) -> None:
        events.append((state.name, message))

    spec = python("import sys; sys.exit(3)", tmp_path / "crasher.log", name="crasher")
    supervisor = Supervisor([spec], backoff=FAST, on_event=record)
    state = supervisor.states["crasher"]
    async with supervising(supervisor):
        await until(lambda: state.restarts >= 5, timeout=20, message="four restarts")
        assert state.last_exit == 3
        assert state.crashes_in_a_row >= 4
    assert state.health is Health.STOPPED
    delays = [
        float(message.rsplit("restarting in ", 1)[1].split("s", 1)[0])
        for name, message in events
        if "restarting in" in message
    ]
    assert delays[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert "marquee: starting" in (tmp_path / "crasher.log").read_text()


async def test_stop_kills_a_child_that_ignores_sigterm_and_its_own_children(
    tmp_path: Path, still_running: StillRunning
) -> None:
    code = f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(600)"])
        print(f"spawned:{{grandchild.pid}}", flush=True)
        time.sleep(600)
    """
    log = tmp_path / "stubborn.log"
    supervisor = Supervisor([python(code, log, name="stubborn")], stop_timeout=0.5)
    state = supervisor.states["stubborn"]
    async with supervising(supervisor):
        await until(
            lambda: log.exists() and re.search(r"spawned:\d+", log.read_text()) is not None,
            timeout=20,
            message="grandchild",
        )
        assert state.pid is not None
        child = psutil.Process(state.pid)
        family = [child, *child.children(recursive=True)]
        assert len(family) == 2
    assert state.last_exit == -9  # SIGTERM was ignored, so SIGKILL after stop_timeout
    assert not still_running(family, timeout=5)


async def test_health_follows_the_childs_healthz(tmp_path: Path) -> None:
    port = free_port()
    code = f"""
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Health(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/healthz" else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        HTTPServer(("127.0.0.1", {port}), Health).serve_forever()
    """
    spec = python(code, tmp_path / "web.log", name="web", port=port)
    supervisor = Supervisor([spec], health_interval=0.1)
    state = supervisor.states["web"]
    async with supervising(supervisor):
        await until(lambda: state.health is Health.HEALTHY, timeout=20, message="healthy")
        assert state.restarts == 0
        assert state.uptime() is not None
    assert state.health is Health.STOPPED


async def test_a_child_that_cannot_start_is_retried_not_fatal(tmp_path: Path) -> None:
    missing = "/nonexistent/marquee-test-binary"
    spec = ProcessSpec("ghost", [missing], dict(os.environ), tmp_path / "ghost.log")
    supervisor = Supervisor([spec], backoff=FAST)
    state = supervisor.states["ghost"]
    async with supervising(supervisor):
        await until(lambda: state.restarts >= 2, timeout=20, message="retried")
    assert state.last_exit == 127
    assert "could not start" in (tmp_path / "ghost.log").read_text()
