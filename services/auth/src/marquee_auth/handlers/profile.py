"""Your own account: profile, email change, and privacy (export, deletion)."""

from __future__ import annotations

import uuid
from typing import Any

from marquee_auth.domain import (
    AuthPolicy,
    ChangeEmail,
    UpdateProfile,
    field_error,
    normalize_email,
    normalize_profile_changes,
)
from marquee_auth.handlers.passwords import confirm_password
from marquee_auth.handlers.registration import send_verification
from marquee_auth.handlers.shared import live_user
from marquee_auth.models import User
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import OneTimeTokenRepository, RefreshTokenRepository, UserRepository
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations
from marquee_contracts.auth import USER_DELETED, UserDeleted
from marquee_platform.clock import Clock
from marquee_platform.errors import Conflict
from marquee_platform.outbox import Outbox

# ---- profile -----------------------------------------------------------------------------


async def get_profile(user_id: uuid.UUID, *, users: UserRepository) -> User:
    return await live_user(users, user_id)


async def update_profile(
    user_id: uuid.UUID, cmd: UpdateProfile, *, users: UserRepository, clock: Clock
) -> User:
    changes = normalize_profile_changes(cmd.changes)
    user = await live_user(users, user_id, for_update=True)
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.updated_at = clock()
    return user


async def change_email(
    user_id: uuid.UUID,
    cmd: ChangeEmail,
    *,
    client_address: str,
    users: UserRepository,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    policy: AuthPolicy,
    clock: Clock,
) -> User:
    """Start an email change: the new address is pending until its link is used; the
    current one keeps working (and receiving mail) until then."""
    new_email = normalize_email(cmd.new_email)
    user = await live_user(users, user_id, for_update=True)
    await confirm_password(
        user,
        cmd.password,
        field="password",
        hasher=hasher,
        throttle=throttle,
        client_address=client_address,
    )
    if new_email == user.email:
        raise field_error("new_email", ["This is already your email address."])
    if await users.email_taken(new_email, by_other_than=user.id):
        raise Conflict(
            f"{new_email} is already used by another account; choose another address.",
            code="email-taken",
        )
    now = clock()
    user.pending_email = new_email
    user.updated_at = now
    await send_verification(
        user,
        new_email,
        "email-change",
        one_time_tokens=one_time_tokens,
        outbox=outbox,
        policy=policy,
        now=now,
    )
    return user


# ---- privacy -----------------------------------------------------------------------------


async def export_account(
    user_id: uuid.UUID,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    one_time_tokens: OneTimeTokenRepository,
    clock: Clock,
) -> dict[str, Any]:
    """Everything auth holds about the user (GDPR art. 15/20), except the secrets'
    digests, which are of no use to anyone and are not personal data."""
    user = await live_user(users, user_id)
    families = await refresh_tokens.families_of(user.id)
    tokens = await one_time_tokens.of_user(user.id)
    return {
        "generated_at": clock(),
        "account": {
            "id": user.id,
            "email": user.email,
            "email_verified_at": user.email_verified_at,
            "pending_email": user.pending_email,
            "name": user.name,
            "locale": user.locale,
            "phone": user.phone,
            "roles": user.roles,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "last_login_at": user.last_login_at,
            "password_changed_at": user.password_changed_at,
            "password": "set (stored only as an argon2id hash, which is not exported)",
        },
        "sessions": [
            {
                "id": family.id,
                "started_at": family.created_at,
                "last_used_at": family.last_used_at,
                "expires_at": family.expires_at,
                "ended_at": family.revoked_at,
                "ended_because": family.revoked_reason,
            }
            for family in families
        ],
        "emailed_links": [
            {
                "purpose": token.purpose,
                "sent_to": token.email,
                "created_at": token.created_at,
                "expires_at": token.expires_at,
                "used_at": token.used_at,
            }
            for token in tokens
        ],
    }


async def delete_account(
    user_id: uuid.UUID,
    password: str,
    *,
    client_address: str,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    revocations: AccessTokenRevocations,
    clock: Clock,
) -> None:
    """Delete the account: scrub every personal column (the id stays as a tombstone),
    drop sessions, links and stored copies, kill its tokens and tell every service."""
    user = await live_user(users, user_id, for_update=True)
    await confirm_password(
        user,
        password,
        field="password",
        hasher=hasher,
        throttle=throttle,
        client_address=client_address,
    )
    now = clock()
    for column in (
        "email",
        "email_verified_at",
        "pending_email",
        "password_hash",
        "password_changed_at",
        "name",
        "locale",
        "phone",
        "last_login_at",
    ):
        setattr(user, column, None)
    user.roles = []
    user.deleted_at = now
    user.updated_at = now
    await refresh_tokens.delete_all_of(user.id)
    await one_time_tokens.delete_all_of(user.id)
    await users.forget_stored_responses_about(user.id)
    await users.forget_events_about(user.id, keep_topic=USER_DELETED.name)
    await outbox.add(USER_DELETED.name, UserDeleted(user_id=user.id), key=user.id)
    await revocations.revoke_all(user.id, at=now)
