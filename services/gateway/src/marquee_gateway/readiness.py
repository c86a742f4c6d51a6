"""The gateway's readiness: every service's own /readyz plus the shared infrastructure."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from marquee_gateway import upstream


def service_check(client: httpx.AsyncClient, name: str, base_url: str) -> Any:
    async def check() -> None:
        probe = client.build_request("GET", f"{base_url}/readyz", timeout=2.0)
        # A pooled connection the service has just closed is not the service being down.
        response = await upstream.send(client, probe, stream=False, retry=True)
        if response.status_code != 200:
            down = {
                piece: result.get("error", "down")
                for piece, result in response.json().get("checks", {}).items()
                if result.get("status") != "up"
            }
            raise RuntimeError(f"{name} is not ready: {down}")

    return check


async def add_service_checks(app: FastAPI, client: httpx.AsyncClient) -> None:
    for name, base_url in app.state.settings.service_urls.items():
        app.state.readiness.add(f"service:{name}", service_check(client, name, base_url))
