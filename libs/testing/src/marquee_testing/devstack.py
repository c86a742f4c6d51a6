"""The whole platform as ``marquee dev`` runs it, for failover tests and the scale bench.

``marquee dev --no-live`` runs as a subprocess on shifted ports (a random offset where
every port is free), with its own databases (``MARQUEE_DATABASE_PREFIX``), its own tansu
broker, the machine's PostgreSQL and Redis, and the replica counts asked for. The harness
waits until the gateway's ``/readyz`` reports every service, consumer group and relay up,
reads which child has which PID from ``dev.json`` (so a test can SIGKILL one and watch
the supervisor bring it back), and at the end stops ``marquee dev`` with SIGINT, kills
whatever outlived it, and drops its databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from marquee_platform.db import to_libpq_dsn
from marquee_platform.migrations import drop_database
from marquee_platform.service import discover_services
from marquee_testing.fixtures import database_url_for
from marquee_testing.localinfra import die_with_parent, port_open
from marquee_testing.waiting import wait_until

REPLICA_PORT_STRIDE = 10
"""As in ``marquee_cli.dev``: replica n of a service listens at its port + 10n."""


def free_offset(replicas: Mapping[str, int]) -> int:
    """A port offset at which every port this platform would use is free."""
    specs = discover_services()
    for _ in range(50):
        offset = random.randrange(300, 900)  # noqa: S311 - picking ports
        wanted = [9092 + offset, 9100 + offset]
        for spec in specs.values():
            count = 1 if spec.name == "gateway" else replicas.get(spec.name, 1)
            wanted += [
                spec.dev_port + offset + n * REPLICA_PORT_STRIDE for n in range(max(count, 1))
            ]
            wanted += [9100 + spec.dev_port % 100 + offset + n * 10 for n in range(count)]
        if not any(port_open("127.0.0.1", port) for port in wanted):
            return offset
    raise AssertionError("found no port offset with every port free")


@dataclass
class DevPlatform:
    process: asyncio.subprocess.Process
    offset: int
    state_dir: Path
    output: Path
    prefix: str
    postgres_url: str

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{8000 + self.offset}"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "dev.json").read_text())
        return data

    @property
    def kafka_bootstrap(self) -> str:
        return str(self.state()["urls"]["kafka"])

    def pids(self) -> dict[str, int]:
        """Each supervised child's current PID, by name (``search-2``, ``relay-1``)."""
        return {record["name"]: int(record["pid"]) for record in self.state()["processes"]}

    def database_url(self, service: str) -> str:
        return database_url_for(self.postgres_url, f"{self.prefix}_{service}")

    def log(self, name: str | None = None, tail: int = 6000) -> str:
        path = self.output if name is None else self.state_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    async def readiness(self, client: httpx.AsyncClient) -> dict[str, Any]:
        response = await client.get(f"{self.gateway}/readyz", timeout=5)
        checks: dict[str, Any] = response.json()["checks"]
        return checks


def _everything_up(checks: Mapping[str, Any], replicas: Mapping[str, int]) -> bool:
    if not all(check["status"] == "up" for check in checks.values()):
        return False
    for name, check in checks.items():
        kind, _, target = name.partition(":")
        detail = check.get("detail") or {}
        wanted = replicas.get(target, 1)
        if kind == "service" and detail.get("up") != wanted:
            return False
        if kind == "consumer" and detail.get("replicas") != wanted:
            return False
        if kind == "relay" and detail.get("standby") != replicas.get("relay", 1) - 1:
            return False
    return True


@contextlib.asynccontextmanager
async def running_dev_platform(
    tmp_path: Path,
    *,
    postgres_url: str,
    redis_url: str,
    replicas: Mapping[str, int],
    env: Mapping[str, str] | None = None,
    ready_within: float = 240.0,
) -> AsyncIterator[DevPlatform]:
    """``marquee dev --replicas …`` until every replica of everything reports up."""
    offset = free_offset(replicas)
    prefix = f"devstack_{uuid.uuid4().hex[:8]}"
    child_env = {
        **{key: value for key, value in os.environ.items() if key != "MARQUEE_KAFKA_BOOTSTRAP"},
        "MARQUEE_DATABASE_PREFIX": prefix,
        **(env or {}),
    }
    spec = ",".join(f"{name}={count}" for name, count in replicas.items())
    state_dir = tmp_path / "state"
    output = tmp_path / "dev.out"
    command = [
        *(sys.executable, "-m", "marquee_cli", "dev", "--no-live"),
        *("--port-offset", str(offset), "--state-dir", str(state_dir)),
        *("--postgres-url", postgres_url, "--redis-url", redis_url),
        *(("--replicas", spec) if spec else ()),
    ]
    with output.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # a killed pytest must not leave it running
        )
    platform = DevPlatform(process, offset, state_dir, output, prefix, postgres_url)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            checks: Mapping[str, Any] = {}

            async def everything_up() -> bool:
                nonlocal checks
                if process.returncode is not None:
                    raise AssertionError(f"marquee dev exited early:\n{platform.log()}")
                try:
                    checks = await platform.readiness(client)
                except (httpx.HTTPError, ValueError, KeyError, OSError):
                    return False  # the gateway is not answering yet
                return _everything_up(checks, replicas)

            def what_is_down() -> str:
                down = {n: c for n, c in checks.items() if c.get("status") != "up"}
                return f"everything up; still down: {down}\n{platform.log()}"

            await wait_until(
                everything_up, timeout=ready_within, interval=0.5, message=what_is_down
            )
        yield platform
    finally:
        await _stop(platform)


async def _stop(platform: DevPlatform) -> None:
    process = platform.process
    leftovers: list[int] = []
    with contextlib.suppress(OSError, ValueError, KeyError):
        leftovers = list(platform.pids().values())
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=60)
        except TimeoutError:
            process.kill()
            await process.wait()
    for pid in leftovers:  # nothing outlives the test, even when it failed
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    connection = await asyncpg.connect(to_libpq_dsn(platform.postgres_url), timeout=10)
    try:
        names = [
            row["datname"]
            for row in await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{platform.prefix}_%"
            )
        ]
    finally:
        await connection.close()
    for name in names:
        await drop_database(database_url_for(platform.postgres_url, name))
