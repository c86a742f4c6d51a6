"""``/healthz`` says the process is alive; ``/readyz`` says its dependencies answer.

Readiness runs every registered check concurrently with a deadline and reports each one,
so an operator sees which piece is down, not just that something is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

Check = Callable[[], Awaitable[Any]]
"""Raises when the piece is down; what it returns (if not None) is reported as ``detail``."""


@dataclass
class Readiness:
    checks: dict[str, Check] = field(default_factory=dict)
    timeout_seconds: float = 2.0

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def _run(self, check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(check(), timeout=self.timeout_seconds)
        except TimeoutError:
            status: dict[str, Any] = {"status": "down", "error": "timed out"}
        except Exception as exc:
            status = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            status = {"status": "up"}
            if detail is not None:
                status["detail"] = detail
        status["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return status

    async def report(self) -> dict[str, Any]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        return dict(zip(names, results, strict=True))


def database_check(engine: Any) -> Check:
    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def redis_check(client: Any) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def kafka_check(bootstrap: str) -> Check:
    """The broker answers a metadata request."""

    async def check() -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=1500)
        try:
            await admin.start()
            await admin.describe_cluster()
        finally:
            await admin.close()

    return check


def health_router(service: str) -> APIRouter:
    health = APIRouter(tags=["health"])

    @health.get("/healthz", summary="Liveness: the process answers (anyone may call)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @health.get("/readyz", summary="Readiness: each dependency answers (anyone may call)")
    async def readyz(request: Request) -> JSONResponse:
        readiness: Readiness = request.app.state.readiness
        checks = await readiness.report()
        ready = all(result["status"] == "up" for result in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not-ready", "service": service, "checks": checks},
            status_code=200 if ready else 503,
        )

    return health
