"""Events the auth service publishes (owner: ``auth``).

Privacy: events carry the least a consumer needs. Only the events whose whole point is
to reach a person by email carry an address (``user-registered`` so notifications can
keep a copy to write to, ``email-changed`` to update it, and the two ``...-requested``
events whose token must be mailed). Every consumer that keeps personal data erases it on
``auth.user-deleted.v1``, which carries nothing but the id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from marquee_contracts.topics import REGISTRY, Topic


class UserRegistered(BaseModel):
    """A person created an account. Their email address is not verified yet."""

    user_id: UUID
    email: str = Field(description="Lower-cased; the address notifications writes to")
    locale: str | None = Field(
        default=None, description="BCP 47 language tag for messages, if the person chose one"
    )
    registered_at: datetime


class EmailVerificationRequested(BaseModel):
    """Someone must prove they own ``email``: mail them ``token`` (single use).

    The token is a credential: send it, never log or store it. It stops working at
    ``expires_at`` or after its first use.
    """

    user_id: UUID
    email: str = Field(description="Where to send the token (for an email change: the new one)")
    token: str
    expires_at: datetime
    reason: Literal["registration", "email-change"] = "registration"


class EmailChanged(BaseModel):
    """A user verified a new email address; it replaces ``previous_email``.

    Consumers holding the address update it; notifications should also tell the previous
    address, so a takeover of the account does not go unnoticed.
    """

    user_id: UUID
    email: str
    previous_email: str | None
    changed_at: datetime


class PasswordResetRequested(BaseModel):
    """Someone asked to reset the password of this account: mail ``token`` to ``email``.

    The token is a credential: send it, never log or store it. Single use, expires at
    ``expires_at``. Published only for addresses that have an account.
    """

    user_id: UUID
    email: str
    token: str
    expires_at: datetime


class PasswordChanged(BaseModel):
    """A user's password was changed (by them, or through a reset link); every other
    session was signed out. Worth telling the person, in case it was not them."""

    user_id: UUID
    changed_at: datetime
    reason: Literal["changed", "reset"]


class RoleChanged(BaseModel):
    """An admin granted or revoked a role. Takes effect on the user's next token refresh."""

    user_id: UUID
    role: str = Field(examples=["organizer"])
    change: Literal["granted", "revoked"]
    roles: list[str] = Field(description="The user's roles after the change")
    changed_by: UUID | None = Field(description="The admin; null when done by an operator")
    changed_at: datetime


class UserDeleted(BaseModel):
    """A user deleted their account. Every service erases or anonymizes what it holds
    about ``user_id``; auth itself keeps no personal data about them any more."""

    user_id: UUID


USER_REGISTERED = REGISTRY.register(
    Topic(
        "auth.user-registered.v1",
        UserRegistered,
        owner="auth",
        description="A person created an account (email not verified yet).",
    )
)
EMAIL_VERIFICATION_REQUESTED = REGISTRY.register(
    Topic(
        "auth.email-verification-requested.v1",
        EmailVerificationRequested,
        owner="auth",
        description="Mail this single-use token to prove ownership of an email address.",
    )
)
EMAIL_CHANGED = REGISTRY.register(
    Topic(
        "auth.email-changed.v1",
        EmailChanged,
        owner="auth",
        description="A user verified a new email address, replacing the previous one.",
    )
)
PASSWORD_RESET_REQUESTED = REGISTRY.register(
    Topic(
        "auth.password-reset-requested.v1",
        PasswordResetRequested,
        owner="auth",
        description="Mail this single-use token so the person can set a new password.",
    )
)
PASSWORD_CHANGED = REGISTRY.register(
    Topic(
        "auth.password-changed.v1",
        PasswordChanged,
        owner="auth",
        description="A user's password was changed or reset; other sessions were ended.",
    )
)
ROLE_CHANGED = REGISTRY.register(
    Topic(
        "auth.role-changed.v1",
        RoleChanged,
        owner="auth",
        description="An admin granted or revoked a role (effective on the next refresh).",
    )
)
USER_DELETED = REGISTRY.register(
    Topic(
        "auth.user-deleted.v1",
        UserDeleted,
        owner="auth",
        description="A user deleted their account: erase or anonymize what you hold about them.",
    )
)
