"""Public signing keys: parsing a JWKS document and a cache that refreshes it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from marquee_platform.errors import Unavailable

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "RS256"})
"""Only asymmetric algorithms: a symmetric one would let anyone holding the public key
forge tokens (algorithm confusion), and ``none`` would need no key at all."""

_REQUIRED_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "jti")
_MAX_TOKEN_LENGTH = 8192
"""Far above any token auth issues; stops us parsing megabytes from a hostile header."""
_MIN_RSA_KEY_BITS = 2048


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
