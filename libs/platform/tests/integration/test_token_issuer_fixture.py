"""The token_issuer fixture signs tokens that a real service accepts via its JWKS URL."""

from __future__ import annotations

import httpx
from fastapi import APIRouter

from marquee_platform.app import create_service_app
from marquee_platform.security import CurrentUser
from marquee_platform.settings import ServiceSettings
from marquee_testing.fixtures import TokenIssuer


async def test_a_service_accepts_the_fixtures_tokens(token_issuer: TokenIssuer) -> None:
    who = APIRouter()

    @who.get("/me")
    async def me(user: CurrentUser) -> dict[str, object]:
        return {"id": user.user_id, "roles": sorted(user.roles)}

    app = create_service_app(
        ServiceSettings(jwks_url=token_issuer.jwks_url, log_json=False),
        title="t",
        description="t",
        routers=[who],
        uses_database=False,
        uses_kafka=False,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/me", headers=token_issuer.headers("u-9", ("organizer",)))
        anonymous = await client.get("/me")
    assert response.json() == {"id": "u-9", "roles": ["organizer"]}
    assert anonymous.status_code == 401
