"""Signing keys and access tokens without a database: the rotation handlers run against a
small in-memory key store; tokens are checked with PyJWT against the published JWK."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from jwt import PyJWK

from marquee_auth import handlers
from marquee_auth.models import SigningKey
from marquee_auth.settings import AuthSettings
from marquee_auth.tokens import generate_signing_key, jwks_document, sign_access_token

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class InMemorySigningKeys:
    """The slice of SigningKeyRepository the key handlers use."""

    def __init__(self) -> None:
        self.keys: dict[str, SigningKey] = {}
        self.locked = 0

    async def lock(self) -> None:
        self.locked += 1

    def add(self, key: SigningKey) -> None:
        self.keys[key.kid] = key

    async def flush(self) -> None:
        assert sum(key.state == "active" for key in self.keys.values()) <= 1

    async def all(self) -> list[SigningKey]:
        return sorted(self.keys.values(), key=lambda key: key.activates_at)

    async def delete(self, kid: str) -> None:
        self.keys.pop(kid, None)

    async def delete_retired_before(self, moment: datetime) -> int:
        gone = [
            kid
            for kid, key in self.keys.items()
            if key.retired_at is not None and key.retired_at < moment
        ]
        for kid in gone:
            del self.keys[kid]
        return len(gone)

    def states(self) -> list[str]:
        return [key.state for key in sorted(self.keys.values(), key=lambda k: k.activates_at)]


POLICY = AuthSettings().policy()


async def test_the_first_run_creates_one_active_key() -> None:
    keys, clock = InMemorySigningKeys(), Clock()
    result = await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert len(result.created) == 1
    assert keys.states() == ["active"]
    again = await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert again.created == []
    assert keys.states() == ["active"]
    assert keys.locked == 2, "every change happens under the advisory lock"


async def test_an_old_key_is_rotated_with_a_publish_ahead_period() -> None:
    keys, clock = InMemorySigningKeys(), Clock()
    await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    clock.advance(days=30, seconds=1)
    await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert keys.states() == ["active", "next"]
    clock.advance(seconds=POLICY.key_publish_ahead.total_seconds() - 1)
    await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert keys.states() == ["active", "next"], "not due yet"
    clock.advance(seconds=1)
    result = await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert keys.states() == ["retired", "active"]
    assert result.promoted
    assert result.retired
    clock.advance(seconds=POLICY.retired_key_kept_for.total_seconds() + 1)
    result = await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert result.deleted == 1
    assert keys.states() == ["active"]


async def test_rotation_by_command_and_in_an_emergency() -> None:
    keys, clock = InMemorySigningKeys(), Clock()
    await handlers.maintain_signing_keys(keys=keys, policy=POLICY, clock=clock)
    upcoming = await handlers.rotate_signing_keys(keys=keys, policy=POLICY, clock=clock)
    same = await handlers.rotate_signing_keys(keys=keys, policy=POLICY, clock=clock)
    assert same.kid == upcoming.kid, "rotating twice does not pile up keys"
    assert upcoming.activates_at == START + POLICY.key_publish_ahead

    now_key = await handlers.rotate_signing_keys(
        keys=keys, policy=POLICY, clock=clock, immediately=True
    )
    assert keys.states() == ["retired", "active"], "the unused next key is dropped"
    assert keys.keys[now_key.kid].state == "active"

    withdrawn = await handlers.rotate_signing_keys(
        keys=keys, policy=POLICY, clock=clock, withdraw_previous=True
    )
    assert list(keys.keys) == [withdrawn.kid]
    assert keys.states() == ["active"]


def test_access_tokens_verify_with_the_published_key_and_keep_sub_second_iat() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, 250_000, tzinfo=UTC)
    key = generate_signing_key(now=now, activates_at=now, state="active")
    user_id = uuid.uuid4()
    token = sign_access_token(
        key,
        user_id=user_id,
        roles=["customer", "organizer"],
        now=now,
        lifetime=timedelta(minutes=15),
        issuer="marquee-auth",
        audience="marquee",
    )
    (public,) = jwks_document([key])["keys"]
    assert "d" not in public
    assert jwt.get_unverified_header(token.token)["kid"] == key.kid
    claims = jwt.decode(
        token.token,
        PyJWK(public, algorithm="EdDSA"),
        algorithms=["EdDSA"],
        audience="marquee",
        issuer="marquee-auth",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == str(user_id)
    assert claims["roles"] == ["customer", "organizer"]
    assert claims["iat"] == pytest.approx(now.timestamp())
    assert claims["iat"] % 1 == pytest.approx(0.25)
    assert claims["exp"] == int(now.timestamp()) + 900
    assert claims["jti"] == token.token_id


def test_publishing_ahead_shorter_than_the_jwks_cache_is_refused() -> None:
    with pytest.raises(ValueError, match="publish_ahead"):
        AuthSettings(signing_key_publish_ahead_seconds=60, jwks_max_age_seconds=300)
    AuthSettings(signing_key_publish_ahead_seconds=0)
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        AuthSettings(trusted_proxies=["the gateway"])
