"""Verifying access tokens locally and enforcing roles and ownership.

The auth service signs short-lived JWTs with an asymmetric key (EdDSA or RS256) and
publishes the public keys as a JWKS. Every service verifies tokens itself against that
JWKS, so a request never waits on auth, and enforces ownership itself (defence in depth).

Endpoints ask for :data:`CurrentUser`, :data:`OptionalUser` or ``require_roles(...)``;
the :class:`TokenVerifier` behind them lives on ``app.state.token_verifier`` and is
created in :func:`marquee_platform.app.create_service_app`'s lifespan.


The package is split by concern: :mod:`.principal` (roles, the principal; pure),
:mod:`.jwks` (public keys), :mod:`.verification` (the token verifier),
:mod:`.dependencies` (FastAPI) and :mod:`.revocation` (the Redis not-before marker).
Import from here.
"""

from marquee_platform.security.dependencies import (
    CurrentUser,
    OptionalUser,
    ensure_owner,
    require_roles,
)
from marquee_platform.security.jwks import (
    ALLOWED_ALGORITHMS,
    JwksCache,
    SigningKeys,
    UnknownSigningKey,
    parse_jwks,
)
from marquee_platform.security.principal import Principal, RevocationCheck, Role
from marquee_platform.security.revocation import (
    TOKENS_NOT_BEFORE_KEY,
    redis_revocation_check,
    revoke_tokens_issued_before,
)
from marquee_platform.security.verification import TokenVerifier, create_token_verifier

__all__ = [
    "ALLOWED_ALGORITHMS",
    "TOKENS_NOT_BEFORE_KEY",
    "CurrentUser",
    "JwksCache",
    "OptionalUser",
    "Principal",
    "RevocationCheck",
    "Role",
    "SigningKeys",
    "TokenVerifier",
    "UnknownSigningKey",
    "create_token_verifier",
    "ensure_owner",
    "parse_jwks",
    "redis_revocation_check",
    "require_roles",
    "revoke_tokens_issued_before",
]
