"""Register → verify → login → refresh rotation → reuse detection → logout, and friends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jwt
import pytest

if TYPE_CHECKING:
    from conftest import AuthFactory, AuthHarness


async def test_the_whole_session_flow(auth: AuthHarness) -> None:
    email = auth.new_email("Ada")
    user = await auth.register(email.upper())
    assert user["email"] == email.lower(), "emails are stored lower-case"
    assert user["roles"] == ["customer"]
    assert user["email_verified"] is False

    registered = await auth.events(user["id"], "auth.user-registered.v1")
    assert registered[0]["data"]["email"] == email.lower()
    requested = await auth.events(user["id"], "auth.email-verification-requested.v1")
    assert requested[0]["data"]["email"] == email.lower()
    assert requested[0]["data"]["reason"] == "registration"
    token = requested[0]["data"]["token"]
    stored = await auth.sql("SELECT token_hash FROM one_time_tokens")
    assert token not in {row.token_hash for row in stored}, "only the digest is stored"

    verified = await auth.client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True
    again = await auth.client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 410
    assert again.json()["type"].endswith("/token-used")

    first = await auth.login(email)
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(first["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    assert claims["sub"] == user["id"]
    assert claims["roles"] == ["customer"]
    assert (claims["iss"], claims["aud"]) == ("marquee-auth", "marquee")
    assert isinstance(claims["iat"], float), "sub-second iat, for precise revocation"
    assert claims["exp"] - claims["iat"] == pytest.approx(900, abs=1)
    assert claims["jti"]
    assert first["expires_in"] == pytest.approx(900, abs=2)
    me = await auth.me(first["access_token"])
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]

    rotated = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await auth.me(second["access_token"])).status_code == 200

    # The first token was rotated: presenting it again means a copy exists somewhere.
    reused = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 401
    assert reused.json()["type"].endswith("/refresh-token-reused")
    assert "already used" in reused.json()["detail"]
    # ... so the whole family is revoked: the legitimate newest token is dead too,
    after = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert after.status_code == 401
    assert after.json()["type"].endswith("/session-ended")
    # and access tokens issued before the reuse are refused at once.
    assert (await auth.me(second["access_token"])).status_code == 401

    # A new sign-in works, and logging out ends that session.
    third = await auth.login(email)
    logout = await auth.client.post(
        "/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]}
    )
    assert logout.status_code == 204
    refused = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}
    )
    assert refused.status_code == 401
    twice = await auth.client.post(
        "/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]}
    )
    assert twice.status_code == 204, "signing out twice is fine"

    families = await auth.sql(
        "SELECT revoked_reason FROM refresh_token_families WHERE user_id = :id ORDER BY created_at",
        id=user["id"],
    )
    assert [row.revoked_reason for row in families] == ["reuse-detected", "logout"]


async def test_refresh_tokens_are_stored_only_as_digests(auth: AuthHarness) -> None:
    _, tokens = await auth.signed_up()
    hashes = {row.token_hash for row in await auth.sql("SELECT token_hash FROM refresh_tokens")}
    assert tokens["refresh_token"] not in hashes
    assert len(next(iter(hashes))) == 64


async def test_an_unknown_or_expired_refresh_token_is_refused(auth: AuthHarness) -> None:
    _, tokens = await auth.signed_up()
    unknown = await auth.client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert unknown.status_code == 401
    assert unknown.headers["WWW-Authenticate"] == "Bearer"
    await auth.sql("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
    expired = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert expired.status_code == 401
    assert expired.json()["type"].endswith("/refresh-token-expired")


async def test_logout_everywhere_kills_an_access_token_already_issued(auth: AuthHarness) -> None:
    user, laptop = await auth.signed_up()
    phone = await auth.login(user["email"])
    assert (await auth.me(laptop["access_token"])).status_code == 200

    response = await auth.client.post(
        "/api/v1/auth/logout-everywhere", headers=auth.bearer(laptop["access_token"])
    )
    assert response.status_code == 204

    for access_token in (laptop["access_token"], phone["access_token"]):
        refused = await auth.me(access_token)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]
    for refresh_token in (laptop["refresh_token"], phone["refresh_token"]):
        refresh = await auth.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": refresh_token}
        )
        assert refresh.status_code == 401
    # Signing in again right away gives a token the marker does not catch.
    fresh = await auth.login(user["email"])
    assert (await auth.me(fresh["access_token"])).status_code == 200


async def test_a_duplicate_email_is_a_409_that_says_what_to_do(auth: AuthHarness) -> None:
    email = auth.new_email()
    await auth.register(email)
    response = await auth.client.post(
        "/api/v1/auth/register", json={"email": f"  {email.upper()} ", "password": auth.password}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "already exists" in response.json()["detail"]
    assert "reset the password" in response.json()["detail"]


async def test_register_replays_with_the_same_idempotency_key(auth: AuthHarness) -> None:
    body = {"email": auth.new_email(), "password": auth.password}
    headers = {"Idempotency-Key": "register-once"}
    first = await auth.client.post("/api/v1/auth/register", json=body, headers=headers)
    second = await auth.client.post("/api/v1/auth/register", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


async def test_password_rules_say_exactly_what_is_wrong(auth: AuthHarness) -> None:
    email = auth.new_email("grace")
    cases = {
        "short": "at least 10 characters; this password has 5",
        email: "Don't use your email address",
        "Password2024!": "most common passwords",
        "aaaaaaaaaaaa": "repeated character or a simple sequence",
    }
    for password, message in cases.items():
        response = await auth.client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 422, password
        problem = response.json()
        assert problem["type"].endswith("/weak-password")
        assert message in problem["detail"], (password, problem["detail"])
        assert {error["field"] for error in problem["errors"]} == {"password"}


async def test_an_invalid_email_is_refused_with_the_reason(auth: AuthHarness) -> None:
    response = await auth.client.post(
        "/api/v1/auth/register", json={"email": "ada.example.com", "password": auth.password}
    )
    assert response.status_code == 422
    assert "no '@'" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "email"


async def test_a_nul_character_is_a_422_naming_the_field(auth: AuthHarness) -> None:
    register = await auth.client.post(
        "/api/v1/auth/register", json={"email": "a\u0000b@example.com", "password": auth.password}
    )
    login = await auth.client.post(
        "/api/v1/auth/login", json={"email": "ada\u0000@example.com", "password": auth.password}
    )
    for response in (register, login):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in response.json()["errors"]] == ["email"]


async def test_verification_links_expire_and_can_be_sent_again(auth: AuthHarness) -> None:
    user, tokens = await auth.signed_up()
    first = await auth.latest_token(user["id"], "auth.email-verification-requested.v1")
    await auth.sql("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'")
    expired = await auth.client.post("/api/v1/auth/verify-email", json={"token": first})
    assert expired.status_code == 410
    assert expired.json()["type"].endswith("/token-expired")

    resent = await auth.client.post(
        "/api/v1/auth/verify-email/resend", headers=auth.bearer(tokens["access_token"])
    )
    assert resent.status_code == 202
    second = await auth.latest_token(user["id"], "auth.email-verification-requested.v1")
    assert second != first
    verified = await auth.client.post("/api/v1/auth/verify-email", json={"token": second})
    assert verified.status_code == 200
    done = await auth.client.post(
        "/api/v1/auth/verify-email/resend", headers=auth.bearer(tokens["access_token"])
    )
    assert done.status_code == 409


async def test_password_reset(auth: AuthHarness) -> None:
    user, session = await auth.signed_up()
    unknown = await auth.client.post(
        "/api/v1/auth/password-reset", json={"email": auth.new_email("nobody")}
    )
    known = await auth.client.post(
        "/api/v1/auth/password-reset", json={"email": user["email"].upper()}
    )
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json(), "the answer must not reveal who has an account"
    token = await auth.latest_token(user["id"], "auth.password-reset-requested.v1")

    weak = await auth.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "123"}
    )
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "new_password"

    new_password = "a brand new passphrase"
    reset = await auth.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204, reset.text
    reused = await auth.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )
    assert reused.status_code == 410

    # Every old session and access token is dead; the old password no longer works.
    assert (await auth.me(session["access_token"])).status_code == 401
    stale = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert stale.status_code == 401
    old = await auth.client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": auth.password}
    )
    assert old.status_code == 401
    fresh = await auth.login(user["email"], new_password)
    me = await auth.me(fresh["access_token"])
    assert me.json()["email_verified"] is True, "the reset link proved the address"
    changed = await auth.events(user["id"], "auth.password-changed.v1")
    assert changed[-1]["data"]["reason"] == "reset"


async def test_password_reset_requests_are_limited_per_account(auth: AuthHarness) -> None:
    user = await auth.register()
    for _ in range(3):
        response = await auth.client.post(
            "/api/v1/auth/password-reset", json={"email": user["email"]}
        )
        assert response.status_code == 202
    sent = await auth.events(user["id"], "auth.password-reset-requested.v1")
    assert len(sent) == 1, "one email per cooldown, however often someone asks"


async def test_signing_in_upgrades_a_hash_made_with_older_parameters(
    auth: AuthHarness, start_auth: AuthFactory
) -> None:
    user = await auth.register()
    (before,) = await auth.sql("SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    assert ",t=2," in before.password_hash
    async with start_auth(database_url=auth.settings.database_url, argon2_time_cost=3) as stronger:
        await stronger.login(user["email"])
    (after,) = await auth.sql("SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    assert ",t=3," in after.password_hash
    await auth.login(user["email"])  # the upgraded hash still matches the password
