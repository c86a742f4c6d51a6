"""Principal, roles, ownership and JWKS parsing: pure logic, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from marquee_platform.errors import PermissionDenied
from marquee_platform.security import Principal, Role, ensure_owner, parse_jwks, require_roles


def principal(user_id: str = "u-1", *roles: Role) -> Principal:
    return Principal(
        user_id=user_id,
        roles=frozenset(roles),
        token_id="jti-1",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def test_principal_helpers() -> None:
    organizer = principal("u-1", Role.ORGANIZER)
    admin = principal("u-2", Role.ADMIN)
    assert organizer.has_role("organizer")
    assert organizer.has_role(Role.ORGANIZER)
    assert not organizer.has_role("admin")
    assert not organizer.is_admin
    assert admin.is_admin
    assert not admin.has_role("organizer"), "has_role is literal; require_roles lets admins in"
    with pytest.raises(ValueError, match="superuser"):
        organizer.has_role("superuser")


def test_ensure_owner_lets_the_owner_and_admins_through() -> None:
    ensure_owner(principal("u-1"), "u-1", what="event")
    ensure_owner(principal("root", Role.ADMIN), "u-1", what="event")
    with pytest.raises(PermissionDenied, match="You can only change your own order"):
        ensure_owner(principal("u-2", Role.CUSTOMER), "u-1", what="order")


async def test_require_roles_lets_listed_roles_and_admins_through() -> None:
    check = require_roles("organizer", "admin")
    assert await check(principal("u", Role.ORGANIZER))
    assert await check(principal("u", Role.ADMIN))
    with pytest.raises(PermissionDenied, match="admin or organizer"):
        await check(principal("u", Role.CUSTOMER))


def test_require_roles_refuses_a_misspelt_role_at_definition_time() -> None:
    with pytest.raises(ValueError, match="organiser"):
        require_roles("organiser")
    with pytest.raises(ValueError, match="at least one role"):
        require_roles()


def test_parse_jwks_keeps_only_usable_signing_keys() -> None:
    ed = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key(), as_dict=True)
    strong = RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), as_dict=True
    )
    weak = RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),  # noqa: S505 - it must be skipped
        as_dict=True,
    )
    document = {
        "keys": [
            {**ed, "kid": "ed"},  # no alg: inferred from kty/crv
            {**strong, "kid": "rs", "alg": "RS256", "use": "sig"},
            {**strong, "kid": "rs-enc", "use": "enc"},
            {**strong, "kid": "rs-ps", "alg": "PS256"},
            {**weak, "kid": "rs-weak"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**ed},  # no kid
            "not a key",
        ]
    }
    keys = parse_jwks(document)
    assert set(keys) == {"ed", "rs"}
    assert keys["ed"].algorithm_name == "EdDSA"
    assert keys["rs"].algorithm_name == "RS256"
