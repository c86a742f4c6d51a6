"""``marquee dev`` end to end: every service healthy, then Ctrl-C leaves nothing behind.

It runs the real command as a subprocess on shifted ports (so it can run beside a
developer's own ``marquee dev``), with the machine's PostgreSQL and Redis and no Kafka
URL, so it starts the tansu broker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from marquee_cli.infra import DATABASE_PREFIX_ENV, KAFKA_ENV, ProcessRecord, database_name
from marquee_platform.db import to_libpq_dsn
from marquee_platform.migrations import drop_database
from marquee_platform.service import discover_services
from marquee_testing.fixtures import database_url_for
from marquee_testing.localinfra import die_with_parent, port_open
from marquee_testing.waiting import wait_until

HEALTHY_WITHIN = 180.0
"""Every service healthy and the gateway reporting everything up: about 60 s alone on two
cores, but twice that beside the rest of the suite on a busy machine (CI saw 90 s pass)."""


def free_offset(ports: list[int]) -> int:
    """A port offset (300 + random) at which every dev port and the broker's are free."""
    for _ in range(50):
        offset = random.randrange(300, 900)
        wanted = [port + offset for port in ports] + [9092 + offset]
        if not any(port_open("127.0.0.1", port) for port in wanted):
            return offset
    raise AssertionError("found no port offset with every dev port free")


def platform_ready(client: httpx.Client, port: int, services: set[str]) -> bool:
    """The gateway's /readyz answers 200 and names every service and infrastructure piece."""
    try:
        response = client.get(f"http://127.0.0.1:{port}/readyz")
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    checks = response.json()["checks"]
    expected = {f"service:{name}" for name in services} | {"redis", "kafka"}
    return expected <= set(checks) and all(c["status"] == "up" for c in checks.values())


def healthy(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def descendants(pid: int) -> set[ProcessRecord]:
    """Every process below ``pid``, with its start time to rule out PID reuse."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    found = (ProcessRecord.of("child", child.pid) for child in children)
    return {record for record in found if record is not None}


def label(process: psutil.Process) -> str:
    """A service's name from its uvicorn command line; else the program's name."""
    argv = process.cmdline()
    if "--factory" in argv:
        return argv[argv.index("--factory") + 1].split(".")[0].removeprefix("marquee_")
    if "marquee_platform.relay" in argv:
        return "relay"
    return Path(argv[0]).name if argv else str(process.pid)


async def existing_databases(postgres_url: str) -> set[str]:
    connection = await asyncpg.connect(to_libpq_dsn(postgres_url), timeout=10)
    try:
        rows = await connection.fetch("SELECT datname FROM pg_database")
    finally:
        await connection.close()
    return {row["datname"] for row in rows}


async def verification_link_in_dev_mail(gateway: str, *, timeout: float = 90.0) -> str:
    """A new account's verification link, as a developer finds it: auth publishes the
    token, notifications mails it to the dev SMTP sink, the dev mail page shows it."""
    address = f"dev-{uuid.uuid4().hex[:10]}@example.org"
    async with httpx.AsyncClient(base_url=gateway, timeout=10.0, trust_env=False) as client:
        registered = await client.post(
            "/api/v1/auth/register",
            json={"email": address, "password": "correct horse battery staple", "name": "Dev"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert registered.status_code == 201, registered.text
        links: list[str] = []

        async def mailed() -> bool:
            outbox = await client.get("/api/v1/notifications/dev/outbox", params={"to": address})
            assert outbox.status_code == 200, outbox.text
            links[:] = [
                link
                for item in outbox.json()["items"]
                for link in item["links"]
                if "/verify-email?token=" in link
            ]
            return bool(links)

        await wait_until(
            mailed, timeout=timeout, message=f"a verification mail for {address}", interval=0.5
        )
        page = await client.get("/api/v1/notifications/dev/mail")
        assert links[0].replace("&", "&amp;") in page.text
        return links[0]


async def test_dev_runs_every_service_and_stops_cleanly_on_sigint(
    tmp_path: Path, postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = discover_services()
    offset = free_offset([spec.dev_port for spec in specs.values()])
    # Databases of this test's own: never a developer's marquee_<service> databases.
    prefix = f"devtest_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(DATABASE_PREFIX_ENV, prefix)
    env = {key: value for key, value in os.environ.items() if key != KAFKA_ENV}
    output = tmp_path / "dev.out"
    command = [
        *(sys.executable, "-m", "marquee_cli", "dev", "--no-live"),
        *("--port-offset", str(offset), "--state-dir", str(tmp_path / "state")),
        *("--postgres-url", postgres_url, "--redis-url", redis_url),
    ]
    started = time.monotonic()
    with output.open("wb") as out:
        dev = await asyncio.create_subprocess_exec(
            *command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # a killed pytest must not leave it running
        )
    seen: set[ProcessRecord] = set()

    def log() -> str:
        return output.read_text(errors="replace")[-6000:]

    try:
        others = {n: s.dev_port + offset for n, s in specs.items() if n != "gateway"}
        gateway_port = specs["gateway"].dev_port + offset
        up: set[str] = set()
        gateway_up = False
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            deadline = started + HEALTHY_WITHIN
            while time.monotonic() < deadline and not (up == set(others) and gateway_up):
                seen |= descendants(dev.pid)
                assert dev.returncode is None, f"marquee dev exited early:\n{log()}"
                up |= {name for name, port in others.items() if healthy(client, port)}
                gateway_up = gateway_up or platform_ready(client, gateway_port, set(others))
                await asyncio.sleep(0.25)
        took = time.monotonic() - started
        assert up == set(others), (
            f"not healthy within {HEALTHY_WITHIN:.0f}s: "
            + ", ".join(sorted(set(others) - up))
            + f"\n{log()}"
        )
        assert gateway_up, f"the gateway's /readyz never reported everything up\n{log()}"
        async with httpx.AsyncClient(trust_env=False) as client:
            relay_metrics = await client.get(f"http://127.0.0.1:{9100 + offset}/metrics")
        assert "marquee_relay_messages_total" in relay_metrics.text
        link = await verification_link_in_dev_mail(f"http://127.0.0.1:{gateway_port}")
        print(f"marquee dev: the verification link reached the dev mail page: {link[:60]}…")
        seen |= descendants(dev.pid)
        rss = {
            label(process): round(process.memory_info().rss / 2**20)
            for record in seen
            if (process := record.alive()) is not None
        }
        print(f"marquee dev: all services healthy after {took:.1f}s; RSS MiB: {rss}")
        assert len(seen) >= len(specs) + 2  # services, relay, tansu

        dev.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(dev.wait(), timeout=60)
        assert code == 0, f"marquee dev exited with {code}:\n{log()}"
    finally:
        if dev.returncode is None:
            dev.kill()
            await asyncio.wait_for(dev.wait(), timeout=10)
        leftovers = [process for record in seen if (process := record.alive()) is not None]
        for process in leftovers:  # never leave them to the next test, even when failing
            with contextlib.suppress(psutil.Error):
                process.kill()

    assert not leftovers, f"still running after marquee dev exited: {leftovers}\n{log()}"
    assert not any(port_open("127.0.0.1", port) for port in [*others.values(), gateway_port])
    databases = await existing_databases(postgres_url)
    wanted = {database_name(name) for name, spec in specs.items() if spec.has_database}
    for name in wanted & databases:
        await drop_database(database_url_for(postgres_url, name))
    assert all(name.startswith(f"{prefix}_") for name in wanted)
    assert wanted <= databases, f"missing databases: {wanted - databases}"
    assert (tmp_path / "state" / "logs" / "auth.log").stat().st_size > 0
    assert not (tmp_path / "state" / "dev.json").exists()
