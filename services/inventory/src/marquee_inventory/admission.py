"""Checking the waiting room's admission tokens (their format:
:mod:`marquee_contracts.waitroom`).

The waitroom signs them with Ed25519 and publishes its public keys as a JWKS; the
verifier takes any :class:`~marquee_platform.security.SigningKeys` (the app a
:class:`~marquee_platform.security.JwksCache` on ``waitroom_jwks_url``, tests the key
itself). Only the signature, issuer and audience are checked by PyJWT; expiry is checked
against the app's clock, like every other deadline of a hold, and the token must name the
caller and the event of the request. The token is never echoed: it is a credential.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import (
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from marquee_contracts.waitroom import (
    ADMISSION_ALGORITHM,
    ADMISSION_AUDIENCE,
    ADMISSION_ISSUER,
    EVENT_CLAIM,
)
from marquee_inventory.domain import AdmissionInvalid
from marquee_platform.errors import Unavailable
from marquee_platform.security import SigningKeys, UnknownSigningKey

MAX_TOKEN_LENGTH = 4096
"""Far above any admission token (about 400 characters): a hostile header is not parsed."""

_REQUIRED_CLAIMS = ("iss", "aud", "sub", EVENT_CLAIM, "jti", "iat", "exp")

_QUEUE = "POST /api/v1/waitroom/events/{event_id}/queue"


@dataclass(frozen=True, slots=True)
class Admission:
    """A verified admission: this caller may hold places for this event until
    ``expires_at``."""

    admission_id: str
    user_id: str
    event_id: uuid.UUID
    expires_at: datetime


def _malformed(detail: str) -> AdmissionInvalid:
    return AdmissionInvalid(
        f"The admission token is malformed: {detail}. Send the token the waiting room gave "
        "you, unchanged.",
        reason="malformed",
    )


def _bad_signature(detail: str) -> AdmissionInvalid:
    return AdmissionInvalid(
        f"The admission token's signature does not verify: {detail}. Send the token the "
        "waiting room gave you, unchanged, or join the queue again.",
        reason="bad-signature",
    )


class AdmissionVerifier:
    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str = ADMISSION_ISSUER,
        audience: str = ADMISSION_AUDIENCE,
        leeway: timedelta = timedelta(seconds=10),
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        """Clock skew allowed between the waitroom and us, past ``exp``."""

    async def verify(
        self, token: str, *, event_id: uuid.UUID, user_id: str, now: datetime
    ) -> Admission:
        """The admission ``token`` grants ``user_id`` for ``event_id`` at ``now``, or
        :class:`~marquee_inventory.domain.AdmissionInvalid` saying why not;
        :class:`~marquee_platform.errors.Unavailable` when the waitroom's keys cannot be
        had to tell."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise _malformed("it is far longer than any admission token")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise _malformed("it is not a JWT") from None
        if header.get("alg") != ADMISSION_ALGORITHM:
            raise _bad_signature(f"admission tokens are signed with {ADMISSION_ALGORITHM} only")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _malformed("it names no key ('kid' header)")
        try:
            key = await self.keys.get_key(kid)
        except UnknownSigningKey:
            raise _bad_signature(
                "it was signed with a key the waiting room does not publish"
            ) from None
        except Unavailable as error:
            raise Unavailable(
                "Cannot check admission tokens right now: the waiting room's signing keys "
                "cannot be fetched. Nothing was held; retry in a few seconds.",
                code="admission-keys-unavailable",
            ) from error
        if key.algorithm_name != ADMISSION_ALGORITHM:
            raise _bad_signature("its key is not an admission signing key")
        claims = self._decode(token, key)
        return self._admission(claims, event_id=event_id, user_id=user_id, now=now)

    def _decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ADMISSION_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": list(_REQUIRED_CLAIMS),
                    # Checked below against the app's clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except InvalidSignatureError:
            raise _bad_signature("it was altered or signed by someone else") from None
        except (InvalidIssuerError, InvalidAudienceError):
            raise _malformed(
                f"it is not an admission token (issuer must be '{self.issuer}' and audience "
                f"'{self.audience}')"
            ) from None
        except MissingRequiredClaimError as error:
            raise _malformed(f"it lacks the '{error.claim}' claim") from None
        except InvalidTokenError:
            raise _malformed("its claims cannot be read") from None
        return claims

    def _admission(
        self, claims: dict[str, Any], *, event_id: uuid.UUID, user_id: str, now: datetime
    ) -> Admission:
        subject, admission_id, expires = claims["sub"], claims["jti"], claims["exp"]
        if not isinstance(subject, str) or not subject:
            raise _malformed("its 'sub' claim is not a user id")
        if not isinstance(admission_id, str) or not admission_id:
            raise _malformed("its 'jti' claim is not an admission id")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise _malformed("its 'exp' claim is not a time")
        try:
            admitted_event = uuid.UUID(str(claims[EVENT_CLAIM]))
        except ValueError:
            raise _malformed(f"its '{EVENT_CLAIM}' claim is not an event id") from None
        if subject != user_id:
            raise AdmissionInvalid(
                "This admission token was issued to another account: an admission is "
                "personal. Join the queue yourself at " + _QUEUE.format(event_id=event_id) + ".",
                reason="other-account",
            )
        if admitted_event != event_id:
            raise AdmissionInvalid(
                f"This admission token is for another event ({admitted_event}), not "
                f"{event_id}. Join this event's queue at " + _QUEUE.format(event_id=event_id) + ".",
                reason="other-event",
            )
        expires_at = datetime.fromtimestamp(float(expires), tz=UTC)
        if now >= expires_at + self.leeway:
            raise AdmissionInvalid(
                f"This admission expired at {expires_at.isoformat()}: an admission lasts a "
                "few minutes. Join the queue again at " + _QUEUE.format(event_id=event_id) + ".",
                reason="expired",
            )
        return Admission(
            admission_id=admission_id,
            user_id=subject,
            event_id=event_id,
            expires_at=expires_at,
        )
