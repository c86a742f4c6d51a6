from __future__ import annotations

from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from marquee_platform.errors import Conflict, Gone, NotFound, RateLimited
from marquee_platform.problems import install_problem_handlers
from marquee_platform.settings import ServiceSettings


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"


def test_service_prefix_wins_over_the_shared_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_KAFKA_BOOTSTRAP", "shared:9092")
    monkeypatch.setenv("MARQUEE_REDIS_URL", "redis://shared:6379/0")
    monkeypatch.setenv("EXAMPLE_REDIS_URL", "redis://own:6379/0")
    settings = ExampleSettings()
    assert settings.kafka_bootstrap == "shared:9092"
    assert settings.redis_url == "redis://own:6379/0"


class Ticket(BaseModel):
    quantity: int = Field(ge=1, le=10)
    email: str


def app_raising() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/tickets")
    async def create(ticket: Ticket) -> Ticket:
        return ticket

    @app.get("/errors/{kind}")
    async def fail(kind: str) -> None:
        errors = {
            "conflict": Conflict("seat A-12 is already held; pick another seat", seat="A-12"),
            "gone": Gone("your hold expired; hold the seats again"),
            "missing": NotFound("there is no order 42"),
            "limited": RateLimited("slow down", retry_after_seconds=7),
            "bug": RuntimeError("boom: password=hunter2"),
        }
        raise errors[kind]

    return app


async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_raising(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_validation_errors_name_each_bad_field() -> None:
    response = await call("POST", "/tickets", json={"quantity": 50})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"quantity", "email"}
    assert "body quantity" in problem["detail"]


@pytest.mark.parametrize(
    ("kind", "status", "text"),
    [
        ("conflict", 409, "already held"),
        ("gone", 410, "hold expired"),
        ("missing", 404, "no order 42"),
        ("limited", 429, "slow down"),
    ],
)
async def test_domain_errors_map_to_statuses(kind: str, status: int, text: str) -> None:
    response = await call("GET", f"/errors/{kind}")
    assert response.status_code == status
    assert text in response.json()["detail"]
    if kind == "limited":
        assert response.headers["retry-after"] == "7"
    if kind == "conflict":
        assert response.json()["seat"] == "A-12"


async def test_unexpected_errors_are_500_problems_that_leak_nothing() -> None:
    response = await call("GET", "/errors/bug")
    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert response.json()["type"].endswith("internal-error")
