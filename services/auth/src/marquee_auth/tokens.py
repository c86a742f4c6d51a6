"""Access tokens: Ed25519 signing keys, signing JWTs, the JWKS, and how auth verifies its
own tokens (against its database, not over HTTP), plus revoking tokens already issued.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt import PyJWK
from jwt.algorithms import OKPAlgorithm

from marquee_auth.models import SigningKey
from marquee_auth.repository import SigningKeyRepository
from marquee_platform.clock import utc_now
from marquee_platform.db import Database
from marquee_platform.security import UnknownSigningKey, revoke_tokens_issued_before

ALGORITHM = "EdDSA"


# ---- keys -------------------------------------------------------------------------------------


def new_kid(now: datetime) -> str:
    """Sortable by creation date at a glance, unguessable enough to never collide."""
    return f"{now:%Y%m%d}-{secrets.token_hex(6)}"


def generate_signing_key(*, now: datetime, activates_at: datetime, state: str) -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    kid = new_kid(now)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_jwk: dict[str, Any] = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    public_jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_pem=pem,
        public_jwk=public_jwk,
        state=state,
        created_at=now,
        activates_at=activates_at,
        retired_at=None,
    )


@lru_cache(maxsize=16)
def _private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("a signing key in the database is not an Ed25519 private key")
    return key


def jwks_document(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, Any]]]:
    return {"keys": [dict(key.public_jwk) for key in keys]}


# ---- signing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    kid: str
    token_id: str
    issued_at: datetime
    expires_at: datetime


def sign_access_token(
    key: SigningKey,
    *,
    user_id: uuid.UUID,
    roles: Sequence[str],
    now: datetime,
    lifetime: timedelta,
    issuer: str,
    audience: str,
) -> AccessToken:
    """A JWT for ``user_id``. ``iat`` keeps its fraction of a second, so a "tokens issued
    before T are revoked" marker set a moment before this token does not catch it."""
    issued_at = now.timestamp()
    expires_at = int(issued_at + lifetime.total_seconds())
    token_id = uuid.uuid4().hex
    claims = {
        "sub": str(user_id),
        "roles": list(roles),
        "iss": issuer,
        "aud": audience,
        "iat": issued_at,
        "exp": expires_at,
        "jti": token_id,
    }
    token = jwt.encode(
        claims, _private_key(key.private_key_pem), algorithm=ALGORITHM, headers={"kid": key.kid}
    )
    return AccessToken(
        token=token,
        kid=key.kid,
        token_id=token_id,
        issued_at=now,
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
    )


# ---- verifying our own tokens ----------------------------------------------------------------


class DatabaseSigningKeys:
    """Auth's own verifier reads public keys from its database, not from its own JWKS URL:
    no request to ourselves, and it works in-process (tests) as in production.

    Implements ``marquee_platform.security.SigningKeys``. Keys are cached for ``ttl``
    seconds; an unknown ``kid`` looks again at most every ``min_refetch_interval``.
    """

    def __init__(
        self,
        database: Database,
        *,
        retired_kept_for: timedelta,
        ttl: float = 30.0,
        min_refetch_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._retired_kept_for = retired_kept_for
        self._ttl = ttl
        self._min_refetch_interval = min_refetch_interval
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def get_key(self, kid: str) -> PyJWK:
        if self._loaded_at is None or self._clock() - self._loaded_at >= self._ttl:
            await self._load()
        key = self._keys.get(kid)
        if key is None:
            assert self._loaded_at is not None
            if self._clock() - self._loaded_at >= self._min_refetch_interval:
                await self._load()
                key = self._keys.get(kid)
        if key is None:
            raise UnknownSigningKey(kid)
        return key

    def forget(self) -> None:
        """Drop the cache (after a rotation in this process)."""
        self._loaded_at = None

    async def _load(self) -> None:
        async with self._lock:
            async with self._database.reading() as session:
                keys = await SigningKeyRepository(session).published(
                    now=utc_now(), retired_kept_for=self._retired_kept_for
                )
            self._keys = {key.kid: PyJWK(dict(key.public_jwk), algorithm=ALGORITHM) for key in keys}
            self._loaded_at = self._clock()


# ---- revoking access tokens already issued ------------------------------------------------


class AccessTokenRevocations:
    """Kills a user's access tokens issued so far, in every service at once, through the
    shared Redis "not before" marker (``marquee_platform.security``)."""

    def __init__(self, redis: Any, *, token_lifetime: timedelta) -> None:
        self._redis = redis
        self._lifetime_seconds = int(token_lifetime.total_seconds())

    async def revoke_all(self, user_id: uuid.UUID, *, at: datetime) -> None:
        await revoke_tokens_issued_before(
            self._redis, str(user_id), at=at, token_lifetime_seconds=self._lifetime_seconds
        )
