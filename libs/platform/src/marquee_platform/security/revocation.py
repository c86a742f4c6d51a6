"""Revoking access tokens already issued: the Redis not-before marker (a shared contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marquee_platform.security.principal import Principal, RevocationCheck

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
