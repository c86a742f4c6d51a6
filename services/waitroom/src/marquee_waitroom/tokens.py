"""Admission tokens: the waitroom's Ed25519 keys, signing, and the JWKS inventory reads.

The token's claims are fixed in :mod:`marquee_contracts.waitroom`. A token is signed with
``iat`` and ``exp`` taken from the admission record in Redis, and Ed25519 signatures are
deterministic, so signing the same admission again (after a crash, or for a fan asking
``/queue/me`` again) gives the very same token: re-issuing never admits anyone twice.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from marquee_contracts.waitroom import (
    ADMISSION_ALGORITHM,
    ADMISSION_AUDIENCE,
    ADMISSION_ISSUER,
    EVENT_CLAIM,
)


@dataclass(frozen=True, slots=True)
class AdmissionKey:
    kid: str
    private_key_pem: str
    public_jwk: dict[str, Any]


def generate_admission_key(now: datetime) -> AdmissionKey:
    private_key = Ed25519PrivateKey.generate()
    kid = f"wr-{now:%Y%m%d}-{secrets.token_hex(6)}"
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_jwk: dict[str, Any] = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    public_jwk.update({"kid": kid, "use": "sig", "alg": ADMISSION_ALGORITHM})
    return AdmissionKey(kid=kid, private_key_pem=pem, public_jwk=public_jwk)


@lru_cache(maxsize=8)
def _private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("an admission key is not an Ed25519 private key")
    return key


def sign_admission(
    key: AdmissionKey,
    *,
    event_id: uuid.UUID,
    user_id: str,
    admission_id: str,
    admitted_at: datetime,
    expires_at: datetime,
) -> str:
    """The admission token of one admission (the same inputs give the same token)."""
    claims = {
        "iss": ADMISSION_ISSUER,
        "aud": ADMISSION_AUDIENCE,
        "sub": user_id,
        EVENT_CLAIM: str(event_id),
        "jti": admission_id,
        "iat": int(admitted_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(
        claims,
        _private_key(key.private_key_pem),
        algorithm=ADMISSION_ALGORITHM,
        headers={"kid": key.kid},
    )


def jwks_document(keys: Iterable[AdmissionKey]) -> dict[str, list[dict[str, Any]]]:
    return {"keys": [dict(key.public_jwk) for key in keys]}


def from_timestamp_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)
