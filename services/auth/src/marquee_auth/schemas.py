"""Request and response bodies of the auth API (separate from the tables).

Request models refuse unknown fields, so a typo (``pasword``) or a field that cannot be
set here (``roles``) is a 422 naming it instead of being silently ignored. Lengths are
bounded here only to stop absurd inputs; the real rules (and their messages) are in
:mod:`marquee_auth.domain`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from marquee_auth.handlers import TokenPair
from marquee_auth.models import User


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Password = Field(min_length=1, max_length=1024)
Token = Field(min_length=1, max_length=200)
Email = Field(min_length=1, max_length=320, examples=["ada@example.com"])


class RegisterRequest(Request):
    email: str = Email
    password: str = Password
    name: str | None = Field(default=None, max_length=400)
    locale: str | None = Field(default=None, max_length=40, examples=["en-GB"])


class VerifyEmailRequest(Request):
    token: str = Token


class LoginRequest(Request):
    email: str = Email
    password: str = Password


class RefreshTokenRequest(Request):
    refresh_token: str = Token


class PasswordResetRequest(Request):
    email: str = Email


class PasswordResetConfirmRequest(Request):
    token: str = Token
    new_password: str = Password


class ProfileUpdateRequest(Request):
    """Send only the fields to change; ``null`` clears one. Email and password have
    their own endpoints (both need your password)."""

    name: str | None = Field(default=None, max_length=400)
    locale: str | None = Field(default=None, max_length=40, examples=["de-DE"])
    phone: str | None = Field(default=None, max_length=40, examples=["+4915112345678"])


class ChangeEmailRequest(Request):
    new_email: str = Email
    password: str = Password


class ChangePasswordRequest(Request):
    current_password: str = Password
    new_password: str = Password


class DeleteAccountRequest(Request):
    password: str = Password


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool
    pending_email: str | None = Field(
        description="A new address waiting for its verification link; null if none"
    )
    name: str | None
    locale: str | None
    phone: str | None
    roles: list[str]
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserRead:
        assert user.email is not None, "a deleted account has no profile"
        return cls(
            id=user.id,
            email=user.email,
            email_verified=user.email_verified_at is not None,
            pending_email=user.pending_email,
            name=user.name,
            locale=user.locale,
            phone=user.phone,
            roles=list(user.roles),
            created_at=user.created_at,
        )


class TokenPairRead(BaseModel):
    """Keep the refresh token secret (an httpOnly cookie or the platform's secure store);
    each one works once: refreshing returns the next."""

    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name
    access_token: str
    expires_in: int = Field(description="Seconds until the access token expires")
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    user_id: uuid.UUID
    roles: list[str]

    @classmethod
    def of(cls, pair: TokenPair, *, now: datetime) -> TokenPairRead:
        return cls(
            access_token=pair.access_token,
            expires_in=max(0, int((pair.access_token_expires_at - now).total_seconds())),
            access_token_expires_at=pair.access_token_expires_at,
            refresh_token=pair.refresh_token,
            refresh_token_expires_at=pair.refresh_token_expires_at,
            user_id=pair.user_id,
            roles=pair.roles,
        )


class Accepted(BaseModel):
    detail: str


class RoleChangeRead(BaseModel):
    user_id: uuid.UUID
    roles: list[str]
    detail: str


class JsonWebKey(BaseModel):
    model_config = ConfigDict(extra="allow")

    kty: str
    kid: str
    use: str
    alg: str


class JsonWebKeySet(BaseModel):
    keys: list[JsonWebKey]
