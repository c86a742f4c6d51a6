"""What several handler modules use: a live account, emailed one-time links, role order."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from marquee_auth.domain import TokenPurpose, field_error, hash_token, new_secret_token
from marquee_auth.models import OneTimeToken, User
from marquee_auth.repository import OneTimeTokenRepository, UserRepository
from marquee_platform.errors import Gone, Unauthenticated
from marquee_platform.security import Role

_ROLE_ORDER = [Role.CUSTOMER, Role.ORGANIZER, Role.ADMIN]


def ordered_roles(roles: set[str]) -> list[str]:
    return [role.value for role in _ROLE_ORDER if role.value in roles]


async def live_user(users: UserRepository, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    user = await users.get(user_id, for_update=for_update)
    if user is None or user.deleted_at is not None:
        raise Unauthenticated(
            "This account no longer exists; its tokens no longer work.", code="account-deleted"
        )
    return user


async def issue_one_time_token(
    user: User,
    purpose: TokenPurpose,
    email: str,
    lifetime: timedelta,
    *,
    one_time_tokens: OneTimeTokenRepository,
    now: datetime,
) -> tuple[str, datetime]:
    """A fresh single-use token for ``purpose`` (replacing any earlier one); only its hash
    is stored. Returns the token, for the email, and when it expires."""
    token = new_secret_token()
    expires_at = now + lifetime
    await one_time_tokens.replace(
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_token(token),
        email=email,
        now=now,
        expires_at=expires_at,
    )
    return token, expires_at


async def usable_token(
    one_time_tokens: OneTimeTokenRepository,
    token: str,
    purpose: TokenPurpose,
    *,
    now: datetime,
    what: str,
) -> OneTimeToken:
    record = await one_time_tokens.find(hash_token(token), purpose=purpose)
    if record is None:
        raise field_error(
            "token",
            [f"This {what} is not valid; it may have been replaced by a newer one."],
            code="invalid-token",
        )
    if record.used_at is not None:
        raise Gone(f"This {what} was already used; each works once.", code="token-used")
    if record.expires_at <= now:
        raise Gone(f"This {what} has expired; ask for a new one.", code="token-expired")
    return record
