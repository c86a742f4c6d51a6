"""Passwords: reset by emailed link, change with the current one, and re-checks before
sensitive changes (they count towards the login lockout)."""

from __future__ import annotations

import uuid

from marquee_auth.domain import (
    AuthPolicy,
    ChangePassword,
    ResetPassword,
    RevocationReason,
    TokenPurpose,
    check_password,
    field_error,
    normalize_email,
)
from marquee_auth.handlers.sessions import TokenPair, start_session
from marquee_auth.handlers.shared import issue_one_time_token, live_user, usable_token
from marquee_auth.models import User
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import (
    OneTimeTokenRepository,
    RefreshTokenRepository,
    SigningKeyRepository,
    UserRepository,
)
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations
from marquee_contracts.auth import (
    PASSWORD_CHANGED,
    PASSWORD_RESET_REQUESTED,
    PasswordChanged,
    PasswordResetRequested,
)
from marquee_platform.clock import Clock
from marquee_platform.errors import Gone, InvalidInput
from marquee_platform.outbox import Outbox


async def request_password_reset(
    email: str,
    *,
    users: UserRepository,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    throttle: LoginThrottle,
    policy: AuthPolicy,
    clock: Clock,
) -> None:
    """Mail a reset link if the address has an account. The caller answers the same
    either way, so the answer does not tell who has an account."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        return
    user = await users.by_email(email)
    if user is None:
        return
    cooldown = int(policy.password_reset_cooldown.total_seconds())
    if not await throttle.first_in("password-reset", email, seconds=cooldown):
        return  # one link a minute is plenty; more would let anyone flood a mailbox
    now = clock()
    token, expires_at = await issue_one_time_token(
        user,
        TokenPurpose.RESET_PASSWORD,
        email,
        policy.password_reset_ttl,
        one_time_tokens=one_time_tokens,
        now=now,
    )
    await outbox.add(
        PASSWORD_RESET_REQUESTED.name,
        PasswordResetRequested(user_id=user.id, email=email, token=token, expires_at=expires_at),
        key=user.id,
    )


async def reset_password(
    cmd: ResetPassword,
    *,
    users: UserRepository,
    one_time_tokens: OneTimeTokenRepository,
    refresh_tokens: RefreshTokenRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    revocations: AccessTokenRevocations,
    clock: Clock,
) -> None:
    now = clock()
    record = await usable_token(
        one_time_tokens, cmd.token, TokenPurpose.RESET_PASSWORD, now=now, what="reset link"
    )
    user = await users.get(record.user_id, for_update=True)
    if user is None or user.deleted_at is not None or user.email != record.email:
        raise Gone(
            "This reset link is for an address no longer on any account.", code="token-superseded"
        )
    check_password(cmd.new_password, email=user.email, field="new_password")
    record.used_at = now
    user.password_hash = await hasher.hash(cmd.new_password)
    user.password_changed_at = now
    user.updated_at = now
    # The link reached this inbox, which proves the address as well as a verification would.
    user.email_verified_at = user.email_verified_at or now
    await refresh_tokens.revoke_all_families(
        user.id, now=now, reason=RevocationReason.PASSWORD_RESET
    )
    await revocations.revoke_all(user.id, at=now)
    await throttle.reset_account(record.email)
    await outbox.add(
        PASSWORD_CHANGED.name,
        PasswordChanged(user_id=user.id, changed_at=now, reason="reset"),
        key=user.id,
    )


async def confirm_password(
    user: User,
    password: str,
    *,
    field: str,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    client_address: str,
) -> None:
    """Re-check the password before a sensitive change. Failures count towards the login
    lockout, so a stolen access token cannot be used to guess the password here."""
    assert user.email is not None
    await throttle.check(user.email, client_address)
    if not await hasher.verify(user.password_hash, password):
        await throttle.record_failure(user.email, client_address)
        raise field_error(field, ["This is not your current password."], code="wrong-password")


async def change_password(
    user_id: uuid.UUID,
    cmd: ChangePassword,
    *,
    client_address: str,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    revocations: AccessTokenRevocations,
    policy: AuthPolicy,
    clock: Clock,
) -> TokenPair:
    """Set a new password, sign out every session (access tokens included) and hand this
    device a fresh session, so the person changing it stays signed in."""
    user = await live_user(users, user_id, for_update=True)
    await confirm_password(
        user,
        cmd.current_password,
        field="current_password",
        hasher=hasher,
        throttle=throttle,
        client_address=client_address,
    )
    check_password(cmd.new_password, email=user.email, field="new_password")
    if cmd.new_password == cmd.current_password:
        raise field_error("new_password", ["The new password is the same as the current one."])
    now = clock()
    user.password_hash = await hasher.hash(cmd.new_password)
    user.password_changed_at = now
    user.updated_at = now
    await refresh_tokens.revoke_all_families(
        user.id, now=now, reason=RevocationReason.PASSWORD_CHANGED
    )
    await revocations.revoke_all(user.id, at=now)
    await outbox.add(
        PASSWORD_CHANGED.name,
        PasswordChanged(user_id=user.id, changed_at=now, reason="changed"),
        key=user.id,
    )
    # A moment after the revocation marker, so the new access token is not caught by it.
    return await start_session(
        user, refresh_tokens=refresh_tokens, keys=keys, policy=policy, now=clock()
    )
