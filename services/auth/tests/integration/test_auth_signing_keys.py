"""Signing keys: the JWKS, verification by other services, rotation, first start."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from marquee_auth.cli import app as auth_commands
from marquee_auth.main import SERVICE, create_app, maintain_keys_and_tokens
from marquee_auth.settings import AuthSettings
from marquee_platform.db import Database
from marquee_platform.errors import Unauthenticated
from marquee_platform.security import JwksCache, TokenVerifier
from marquee_testing.fixtures import DatabaseFactory, serve_in_thread

if TYPE_CHECKING:
    from conftest import AuthHarness


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def jwks(auth: AuthHarness, path: str = "/.well-known/jwks.json") -> dict[str, Any]:
    response = await auth.client.get(path)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def keys_by_state(auth: AuthHarness) -> dict[str, list[str]]:
    rows = await auth.sql("SELECT kid, state FROM signing_keys ORDER BY activates_at")
    states: dict[str, list[str]] = {}
    for row in rows:
        states.setdefault(row.state, []).append(row.kid)
    return states


async def rotate(auth: AuthHarness, *args: str) -> str:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        auth_commands,
        ["rotate-keys", *args],
        env={"AUTH_DATABASE_URL": auth.settings.database_url},
    )
    assert result.exit_code == 0, result.output
    output: str = result.output
    return output


def verifier_like_another_service(base_url: str, client: httpx.AsyncClient) -> TokenVerifier:
    return TokenVerifier(
        JwksCache(f"{base_url}/.well-known/jwks.json", client), "marquee-auth", "marquee"
    )


async def test_the_jwks_is_served_at_the_root_and_through_the_gateway_path(
    auth: AuthHarness,
) -> None:
    root = await auth.client.get("/.well-known/jwks.json")
    routed = await auth.client.get("/api/v1/auth/.well-known/jwks.json")
    assert root.json() == routed.json()
    assert root.headers["Cache-Control"] == "public, max-age=300"
    (key,) = root.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in key, "never the private part"
    tokens = await auth.login((await auth.register())["email"])
    assert kid_of(tokens["access_token"]) == key["kid"]


async def test_other_services_verify_tokens_against_the_served_jwks(auth: AuthHarness) -> None:
    _, tokens = await auth.signed_up()
    second_instance = create_app(auth.settings)
    with serve_in_thread(second_instance) as base_url:
        async with httpx.AsyncClient() as client:
            verifier = verifier_like_another_service(base_url, client)
            principal = await verifier.verify(tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert principal.user_id == claims["sub"]
    assert [role.value for role in principal.roles] == ["customer"]
    assert principal.issued_at is not None
    assert principal.issued_at.timestamp() == pytest.approx(claims["iat"], abs=1e-5)
    assert len((await keys_by_state(auth))["active"]) == 1, "a second instance adds no key"


async def test_rotating_now_keeps_old_tokens_valid_and_signs_with_the_new_key(
    auth: AuthHarness,
) -> None:
    user, before = await auth.signed_up()
    old_kid = kid_of(before["access_token"])

    output = await rotate(auth, "--now")
    assert "is active now" in output

    after = await auth.login(user["email"])
    new_kid = kid_of(after["access_token"])
    assert new_kid != old_kid
    published = {key["kid"] for key in (await jwks(auth))["keys"]}
    assert published == {old_kid, new_kid}, "the retired key stays until its tokens expire"
    assert await keys_by_state(auth) == {"retired": [old_kid], "active": [new_kid]}

    assert (await auth.me(before["access_token"])).status_code == 200
    assert (await auth.me(after["access_token"])).status_code == 200
    with serve_in_thread(create_app(auth.settings)) as base_url:
        async with httpx.AsyncClient() as client:
            verifier = verifier_like_another_service(base_url, client)
            await verifier.verify(before["access_token"])
            await verifier.verify(after["access_token"])


async def test_a_rotation_publishes_the_new_key_before_it_signs(auth: AuthHarness) -> None:
    user, _ = await auth.signed_up()
    old_kid = (await keys_by_state(auth))["active"][0]
    output = await rotate(auth)
    assert "is published and signs from" in output
    states = await keys_by_state(auth)
    (next_kid,) = states["next"]
    assert {key["kid"] for key in (await jwks(auth))["keys"]} == {old_kid, next_kid}
    assert kid_of((await auth.login(user["email"]))["access_token"]) == old_kid

    # The publish-ahead delay passes (every verifier's cached JWKS now has the key):
    await auth.sql("UPDATE signing_keys SET activates_at = now() WHERE kid = :kid", kid=next_kid)
    assert kid_of((await auth.login(user["email"]))["access_token"]) == next_kid
    await maintain_keys_and_tokens(auth.database, auth.settings.policy())
    assert await keys_by_state(auth) == {"retired": [old_kid], "active": [next_kid]}


async def test_keys_rotate_by_age_and_retired_keys_go_once_their_tokens_expired(
    auth: AuthHarness,
) -> None:
    policy = auth.settings.policy()
    (first,) = (await keys_by_state(auth))["active"]
    await auth.sql("UPDATE signing_keys SET activates_at = now() - interval '31 days'")
    await maintain_keys_and_tokens(auth.database, policy)
    (upcoming,) = (await keys_by_state(auth))["next"]

    await auth.sql("UPDATE signing_keys SET activates_at = now() WHERE kid = :kid", kid=upcoming)
    await maintain_keys_and_tokens(auth.database, policy)
    assert await keys_by_state(auth) == {"retired": [first], "active": [upcoming]}

    # Retired longer ago than an access token lives (plus margin): nothing it signed is
    # still valid, so it leaves the JWKS and the database.
    await auth.sql(
        "UPDATE signing_keys SET retired_at = now() - interval '18 minutes' WHERE kid = :kid",
        kid=first,
    )
    assert {key["kid"] for key in (await jwks(auth))["keys"]} == {upcoming}
    await maintain_keys_and_tokens(auth.database, policy)
    assert await keys_by_state(auth) == {"active": [upcoming]}


async def test_withdrawing_a_compromised_key_kills_its_tokens(auth: AuthHarness) -> None:
    user, before = await auth.signed_up()
    await rotate(auth, "--withdraw-previous")
    # Auth's own verifier caches keys briefly; a new process or the next reload sees it.
    auth.app.state.auth.signing_keys.forget()
    refused = await auth.me(before["access_token"])
    assert refused.status_code == 401
    assert "key this service does not know" in refused.json()["detail"]
    after = await auth.login(user["email"])
    assert (await auth.me(after["access_token"])).status_code == 200
    assert len((await jwks(auth))["keys"]) == 1


async def test_instances_starting_together_create_one_key(
    make_database: DatabaseFactory, redis_url: str
) -> None:
    url = await make_database(SERVICE.migrations, prefix="auth")
    policy = AuthSettings(database_url=url, redis_url=redis_url).policy()
    databases = [Database(url) for _ in range(5)]
    try:
        await asyncio.gather(*(maintain_keys_and_tokens(db, policy) for db in databases))
        async with databases[0].reading() as session:
            states = (await session.execute(text("SELECT state FROM signing_keys"))).all()
    finally:
        await asyncio.gather(*(db.dispose() for db in databases))
    assert [row.state for row in states] == ["active"]


async def test_list_keys_prints_no_private_material(auth: AuthHarness) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        auth_commands,
        ["list-keys"],
        env={"AUTH_DATABASE_URL": auth.settings.database_url},
    )
    assert result.exit_code == 0, result.output
    assert "active" in result.output
    assert "EdDSA" in result.output
    assert "PRIVATE KEY" not in result.output


async def test_a_token_from_a_foreign_key_is_refused(auth: AuthHarness, token_issuer: Any) -> None:
    forged = token_issuer.token("00000000-0000-0000-0000-000000000001", ("admin",))
    response = await auth.me(forged)
    assert response.status_code == 401
    with pytest.raises(Unauthenticated):
        await auth.app.state.token_verifier.verify(forged)
