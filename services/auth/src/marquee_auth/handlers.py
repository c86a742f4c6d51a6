"""One async function per command. Dependencies come as keyword arguments; nothing here
commits (the caller owns the transaction) and every event goes through the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from marquee_auth.domain import (
    GRANTABLE_ROLES,
    AuthPolicy,
    ChangeEmail,
    ChangePassword,
    RegisterUser,
    ResetPassword,
    RevocationReason,
    Role,
    SignIn,
    TokenPurpose,
    UpdateProfile,
    canonical_email,
    check_password,
    field_error,
    hash_token,
    new_secret_token,
    normalize_email,
    normalize_profile_changes,
)
from marquee_auth.models import OneTimeToken, SigningKey, User
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import (
    OneTimeTokenRepository,
    RefreshTokenRepository,
    SigningKeyRepository,
    UserRepository,
)
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations, generate_signing_key, sign_access_token
from marquee_contracts.auth import (
    EMAIL_CHANGED,
    EMAIL_VERIFICATION_REQUESTED,
    PASSWORD_CHANGED,
    PASSWORD_RESET_REQUESTED,
    ROLE_CHANGED,
    USER_DELETED,
    USER_REGISTERED,
    EmailChanged,
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
    RoleChanged,
    UserDeleted,
    UserRegistered,
)
from marquee_platform.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from marquee_platform.outbox import Outbox

Clock = Callable[[], datetime]

_ROLE_ORDER = [Role.CUSTOMER, Role.ORGANIZER, Role.ADMIN]


def _ordered(roles: set[str]) -> list[str]:
    return [role.value for role in _ROLE_ORDER if role.value in roles]


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a sign-in or refresh hands out. The refresh token exists only here: we keep
    its digest."""

    user_id: uuid.UUID
    roles: list[str]
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshRefused:
    """A refresh that must fail *and* whose effect (revoking the family) must commit."""

    detail: str
    code: str


# ---- registration and email verification ---------------------------------------------------


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
    await _send_verification(
        user,
        email,
        "registration",
        one_time_tokens=one_time_tokens,
        outbox=outbox,
        policy=policy,
        now=now,
    )
    return user


async def _issue_one_time_token(
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


async def _send_verification(
    user: User,
    email: str,
    reason: str,
    *,
    one_time_tokens: OneTimeTokenRepository,
    outbox: Outbox,
    policy: AuthPolicy,
    now: datetime,
) -> None:
    token, expires_at = await _issue_one_time_token(
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
    user = await _live_user(users, user_id, for_update=True)
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
    await _send_verification(
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
    record = await _usable_token(
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


async def _usable_token(
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


# ---- sign-in, refresh, sign-out ----------------------------------------------------------


async def sign_in(
    cmd: SignIn,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    throttle: LoginThrottle,
    hasher: PasswordHasher,
    policy: AuthPolicy,
    clock: Clock,
) -> TokenPair:
    email = canonical_email(cmd.email)
    await throttle.check(email, cmd.client_address)
    # No row lock while the hash is checked (tens of milliseconds): concurrent sign-ins of
    # one account must not queue behind each other holding database connections.
    user = await users.by_email(email)
    password_hash = user.password_hash if user is not None else None
    if not await hasher.verify(password_hash, cmd.password) or user is None:
        await throttle.record_failure(email, cmd.client_address)
        raise Unauthenticated(
            "The email address or the password is not right.", code="invalid-credentials"
        )
    await throttle.reset_account(email)
    now = clock()
    assert password_hash is not None
    if hasher.needs_rehash(password_hash):
        # Only if the hash is still the one we checked: a password change that committed
        # meanwhile must not be overwritten with the old password.
        await users.replace_password_hash(
            user.id, old=password_hash, new=await hasher.hash(cmd.password)
        )
    await users.record_login(user.id, at=now)
    return await _start_session(
        user, refresh_tokens=refresh_tokens, keys=keys, policy=policy, now=now
    )


async def _start_session(
    user: User,
    *,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    policy: AuthPolicy,
    now: datetime,
) -> TokenPair:
    expires_at = now + policy.refresh_token_ttl
    family = await refresh_tokens.start_family(user_id=user.id, now=now, expires_at=expires_at)
    refresh_token = new_secret_token()
    await refresh_tokens.add_token(
        family=family, token_hash=hash_token(refresh_token), now=now, expires_at=expires_at
    )
    return await _pair(user, refresh_token, expires_at, keys=keys, policy=policy, now=now)


async def _pair(
    user: User,
    refresh_token: str,
    refresh_expires_at: datetime,
    *,
    keys: SigningKeyRepository,
    policy: AuthPolicy,
    now: datetime,
) -> TokenPair:
    key = await keys.signing_key(now=now)
    if key is None:
        raise Unavailable(
            "The auth service has no signing key yet (it creates one when it starts); "
            "retry in a moment."
        )
    roles = _ordered(set(user.roles))
    access = sign_access_token(
        key,
        user_id=user.id,
        roles=roles,
        now=now,
        lifetime=policy.access_token_ttl,
        issuer=policy.issuer,
        audience=policy.audience,
    )
    return TokenPair(
        user_id=user.id,
        roles=roles,
        access_token=access.token,
        access_token_expires_at=access.expires_at,
        refresh_token=refresh_token,
        refresh_token_expires_at=refresh_expires_at,
    )


async def refresh_session(
    refresh_token: str,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    revocations: AccessTokenRevocations,
    policy: AuthPolicy,
    clock: Clock,
) -> TokenPair | RefreshRefused:
    """Rotate: the presented token is used up and a new one replaces it.

    A token that was already rotated can only be presented again by someone holding a
    copy (or a client that lost the answer to its refresh): the whole family is revoked
    and the user's access tokens die too. The caller must *commit* that, then answer 401.
    """
    now = clock()
    found = await refresh_tokens.find(hash_token(refresh_token))
    if found is None:
        raise Unauthenticated(
            "This refresh token is not valid (it may have expired); sign in again.",
            code="invalid-refresh-token",
        )
    token, family = found
    if family.revoked_at is not None:
        raise Unauthenticated(
            "This session has ended (signed out or revoked); sign in again.",
            code="session-ended",
        )
    if token.used_at is not None:
        await refresh_tokens.revoke_family(
            family.id, now=now, reason=RevocationReason.REUSE_DETECTED
        )
        await revocations.revoke_all(family.user_id, at=now)
        return RefreshRefused(
            detail=(
                "This refresh token was already used once. Someone may have copied it, so "
                "this session has been ended on every device that shared it; sign in again."
            ),
            code="refresh-token-reused",
        )
    if token.expires_at <= now:
        raise Unauthenticated(
            "This refresh token has expired; sign in again.", code="refresh-token-expired"
        )
    user = await users.get(family.user_id)
    if user is None or user.deleted_at is not None:
        raise Unauthenticated("This account no longer exists.", code="account-deleted")
    token.used_at = now
    expires_at = now + policy.refresh_token_ttl
    new_token = new_secret_token()
    await refresh_tokens.add_token(
        family=family, token_hash=hash_token(new_token), now=now, expires_at=expires_at
    )
    return await _pair(user, new_token, expires_at, keys=keys, policy=policy, now=now)


async def sign_out(
    refresh_token: str, *, refresh_tokens: RefreshTokenRepository, clock: Clock
) -> None:
    """End the session the token belongs to. Unknown tokens are ignored: signing out
    twice is fine, and the answer reveals nothing about a token."""
    found = await refresh_tokens.find(hash_token(refresh_token))
    if found is not None:
        await refresh_tokens.revoke_family(found[1].id, now=clock(), reason=RevocationReason.LOGOUT)


async def sign_out_everywhere(
    user_id: uuid.UUID,
    *,
    refresh_tokens: RefreshTokenRepository,
    revocations: AccessTokenRevocations,
    clock: Clock,
) -> None:
    now = clock()
    await refresh_tokens.revoke_all_families(
        user_id, now=now, reason=RevocationReason.LOGOUT_EVERYWHERE
    )
    await revocations.revoke_all(user_id, at=now)


# ---- passwords ------------------------------------------------------------------------------


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
    token, expires_at = await _issue_one_time_token(
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
    record = await _usable_token(
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


async def _confirm_password(
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
    user = await _live_user(users, user_id, for_update=True)
    await _confirm_password(
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
    return await _start_session(
        user, refresh_tokens=refresh_tokens, keys=keys, policy=policy, now=clock()
    )


# ---- profile ------------------------------------------------------------------------------


async def _live_user(
    users: UserRepository, user_id: uuid.UUID, *, for_update: bool = False
) -> User:
    user = await users.get(user_id, for_update=for_update)
    if user is None or user.deleted_at is not None:
        raise Unauthenticated(
            "This account no longer exists; its tokens no longer work.", code="account-deleted"
        )
    return user


async def get_profile(user_id: uuid.UUID, *, users: UserRepository) -> User:
    return await _live_user(users, user_id)


async def update_profile(
    user_id: uuid.UUID, cmd: UpdateProfile, *, users: UserRepository, clock: Clock
) -> User:
    changes = normalize_profile_changes(cmd.changes)
    user = await _live_user(users, user_id, for_update=True)
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
    user = await _live_user(users, user_id, for_update=True)
    await _confirm_password(
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
    await _send_verification(
        user,
        new_email,
        "email-change",
        one_time_tokens=one_time_tokens,
        outbox=outbox,
        policy=policy,
        now=now,
    )
    return user


# ---- roles -----------------------------------------------------------------------------------


async def change_role(
    user_id: uuid.UUID,
    role: str,
    *,
    grant: bool,
    changed_by: uuid.UUID | None,
    users: UserRepository,
    outbox: Outbox,
    clock: Clock,
) -> User:
    """Grant or revoke ``role`` (idempotent: no event when nothing changes). The user's
    tokens carry the new roles from their next refresh."""
    if role not in GRANTABLE_ROLES:
        grantable = ", ".join(sorted(GRANTABLE_ROLES))
        raise field_error(
            "role",
            [
                f"Only these roles can be granted or revoked here: {grantable}. "
                "Admins are made by an operator with 'marquee auth create-admin'."
            ],
            code="role-not-grantable",
        )
    user = await users.get(user_id, for_update=True)
    if user is None:
        raise NotFound(f"There is no user {user_id}.", code="user-not-found")
    if user.deleted_at is not None:
        raise Gone(f"User {user_id} deleted their account.", code="account-deleted")
    return await _set_role(
        user, role, grant=grant, changed_by=changed_by, outbox=outbox, now=clock()
    )


async def _set_role(
    user: User,
    role: str,
    *,
    grant: bool,
    changed_by: uuid.UUID | None,
    outbox: Outbox,
    now: datetime,
) -> User:
    roles = set(user.roles)
    if (role in roles) == grant:
        return user
    roles = roles | {role} if grant else roles - {role}
    user.roles = _ordered(roles)
    user.updated_at = now
    await outbox.add(
        ROLE_CHANGED.name,
        RoleChanged(
            user_id=user.id,
            role=role,
            change="granted" if grant else "revoked",
            roles=user.roles,
            changed_by=changed_by,
            changed_at=now,
        ),
        key=user.id,
    )
    return user


async def create_admin(
    email: str,
    password: str,
    *,
    users: UserRepository,
    outbox: Outbox,
    hasher: PasswordHasher,
    clock: Clock,
) -> tuple[User, bool]:
    """Make ``email`` an admin: a new, verified account, or an existing one promoted (its
    password is then left alone). Returns the user and whether it was created."""
    email = normalize_email(email)
    now = clock()
    await users.lock_email(email)
    user = await users.by_email(email, for_update=True)
    if user is not None:
        await _set_role(user, Role.ADMIN, grant=True, changed_by=None, outbox=outbox, now=now)
        return user, False
    check_password(password, email=email)
    user = User(
        id=uuid.uuid4(),
        email=email,
        email_verified_at=now,  # an operator vouches for the address
        password_hash=await hasher.hash(password),
        password_changed_at=now,
        roles=[Role.CUSTOMER.value],
        created_at=now,
        updated_at=now,
    )
    users.add(user)
    await users.flush()
    await outbox.add(
        USER_REGISTERED.name,
        UserRegistered(user_id=user.id, email=email, locale=None, registered_at=now),
        key=user.id,
    )
    await _set_role(user, Role.ADMIN, grant=True, changed_by=None, outbox=outbox, now=now)
    return user, True


# ---- privacy ------------------------------------------------------------------------------


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
    user = await _live_user(users, user_id)
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
    user = await _live_user(users, user_id, for_update=True)
    await _confirm_password(
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


# ---- signing keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyMaintenance:
    created: list[str]
    promoted: list[str]
    retired: list[str]
    deleted: int


async def maintain_signing_keys(
    *, keys: SigningKeyRepository, policy: AuthPolicy, clock: Clock
) -> KeyMaintenance:
    """Run at start and periodically; safe when several instances run it at once.

    Creates the first key; promotes a ``next`` key once it is due (retiring the active
    one); schedules a ``next`` key when the active one is older than the rotation age;
    deletes retired keys once every token they signed has expired.
    """
    await keys.lock()
    now = clock()
    all_keys = list(await keys.all())
    created: list[str] = []
    promoted, retired = await _promote_due_keys(all_keys, keys=keys, now=now)
    active = next((key for key in all_keys if key.state == "active"), None)
    if active is None:
        key = generate_signing_key(now=now, activates_at=now, state="active")
        keys.add(key)
        await keys.flush()
        created.append(key.kid)
    elif (
        policy.key_rotation_age is not None
        and active.activates_at <= now - policy.key_rotation_age
        and not any(key.state == "next" for key in all_keys)
    ):
        key = await _schedule_next_key(keys=keys, policy=policy, now=now)
        created.append(key.kid)
    deleted = await keys.delete_retired_before(now - policy.retired_key_kept_for)
    return KeyMaintenance(created=created, promoted=promoted, retired=retired, deleted=deleted)


async def _promote_due_keys(
    all_keys: list[SigningKey], *, keys: SigningKeyRepository, now: datetime
) -> tuple[list[str], list[str]]:
    due = [key for key in all_keys if key.state == "next" and key.activates_at <= now]
    if not due:
        return [], []
    newest = max(due, key=lambda key: key.activates_at)
    retired = []
    for key in all_keys:
        if key.state == "active" or (key.state == "next" and key is not newest and key in due):
            key.state, key.retired_at = "retired", now
            retired.append(key.kid)
    await keys.flush()  # the old active key must be retired before the new one is active
    newest.state = "active"
    await keys.flush()
    return [newest.kid], retired


async def _schedule_next_key(
    *, keys: SigningKeyRepository, policy: AuthPolicy, now: datetime
) -> SigningKey:
    key = generate_signing_key(now=now, activates_at=now + policy.key_publish_ahead, state="next")
    keys.add(key)
    await keys.flush()
    if policy.key_publish_ahead.total_seconds() <= 0:
        await _promote_due_keys(list(await keys.all()), keys=keys, now=now)
    return key


async def rotate_signing_keys(
    *,
    keys: SigningKeyRepository,
    policy: AuthPolicy,
    clock: Clock,
    immediately: bool = False,
    withdraw_previous: bool = False,
) -> SigningKey:
    """Start using a new signing key.

    By default the new key is published now and signs from ``key_publish_ahead`` later,
    so every verifier's cached JWKS already has it. ``immediately`` (a compromised key)
    makes it sign at once; ``withdraw_previous`` also removes every older key from the
    JWKS, so tokens they signed stop working as soon as verifiers refetch.
    """
    await keys.lock()
    now = clock()
    existing = list(await keys.all())
    if immediately or withdraw_previous:
        for key in existing:
            if key.state == "next":
                await keys.delete(key.kid)  # never signed anything
        key = generate_signing_key(now=now, activates_at=now, state="next")
        keys.add(key)
        await keys.flush()
        await _promote_due_keys(list(await keys.all()), keys=keys, now=now)
        if withdraw_previous:
            for old in existing:
                await keys.delete(old.kid)
        return key
    upcoming = next((key for key in existing if key.state == "next"), None)
    if upcoming is not None:
        return upcoming
    return await _schedule_next_key(keys=keys, policy=policy, now=now)


async def prune_expired(
    *,
    refresh_tokens: RefreshTokenRepository,
    one_time_tokens: OneTimeTokenRepository,
    policy: AuthPolicy,
    clock: Clock,
) -> int:
    """Forget what can no longer be used: expired tokens, sessions over for a week."""
    now = clock()
    week = timedelta(days=7)
    return await refresh_tokens.prune(now=now, keep_ended_for=week) + await one_time_tokens.prune(
        now=now, keep_for=timedelta(days=1)
    )
