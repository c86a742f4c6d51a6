"""Registration and email verification: new accounts and the links that prove an address."""

from __future__ import annotations

import uuid
from datetime import datetime

from marquee_auth.domain import (
    AuthPolicy,
    RegisterUser,
    TokenPurpose,
    check_password,
    normalize_email,
    normalize_profile_changes,
)
from marquee_auth.handlers.shared import issue_one_time_token, live_user, usable_token
from marquee_auth.models import User
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import OneTimeTokenRepository, UserRepository
from marquee_contracts.auth import (
    EMAIL_CHANGED,
    EMAIL_VERIFICATION_REQUESTED,
    USER_REGISTERED,
    EmailChanged,
    EmailVerificationRequested,
    UserRegistered,
)
from marquee_platform.clock import Clock
from marquee_platform.errors import Conflict, Gone
from marquee_platform.outbox import Outbox
from marquee_platform.security import Role


async def register(
    cmd: RegisterUser,
    *,
    users: UserRepository,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    policy: AuthPolicy,
    clock: Clock,
) -> User:
    email = normalize_email(cmd.email)
    check_password(cmd.password, email=email)
    profile = normalize_profile_changes(
        {field: value for field, value in (("name", cmd.name), ("locale", cmd.locale)) if value}
    )
    await users.lock_email(email)
    if await users.email_taken(email):
        # Saying so lets someone learn that an address has an account; registration cannot
        # avoid it without emailing instead of answering, and the login throttle and the
        # identical password-reset answer keep the other doors shut.
        raise Conflict(
            f"An account with {email} already exists. Sign in, or reset the password if "
            "you forgot it.",
            code="email-taken",
        )
    now = clock()
    user = User(
        id=uuid.uuid4(),
        email=email,
        password_hash=await hasher.hash(cmd.password),
        password_changed_at=now,
        name=profile.get("name"),
        locale=profile.get("locale"),
        roles=[Role.CUSTOMER.value],
        created_at=now,
        updated_at=now,
    )
    users.add(user)
    await users.flush()
    await outbox.add(
        USER_REGISTERED.name,
        UserRegistered(user_id=user.id, email=email, locale=user.locale, registered_at=now),
        key=user.id,
    )
    await send_verification(
        user,
        email,
        "registration",
        one_time_tokens=one_time_tokens,
        outbox=outbox,
        policy=policy,
        now=now,
    )
    return user


async def send_verification(
    user: User,
    email: str,
    reason: str,
    *,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    policy: AuthPolicy,
    now: datetime,
) -> None:
    token, expires_at = await issue_one_time_token(
        user,
        TokenPurpose.VERIFY_EMAIL,
        email,
        policy.email_verification_ttl,
        one_time_tokens=one_time_tokens,
        now=now,
    )
    await outbox.add(
        EMAIL_VERIFICATION_REQUESTED.name,
        EmailVerificationRequested(
            user_id=user.id,
            email=email,
            token=token,
            expires_at=expires_at,
            reason="email-change" if reason == "email-change" else "registration",
        ),
        key=user.id,
    )


async def resend_verification(
    user_id: uuid.UUID,
    *,
    users: UserRepository,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    policy: AuthPolicy,
    clock: Clock,
) -> User:
    user = await live_user(users, user_id, for_update=True)
    if user.pending_email:
        email, reason = user.pending_email, "email-change"
    elif user.email_verified_at is None:
        assert user.email is not None
        email, reason = user.email, "registration"
    else:
        raise Conflict(
            "Your email address is already verified; there is nothing to send.",
            code="already-verified",
        )
    await send_verification(
        user,
        email,
        reason,
        one_time_tokens=one_time_tokens,
        outbox=outbox,
        policy=policy,
        now=clock(),
    )
    return user


async def verify_email(
    token: str,
    *,
    users: UserRepository,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    clock: Clock,
) -> User:
    now = clock()
    record = await usable_token(
        one_time_tokens, token, TokenPurpose.VERIFY_EMAIL, now=now, what="verification link"
    )
    user = await users.get(record.user_id, for_update=True)
    if user is None or user.deleted_at is not None:
        raise Gone("The account this link was for no longer exists.", code="account-deleted")
    record.used_at = now
    if record.email == user.email:
        user.email_verified_at = user.email_verified_at or now
    elif record.email == user.pending_email:
        await users.lock_email(record.email)
        if await users.email_taken(record.email, by_other_than=user.id):
            raise Conflict(
                f"{record.email} has meanwhile been taken by another account; "
                "choose another address.",
                code="email-taken",
            )
        previous = user.email
        user.email = record.email
        user.pending_email = None
        user.email_verified_at = now
        await outbox.add(
            EMAIL_CHANGED.name,
            EmailChanged(
                user_id=user.id, email=record.email, previous_email=previous, changed_at=now
            ),
            key=user.id,
        )
    else:
        raise Gone(
            "This link is for an address that is no longer on your account; "
            "use the newest link we sent.",
            code="token-superseded",
        )
    user.updated_at = now
    return user
