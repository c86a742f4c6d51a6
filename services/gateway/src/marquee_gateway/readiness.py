"""The gateway's readiness: every service's own /readyz plus the shared infrastructure.

A service is ready when at least one of its replicas answers its ``/readyz`` with 200:
the balancer sends requests around the others. When none does, the check fails with each
replica's reason (``search is not ready: 0/2 replicas up; http://…: ConnectError …``).
A service with some replicas down still passes, and its entry's ``detail`` says how many
are up and why the others are not; the gateway also logs each change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx
from fastapi import FastAPI

from marquee_gateway import upstream
from marquee_platform.health import Check

logger = logging.getLogger(__name__)

PROBE_SHARE_OF_DEADLINE = 0.75
"""A replica's probe gets this share of the readiness deadline, so that one replica that
hangs fails on its own instead of taking the whole check (and its healthy peers) down."""


async def replica_problem(
    client: httpx.AsyncClient, base_url: str, *, timeout: float
) -> str | None:
    """Why the replica at ``base_url`` is not ready, or ``None`` if it is."""
    probe = client.build_request("GET", f"{base_url}/readyz", timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            # A pooled connection the service has just closed is not the service being down.
            response = await upstream.send(client, probe, stream=False, retry=True)
    except TimeoutError:
        return "timed out"
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if response.status_code == 200:
        return None
    try:
        checks = response.json().get("checks", {})
        down = {
            piece: result.get("error", "down")
            for piece, result in checks.items()
            if result.get("status") != "up"
        }
    except (ValueError, AttributeError):
        return f"its /readyz answered HTTP {response.status_code}"
    return f"not ready: {down}"


def service_check(
    client: httpx.AsyncClient, name: str, urls: Sequence[str], *, timeout: float = 1.5
) -> Check:
    last_down: dict[str, str] = {}

    async def check() -> dict[str, object]:
        problems = await asyncio.gather(
            *(replica_problem(client, url, timeout=timeout) for url in urls)
        )
        down = {url: problem for url, problem in zip(urls, problems, strict=True) if problem}
        up = len(urls) - len(down)
        summary = f"{up}/{len(urls)} replicas up"
        if down.keys() != last_down.keys():
            if down:
                logger.warning(
                    "service %s: %s; down: %s",
                    name,
                    summary,
                    "; ".join(f"{url}: {problem}" for url, problem in down.items()),
                )
            else:
                logger.info("service %s: %s", name, summary)
        last_down.clear()
        last_down.update(down)
        if not up:
            reasons = "; ".join(f"{url}: {problem}" for url, problem in down.items())
            raise RuntimeError(f"{name} is not ready: {summary}; {reasons}")
        return {"replicas": len(urls), "up": up, **({"down": down} if down else {})}

    return check


async def add_service_checks(app: FastAPI, client: httpx.AsyncClient) -> None:
    timeout = app.state.readiness.timeout_seconds * PROBE_SHARE_OF_DEADLINE
    for name, urls in app.state.settings.service_urls.items():
        app.state.readiness.add(
            f"service:{name}", service_check(client, name, urls, timeout=timeout)
        )
