"""The auth HTTP API, under ``/api/v1/auth``, plus the JWKS at the root.

Every endpoint says who may call it. Endpoints that hand out tokens (login, refresh,
password change) take no ``Idempotency-Key``: a stored replay would keep live tokens in
plain text for a day, and retrying them is harmless (another session, or a 401).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from marquee_auth import handlers
from marquee_auth.deps import (
    AdminUser,
    ClientAddressDep,
    ReadOneTimeTokensDep,
    ReadRefreshTokensDep,
    ReadSigningKeysDep,
    ReadUsersDep,
    RunHandler,
    RuntimeDep,
)
from marquee_auth.domain import (
    ChangeEmail,
    ChangePassword,
    RegisterUser,
    ResetPassword,
    SignIn,
    UpdateProfile,
)
from marquee_auth.repository import (
    RefreshTokenRepository,
    SigningKeyRepository,
    UserRepository,
)
from marquee_auth.schemas import (
    Accepted,
    ChangeEmailRequest,
    ChangePasswordRequest,
    DeleteAccountRequest,
    JsonWebKeySet,
    LoginRequest,
    PasswordResetConfirmRequest,
    PasswordResetRequest,
    ProfileUpdateRequest,
    RefreshTokenRequest,
    RegisterRequest,
    RoleChangeRead,
    TokenPairRead,
    UserRead,
    VerifyEmailRequest,
)
from marquee_auth.tokens import jwks_document
from marquee_platform.deps import ClockDep, DatabaseDep
from marquee_platform.errors import NotFound, Unauthenticated
from marquee_platform.http import router
from marquee_platform.idempotency import IdempotencyKey
from marquee_platform.security import CurrentUser, ensure_owner

auth = router(prefix="/api/v1/auth", tags=["auth"])
well_known = router(tags=["keys"])


def _user_id(principal_user_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(principal_user_id)
    except ValueError:
        raise Unauthenticated(
            "This access token's subject is not a Marquee user id; sign in again.",
            code="invalid-token",
        ) from None


# ---- registration and verification ----------------------------------------------------------


@auth.post("/register", status_code=201, summary="Create an account (anyone)")
async def register(body: RegisterRequest, run: RunHandler, _: IdempotencyKey) -> UserRead:
    """**Who may call:** anyone. Creates a customer account and emails a verification link.

    Password rules: at least 10 characters, not your email address, not one of the most
    common passwords; every broken rule is listed in the 422. 409 if the email is taken.
    """
    user = await run(
        handlers.register,
        RegisterUser(email=body.email, password=body.password, name=body.name, locale=body.locale),
    )
    return UserRead.of(user)


@auth.post("/verify-email", summary="Verify an email address with its link's token (anyone)")
async def verify_email(body: VerifyEmailRequest, run: RunHandler) -> UserRead:
    """**Who may call:** anyone holding the token from a verification email.

    Works once; 410 if used or expired. For an email change, the new address replaces the
    old one now.
    """
    user = await run(handlers.verify_email, body.token)
    return UserRead.of(user)


@auth.post(
    "/verify-email/resend", status_code=202, summary="Send the verification link again (self)"
)
async def resend_verification(
    principal: CurrentUser, run: RunHandler, _: IdempotencyKey
) -> Accepted:
    """**Who may call:** a signed-in user, for their own address (or pending new address).
    Earlier links stop working."""
    user = await run(handlers.resend_verification, _user_id(principal.user_id))
    return Accepted(detail=f"We sent a new link to {user.pending_email or user.email}.")


# ---- sessions --------------------------------------------------------------------------------


@auth.post("/login", summary="Sign in: email and password for tokens (anyone)")
async def login(body: LoginRequest, run: RunHandler, address: ClientAddressDep) -> TokenPairRead:
    """**Who may call:** anyone. Returns a short-lived access token (JWT) and a refresh token.

    Failed attempts are limited per account (after 5 in 15 minutes the account is locked
    for 30 s, doubling with every further failure) and per network address; both answer 429
    with ``Retry-After``.
    """
    pair = await run(
        handlers.sign_in, SignIn(email=body.email, password=body.password, client_address=address)
    )
    return TokenPairRead.of(pair, now=run.clock())


@auth.post("/refresh", summary="Swap a refresh token for new tokens (holder of the token)")
async def refresh(
    body: RefreshTokenRequest, database: DatabaseDep, runtime: RuntimeDep, clock: ClockDep
) -> TokenPairRead:
    """**Who may call:** whoever holds a refresh token.

    Rotation: the token is used up and the answer carries the next one. Presenting a token
    that was already used ends that session on every device (it must have been copied)
    and answers 401 ``refresh-token-reused``. Roles granted or revoked since the last
    refresh take effect here.
    """
    # Its own transaction rather than the request's: when a reused token is detected the
    # family's revocation must commit even though the answer is a 401 (the request's
    # transaction rolls back on any error status).
    async with database.transaction() as session:
        outcome = await handlers.refresh_session(
            body.refresh_token,
            users=UserRepository(session),
            refresh_tokens=RefreshTokenRepository(session),
            keys=SigningKeyRepository(session),
            revocations=runtime.revocations,
            policy=runtime.policy,
            clock=clock,
        )
    if isinstance(outcome, handlers.RefreshRefused):
        raise Unauthenticated(outcome.detail, code=outcome.code)
    return TokenPairRead.of(outcome, now=clock())


@auth.post("/logout", status_code=204, summary="End this session (holder of the refresh token)")
async def logout(body: RefreshTokenRequest, run: RunHandler) -> None:
    """**Who may call:** whoever holds the session's refresh token (no access token needed,
    so an expired one does not stop you signing out).

    Revokes the refresh token's family. The access token in hand keeps working until it
    expires (at most 15 minutes): discard it, or use logout-everywhere to kill it at once.
    """
    await run(handlers.sign_out, body.refresh_token)


@auth.post(
    "/logout-everywhere", status_code=204, summary="End every session of your account (self)"
)
async def logout_everywhere(principal: CurrentUser, run: RunHandler) -> None:
    """**Who may call:** a signed-in user, for their own account.

    Revokes every refresh token and refuses every access token issued so far, in every
    service, at once.
    """
    await run(handlers.sign_out_everywhere, _user_id(principal.user_id))


# ---- password reset -----------------------------------------------------------------------


@auth.post("/password-reset", status_code=202, summary="Email a password reset link (anyone)")
async def request_password_reset(
    body: PasswordResetRequest, run: RunHandler, _: IdempotencyKey
) -> Accepted:
    """**Who may call:** anyone. The answer is the same whether or not the address has an
    account, so it cannot be used to find out who does."""
    await run(handlers.request_password_reset, body.email)
    return Accepted(
        detail="If an account uses this address, we have emailed it a link to reset the "
        "password. The link works once, for a limited time."
    )


@auth.post(
    "/password-reset/confirm",
    status_code=204,
    summary="Set a new password (holder of a reset token)",
)
async def reset_password(body: PasswordResetConfirmRequest, run: RunHandler) -> None:
    """**Who may call:** anyone holding the token from a reset email.

    Sets the password, signs out every session and refuses every access token issued so far.
    """
    await run(
        handlers.reset_password, ResetPassword(token=body.token, new_password=body.new_password)
    )


# ---- your own account -------------------------------------------------------------------------


@auth.get("/me", summary="Your profile (self)")
async def get_me(principal: CurrentUser, users: ReadUsersDep) -> UserRead:
    """**Who may call:** a signed-in user; returns their own profile only."""
    user = await handlers.get_profile(_user_id(principal.user_id), users=users)
    return UserRead.of(user)


@auth.patch("/me", summary="Change your name, locale or phone (self)")
async def update_me(
    body: ProfileUpdateRequest, principal: CurrentUser, run: RunHandler
) -> UserRead:
    """**Who may call:** a signed-in user, for their own profile.

    Send only what changes (``null`` clears a field). ``locale`` is a BCP 47 tag such as
    ``en-GB``; ``phone`` is E.164 such as ``+4915112345678``.
    """
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    user = await run(
        handlers.update_profile, _user_id(principal.user_id), UpdateProfile(changes=changes)
    )
    return UserRead.of(user)


@auth.post("/me/email", status_code=202, summary="Change your email address (self + password)")
async def change_email(
    body: ChangeEmailRequest,
    principal: CurrentUser,
    run: RunHandler,
    address: ClientAddressDep,
    _: IdempotencyKey,
) -> UserRead:
    """**Who may call:** a signed-in user who also gives their password.

    The new address is pending (``pending_email``) until the link sent to it is used; the
    current one stays until then. 409 if another account uses the new address.
    """
    user = await run(
        handlers.change_email,
        _user_id(principal.user_id),
        ChangeEmail(new_email=body.new_email, password=body.password),
        client_address=address,
    )
    return UserRead.of(user)


@auth.post("/me/password", summary="Change your password (self + current password)")
async def change_password(
    body: ChangePasswordRequest, principal: CurrentUser, run: RunHandler, address: ClientAddressDep
) -> TokenPairRead:
    """**Who may call:** a signed-in user who also gives their current password.

    Every session is signed out and every access token issued so far is refused; the
    answer carries fresh tokens for this device.
    """
    pair = await run(
        handlers.change_password,
        _user_id(principal.user_id),
        ChangePassword(current_password=body.current_password, new_password=body.new_password),
        client_address=address,
    )
    return TokenPairRead.of(pair, now=run.clock())


@auth.get("/me/export", summary="Everything auth holds about you, as JSON (self)")
async def export_me(
    principal: CurrentUser,
    users: ReadUsersDep,
    one_time_tokens: ReadOneTimeTokensDep,
    refresh_tokens: ReadRefreshTokensDep,
    clock: ClockDep,
) -> JSONResponse:
    """**Who may call:** a signed-in user, for their own data (data portability)."""
    data = await handlers.export_account(
        _user_id(principal.user_id),
        users=users,
        refresh_tokens=refresh_tokens,
        one_time_tokens=one_time_tokens,
        clock=clock,
    )
    return JSONResponse(
        jsonable_encoder(data),
        headers={
            "Content-Disposition": 'attachment; filename="marquee-account.json"',
            "Cache-Control": "no-store",
        },
    )


@auth.delete("/me", status_code=204, summary="Delete your account (self + password)")
async def delete_me(
    body: DeleteAccountRequest, principal: CurrentUser, run: RunHandler, address: ClientAddressDep
) -> None:
    """**Who may call:** a signed-in user who also gives their password (a stolen access
    token alone cannot delete an account).

    Erases the email, name, phone and password hash at once, ends every session, refuses
    every token, and tells every service (``auth.user-deleted.v1``) to erase what it holds.
    """
    await run(
        handlers.delete_account, _user_id(principal.user_id), body.password, client_address=address
    )


# ---- administration ---------------------------------------------------------------------------


@auth.get("/users/{user_id}", summary="A user's profile (admin, or the user)")
async def get_user(user_id: uuid.UUID, principal: CurrentUser, users: ReadUsersDep) -> UserRead:
    """**Who may call:** an admin, or the user themself; anyone else gets 403."""
    ensure_owner(principal, user_id, what="account")
    user = await users.get(user_id)
    if user is None or user.email is None:
        raise NotFound(f"There is no user {user_id}.", code="user-not-found")
    return UserRead.of(user)


@auth.post("/users/{user_id}/roles/{role}", summary="Grant a role (admin)")
async def grant_role(
    user_id: uuid.UUID, role: str, admin: AdminUser, run: RunHandler, _: IdempotencyKey
) -> RoleChangeRead:
    """**Who may call:** admins. Only ``organizer`` can be granted here.

    Takes effect when the user next refreshes their token (at most 15 minutes).
    """
    user = await run(
        handlers.change_role, user_id, role, grant=True, changed_by=_user_id(admin.user_id)
    )
    return RoleChangeRead(
        user_id=user.id,
        roles=list(user.roles),
        detail=f"{role} granted; it takes effect at the user's next token refresh.",
    )


@auth.delete("/users/{user_id}/roles/{role}", summary="Revoke a role (admin)")
async def revoke_role(
    user_id: uuid.UUID, role: str, admin: AdminUser, run: RunHandler
) -> RoleChangeRead:
    """**Who may call:** admins. Only ``organizer`` can be revoked here.

    Takes effect when the user next refreshes their token (at most 15 minutes); to cut
    access at once, also end the user's sessions.
    """
    user = await run(
        handlers.change_role, user_id, role, grant=False, changed_by=_user_id(admin.user_id)
    )
    return RoleChangeRead(
        user_id=user.id,
        roles=list(user.roles),
        detail=f"{role} revoked; it takes effect at the user's next token refresh.",
    )


# ---- public keys -------------------------------------------------------------------------------


async def _jwks(
    signing_keys: ReadSigningKeysDep, runtime: RuntimeDep, clock: ClockDep
) -> JSONResponse:
    keys = await signing_keys.published(
        now=clock(), retired_kept_for=runtime.policy.retired_key_kept_for
    )
    max_age = runtime.jwks_max_age_seconds
    return JSONResponse(
        jwks_document(keys), headers={"Cache-Control": f"public, max-age={max_age}"}
    )


_JWKS_DOC = (
    "**Who may call:** anyone. The public keys that verify access tokens: the active one, "
    "the next one (published ahead of use) and retired ones until their tokens expire."
)
_JWKS_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": JsonWebKeySet}}

well_known.add_api_route(
    "/.well-known/jwks.json",
    _jwks,
    methods=["GET"],
    summary="Public signing keys (JWKS)",
    description=_JWKS_DOC,
    responses=_JWKS_RESPONSES,
)
auth.add_api_route(
    "/.well-known/jwks.json",
    _jwks,
    methods=["GET"],
    summary="Public signing keys (JWKS), reachable through the gateway",
    description=_JWKS_DOC,
    responses=_JWKS_RESPONSES,
)
