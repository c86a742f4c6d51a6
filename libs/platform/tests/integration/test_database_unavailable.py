"""A request that cannot get its database (refused, dropped, the pool exhausted) is a
503 problem with Retry-After — the client may retry — never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sqlalchemy_errors
from sqlalchemy import text

from marquee_platform.app import create_service_app
from marquee_platform.http import WriteSessionDep, router
from marquee_platform.problems import database_unavailable
from marquee_platform.settings import ServiceSettings
from marquee_testing.fixtures import serve_in_thread
from marquee_testing.localinfra import free_port


class DetachedSettings(ServiceSettings):
    service_name: ClassVar[str] = "detached"


def detached_app() -> FastAPI:
    routes = router()

    @routes.post("/write")
    async def write(session: WriteSessionDep) -> dict[str, int]:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    return create_service_app(
        DetachedSettings(
            # Nothing listens there: every connection is refused.
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere",
            log_json=False,
        ),
        title="detached",
        description="test",
        routers=[routes],
        uses_kafka=False,
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_in_thread(detached_app()) as url:
        yield url


async def test_a_refused_database_is_a_503_to_retry(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
        answer = await client.post("/write")
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["Retry-After"] == "2"
    assert answer.json()["type"].endswith("/database-unavailable")
    assert answer.json()["request_id"]


def test_an_exhausted_pool_counts_as_unavailable_and_a_bug_does_not() -> None:
    assert database_unavailable(sqlalchemy_errors.TimeoutError("QueuePool limit reached"))
    assert database_unavailable(ConnectionRefusedError())
    assert not database_unavailable(RuntimeError("a bug"))
    assert not database_unavailable(
        sqlalchemy_errors.IntegrityError("INSERT", {}, Exception("duplicate key"))
    )
