"""Verifying access tokens locally and enforcing roles and ownership.

The auth service signs short-lived JWTs with an asymmetric key (EdDSA or RS256) and
publishes the public keys as a JWKS. Every service verifies tokens itself against that
JWKS, so a request never waits on auth, and enforces ownership itself (defence in depth).

Endpoints ask for :data:`CurrentUser`, :data:`OptionalUser` or ``require_roles(...)``;
the :class:`TokenVerifier` behind them lives on ``app.state.token_verifier`` and is
created in :func:`marquee_platform.app.create_service_app`'s lifespan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKError,
)

from marquee_platform.errors import PermissionDenied, Unauthenticated, Unavailable

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "RS256"})
"""Only asymmetric algorithms: a symmetric one would let anyone holding the public key
forge tokens (algorithm confusion), and ``none`` would need no key at all."""

_REQUIRED_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "jti")
_MAX_TOKEN_LENGTH = 8192
"""Far above any token auth issues; stops us parsing megabytes from a hostile header."""
_MIN_RSA_KEY_BITS = 2048


class Role(StrEnum):
    CUSTOMER = "customer"
    ORGANIZER = "organizer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified access token."""

    user_id: str
    roles: frozenset[Role]
    token_id: str
    expires_at: datetime
    issued_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has_role(self, role: Role | str) -> bool:
        """Whether the token carries ``role`` itself (admin does not imply other roles here;
        :func:`require_roles` is where admin is let through everything)."""
        return Role(role) in self.roles


RevocationCheck = Callable[[Principal], Awaitable[bool]]
"""``async def is_revoked(principal) -> bool``: e.g. the user was deleted after sign-in."""


class SigningKeys(Protocol):
    """Where a verifier finds public keys by ``kid``: :class:`JwksCache`, or a fake in tests."""

    async def get_key(self, kid: str) -> PyJWK: ...


class UnknownSigningKey(Exception):
    """No published key has this ``kid`` (even after looking again)."""


class _JwksFetchFailed(Exception):
    pass


def _algorithm_for(jwk: Mapping[str, Any]) -> str | None:
    declared = jwk.get("alg")
    if declared is not None:
        return declared if declared in ALLOWED_ALGORITHMS else None
    if jwk.get("kty") == "RSA":
        return "RS256"
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return "EdDSA"
    return None


def parse_jwks(document: Any) -> dict[str, PyJWK]:
    """The usable signing keys of a JWKS document, by ``kid``.

    Keys we cannot use (no kid, encryption keys, other algorithms, weak RSA) are skipped
    rather than failing the whole set, so auth can publish extra keys without breaking us.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _JwksFetchFailed("the document has no 'keys' list")
    keys: dict[str, PyJWK] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
            continue
        algorithm = _algorithm_for(jwk)
        if algorithm is None:
            logger.warning("skipping JWKS key %s: not an EdDSA or RS256 signing key", kid)
            continue
        try:
            key = PyJWK(jwk, algorithm=algorithm)
        except PyJWKError as error:
            logger.warning("skipping JWKS key %s: %s", kid, error)
            continue
        if algorithm == "RS256" and key.key.key_size < _MIN_RSA_KEY_BITS:
            logger.warning("skipping JWKS key %s: RSA key shorter than 2048 bits", kid)
            continue
        keys[kid] = key
    if not keys:
        raise _JwksFetchFailed("the document has no usable signing keys")
    return keys


class JwksCache:
    """The auth service's public keys, fetched over HTTP and kept for ``ttl`` seconds.

    - An unknown ``kid`` triggers one refetch, so a freshly rotated key is picked up without
      waiting for the TTL; fetches happen at most every ``min_refetch_interval`` seconds so
      tokens with made-up kids cannot turn us into a load generator against auth.
    - If the JWKS endpoint is down, the keys we already have keep being used for up to
      ``max_stale`` seconds after their last successful fetch: a short auth outage must not
      take every service down with it. Past that we refuse, because a key auth has since
      withdrawn (compromised) must stop working eventually.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refetch_interval: float = 10.0,
        max_stale: float = 3600.0,
        request_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl = ttl
        self._min_refetch_interval = min_refetch_interval
        self._max_stale = max(max_stale, ttl)
        self._request_timeout = request_timeout
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt_at: float | None = None
        self._last_error: str | None = None
        self._attempts = 0
        self._lock = asyncio.Lock()

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def get_key(self, kid: str) -> PyJWK:
        """The key for ``kid``; :class:`UnknownSigningKey` if auth does not publish it.

        Raises :class:`~marquee_platform.errors.Unavailable` when we cannot tell, because
        the JWKS cannot be fetched and what we hold is missing or too old.
        """
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            await self._refresh()  # maybe rotated since we last looked
            key = self._keys.get(kid)
        self._ensure_usable()
        if key is None:
            if self._last_error is not None:
                raise Unavailable(
                    "Cannot check this access token right now: the signing keys could not be "
                    "fetched from the auth service. Retry in a few seconds."
                )
            raise UnknownSigningKey(kid)
        return key

    def _ensure_usable(self) -> None:
        if self._fetched_at is None or self._clock() - self._fetched_at > self._max_stale:
            raise Unavailable(
                "Cannot check access tokens right now: the auth service's signing keys are "
                "unreachable. Retry in a few seconds."
            )

    async def _refresh(self) -> None:
        """Fetch the JWKS unless someone just did (or tried); never raises."""
        attempts_seen = self._attempts
        async with self._lock:
            if self._attempts != attempts_seen:
                return  # another request refreshed while we waited for the lock
            now = self._clock()
            if (
                self._last_attempt_at is not None
                and now - self._last_attempt_at < self._min_refetch_interval
            ):
                return
            self._attempts += 1
            self._last_attempt_at = now
            try:
                keys = await self._fetch()
            except _JwksFetchFailed as error:
                self._last_error = str(error)
                logger.warning(
                    "could not refresh the JWKS from %s (%s); keeping %d cached key(s)",
                    self.url,
                    error,
                    len(self._keys),
                )
                return
            self._keys = keys
            self._fetched_at = self._clock()
            self._last_error = None

    async def _fetch(self) -> dict[str, PyJWK]:
        try:
            response = await self._client.get(
                self.url,
                headers={"Accept": "application/json"},
                timeout=self._request_timeout,
            )
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise _JwksFetchFailed(f"{type(error).__name__}: {error}") from error
        return parse_jwks(document)


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


# ---- FastAPI dependencies -------------------------------------------------------------

_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from the auth service: `Authorization: Bearer <token>`.",
)


def _verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise RuntimeError(
            "no app.state.token_verifier; build the app with create_service_app "
            "(its lifespan creates one) or set it in the test"
        )
    return verifier


async def _optional_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Principal | None:
    """The caller if they sent a token; a token that is sent must be valid.

    A bad token is rejected even where signing in is optional, so a client with an expired
    token learns to refresh instead of silently seeing the anonymous view.
    """
    if credentials is None:
        if request.headers.get("authorization"):
            raise _invalid(
                "The Authorization header must be 'Bearer <access token>'; "
                "other schemes are not accepted."
            )
        request.state.principal = None
        return None
    principal = await _verifier_of(request).verify(credentials.credentials)
    request.state.principal = principal
    return principal


async def _current_user(
    principal: Annotated[Principal | None, Depends(_optional_user)],
) -> Principal:
    if principal is None:
        raise Unauthenticated(
            "Sign in first: send 'Authorization: Bearer <access token>' with this request.",
            code="authentication-required",
        )
    return principal


OptionalUser = Annotated[Principal | None, Depends(_optional_user)]
CurrentUser = Annotated[Principal, Depends(_current_user)]


def require_roles(*roles: Role | str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency letting through callers with any of ``roles`` (admins always).

    Use as ``dependencies=[Depends(require_roles("organizer"))]`` or as a parameter
    ``organizer: Annotated[Principal, Depends(require_roles(Role.ORGANIZER))]``.
    A misspelt role fails at import time, not at request time.
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    wanted = frozenset(Role(role) for role in roles)
    wanted_text = " or ".join(sorted(wanted))

    async def require(principal: CurrentUser) -> Principal:
        if principal.is_admin or principal.roles & wanted:
            return principal
        have = ", ".join(sorted(principal.roles)) or "no roles"
        raise PermissionDenied(
            f"This needs the {wanted_text} role; your account has {have}. "
            "Ask an admin if you need it."
        )

    require.__name__ = f"require_{'_or_'.join(sorted(wanted))}"
    return require


def ensure_owner(principal: Principal, owner_id: object, *, what: str) -> None:
    """Refuse unless ``principal`` owns the thing (``owner_id``) or is an admin.

    Services call this after loading the thing, whatever the gateway already checked.
    """
    if principal.is_admin or str(owner_id) == principal.user_id:
        return
    raise PermissionDenied(f"You can only change your own {what}.")


# ---- revocation of access tokens already issued -----------------------------------------

TOKENS_NOT_BEFORE_KEY = "auth:tokens-not-before:{user_id}"
"""Redis key (a shared contract): access tokens of this user issued before the stored unix
time are refused. Auth sets it on logout-everywhere, password change and account deletion,
with a TTL of the access token lifetime (older tokens have expired anyway)."""


def redis_revocation_check(redis: Any) -> RevocationCheck:
    """``is_revoked`` backed by :data:`TOKENS_NOT_BEFORE_KEY` in Redis."""

    async def is_revoked(principal: Principal) -> bool:
        raw = await redis.get(TOKENS_NOT_BEFORE_KEY.format(user_id=principal.user_id))
        if raw is None:
            return False
        if principal.issued_at is None:
            return True
        return principal.issued_at.timestamp() < float(raw)

    return is_revoked


async def revoke_tokens_issued_before(
    redis: Any, user_id: str, *, at: datetime, token_lifetime_seconds: int
) -> None:
    """Refuse ``user_id``'s access tokens issued before ``at`` (see TOKENS_NOT_BEFORE_KEY)."""
    await redis.set(
        TOKENS_NOT_BEFORE_KEY.format(user_id=user_id),
        str(at.timestamp()),
        ex=token_lifetime_seconds + 60,
    )
