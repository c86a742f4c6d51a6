"""Verifying an access token locally against the published keys."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from jwt import PyJWK
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from marquee_platform.errors import Unauthenticated
from marquee_platform.security.jwks import (
    _MAX_TOKEN_LENGTH,
    _REQUIRED_CLAIMS,
    ALLOWED_ALGORITHMS,
    JwksCache,
    SigningKeys,
    UnknownSigningKey,
)
from marquee_platform.security.principal import Principal, RevocationCheck, Role

logger = logging.getLogger(__name__)


def _invalid(detail: str) -> Unauthenticated:
    return Unauthenticated(detail, code="invalid-token")


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal`, or says why it can't.

    Every failure is :class:`~marquee_platform.errors.Unauthenticated` with a message a
    person can act on; the token itself is never echoed (it is a credential).
    ``is_revoked`` may be set after construction (a service's startup hook), e.g. to
    reject tokens of users deleted since the token was issued.
    """

    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        audience: str,
        *,
        leeway_seconds: float = 30.0,
        is_revoked: RevocationCheck | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self.is_revoked = is_revoked

    async def verify(self, token: str) -> Principal:
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise _invalid("The access token is not a well-formed JWT; sign in again.")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise _invalid("The access token is not a well-formed JWT; sign in again.") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise _invalid(
                "The access token is signed with an algorithm this service does not accept "
                f"(only {', '.join(sorted(ALLOWED_ALGORITHMS))}); use a token from the auth "
                "service."
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid(
                "The access token has no key id ('kid' header); use a token from the auth service."
            )
        try:
            key = await self.keys.get_key(kid)
        except UnknownSigningKey:
            raise _invalid(
                "The access token was signed with a key this service does not know "
                "(it may have been retired); sign in again to get a new token."
            ) from None
        if key.algorithm_name != algorithm:
            raise _invalid(
                "The access token's algorithm does not match its signing key; "
                "use a token from the auth service."
            )
        claims = self._decode(token, key)
        principal = self._principal_from(claims)
        if self.is_revoked is not None and await self.is_revoked(principal):
            raise _invalid("This access token has been revoked; sign in again.")
        return principal

    def _decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": list(_REQUIRED_CLAIMS)},
            )
        except ExpiredSignatureError:
            raise Unauthenticated(
                "The access token has expired; refresh it (or sign in again) and retry.",
                code="token-expired",
            ) from None
        except InvalidSignatureError:
            raise _invalid(
                "The access token's signature is not valid; sign in again to get a new one."
            ) from None
        except InvalidAudienceError:
            raise _invalid(
                f"The access token is not meant for this service (audience must be "
                f"'{self.audience}'); request a token for the right audience."
            ) from None
        except InvalidIssuerError:
            raise _invalid(
                f"The access token was not issued by '{self.issuer}'; "
                "sign in with the Marquee auth service."
            ) from None
        except MissingRequiredClaimError as error:
            raise _invalid(
                f"The access token lacks the '{error.claim}' claim; "
                "use a token from the auth service."
            ) from None
        except ImmatureSignatureError:
            raise _invalid(
                "The access token is not valid yet (issued in the future); "
                "check the clock of the machine that issued it and retry."
            ) from None
        except InvalidTokenError:
            raise _invalid("The access token is not a well-formed JWT; sign in again.") from None
        return claims

    @staticmethod
    def _principal_from(claims: Mapping[str, Any]) -> Principal:
        subject, token_id, expires = claims["sub"], claims["jti"], claims["exp"]
        if not isinstance(subject, str) or not subject:
            raise _invalid("The access token's 'sub' claim is not a user id; sign in again.")
        if not isinstance(token_id, str) or not token_id:
            raise _invalid("The access token's 'jti' claim is not a token id; sign in again.")
        raw_roles = claims.get("roles", [])
        if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
            raise _invalid("The access token's 'roles' claim is not a list of role names.")
        # Roles this service does not know yet are ignored rather than rejected, so auth can
        # introduce a role before every service is upgraded.
        known = {role.value for role in Role}
        roles = frozenset(Role(role) for role in raw_roles if role in known)
        return Principal(
            user_id=subject,
            roles=roles,
            token_id=token_id,
            expires_at=datetime.fromtimestamp(int(expires), tz=UTC),
            issued_at=(
                datetime.fromtimestamp(float(claims["iat"]), tz=UTC)
                if isinstance(claims.get("iat"), int | float)
                else None
            ),
        )


def create_token_verifier(
    *, jwks_url: str, issuer: str, audience: str, client: httpx.AsyncClient
) -> TokenVerifier:
    """The verifier a service uses: JWKS over ``client`` (owned and closed by the caller)."""
    return TokenVerifier(JwksCache(jwks_url, client), issuer, audience)
